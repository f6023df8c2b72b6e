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
	"os"

	"github.com/muckwatch/muckwatch/internal/bench"
	"github.com/muckwatch/muckwatch/internal/cli"
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
	os.Exit(cli.Program{Name: "muckbench", Usage: usage, Commands: commands()}.Main(os.Args[1:]))
}

func commands() map[string]cli.Command {
	child := func(name string) cli.Command {
		return func(ctx context.Context, args []string) error {
			return bench.RunChild(ctx, name, args, os.Stdin, os.Stdout)
		}
	}
	return map[string]cli.Command{
		"bench":     cmdBench,
		"evaluate":  cmdEvaluate,
		"terminals": child("terminals"),
		"squads":    child("squads"),
		"broker":    child("broker"),
	}
}
