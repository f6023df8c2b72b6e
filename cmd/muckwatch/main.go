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
	"os"

	"github.com/muckwatch/muckwatch/internal/cli"
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
	os.Exit(cli.Program{Name: "muckwatch", Usage: usage, Commands: map[string]cli.Command{
		"run":      cmdRun,
		"demo":     cmdDemo,
		"broker":   cmdBroker,
		"simulate": cmdSimulate,
		"migrate":  cmdMigrate,
		"token":    func(_ context.Context, args []string) error { return cmdToken(args) },
	}}.Main(os.Args[1:]))
}
