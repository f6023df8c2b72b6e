// Command muckwatch is the real-time supervision pipeline for urban muck trucks: one binary with
// subcommands. Its benchmark and accuracy harness are a tool of their own, cmd/muckbench.
//
//	muckwatch run --config FILE      the pipeline against the Kafka and ClickHouse in FILE
//	muckwatch demo                   everything on one machine: embedded broker, local ClickHouse,
//	                                 city simulator and the pipeline, with live counts
//	muckwatch broker --listen ADDR   the embedded Kafka-protocol broker alone
//	muckwatch simulate               city traffic with injected violations into any Kafka
//	muckwatch migrate --config FILE  create or upgrade the ClickHouse schema
//	muckwatch token ROLE NAME        a new API bearer token and its hashed entry
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `muckwatch — real-time supervision of urban muck trucks

Usage:
  muckwatch run      [--config FILE]    run the pipeline (Kafka → detectors → ClickHouse + alerts)
  muckwatch demo     [flags]            run everything on this machine with a simulated city
  muckwatch broker   [--listen ADDR]    run the embedded Kafka-protocol broker alone
  muckwatch simulate [flags]            produce simulated city traffic into Kafka
  muckwatch migrate  [--config FILE]    create or upgrade the ClickHouse schema
  muckwatch token    ROLE NAME          make an API bearer token (roles: squad, supervisor, analyst, admin)

Run 'muckwatch COMMAND -h' for a command's flags. Without --config, the embedded default
configuration (configs/muckwatch.yaml) is used. The benchmark and the accuracy evaluation are
another command's: muckbench.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	os.Exit(runCommand(os.Args[1], os.Args[2:]))
}

// runCommand runs subcommand name with args until it ends or SIGINT/SIGTERM stops it, and
// returns the process's exit code.
func runCommand(name string, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch name {
	case "run":
		err = cmdRun(ctx, args)
	case "demo":
		err = cmdDemo(ctx, args)
	case "broker":
		err = cmdBroker(ctx, args)
	case "simulate":
		err = cmdSimulate(ctx, args)
	case "migrate":
		err = cmdMigrate(ctx, args)
	case "token":
		err = cmdToken(args)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "muckwatch: unknown command %q\n\n%s", name, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "muckwatch %s: %v\n", name, err)
		return 1
	}
	return 0
}
