// Command muckbench measures muckwatch: the whole-system benchmark against the targets
// and the accuracy of every rule on a simulated day. It is a tool beside the product, not part of
// the muckwatch binary; its machinery is in internal/bench and internal/evaluate.
//
//	muckbench bench              throughput, latency and memory against the targets
//	muckbench evaluate           precision, recall and delay of every rule on a simulated day
//	muckbench terminals < LOAD   the bench's live traffic, as its child process
//	muckbench squads < LOAD      the bench's squad lookups, as its child process
//	muckbench broker --topics T  the bench's embedded broker, as its child process
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/muckwatch/muckwatch/internal/bench"
)

const usage = `muckbench — measure muckwatch

Usage:
  muckbench bench     [flags]           measure throughput, latency and memory against the targets
  muckbench evaluate  [flags]           score every rule against a simulated day's ground truth
  muckbench terminals < LOAD.json       a simulated fleet's live fixes into Kafka, as bench's load generator (JSON in, JSON lines out)
  muckbench squads    < LOAD.json       squad lookups against an API, as bench's load generator (JSON in and out)
  muckbench broker    --topics T,...    the embedded Kafka-protocol broker, as bench's child process

Run 'muckbench COMMAND -h' for a command's flags.
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
	case "bench":
		err = cmdBench(ctx, args)
	case "evaluate":
		err = cmdEvaluate(ctx, args)
	case "terminals", "squads", "broker":
		err = bench.RunChild(ctx, name, args, os.Stdin, os.Stdout)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "muckbench: unknown command %q\n\n%s", name, usage)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "muckbench %s: %v\n", name, err)
		return 1
	}
	return 0
}
