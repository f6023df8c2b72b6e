package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/muckwatch/muckwatch/internal/bench"
)

// cmdBench is `muckbench bench`: its flags, the run, the report.
func cmdBench(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o bench.Options
	fl.IntVar(&o.Fixes, "fixes", 2_000_000, "GPS fixes preloaded into the broker as a backlog")
	fl.IntVar(&o.Vehicles, "vehicles", 100_000, "vehicles (the generated city registers them all, with permits)")
	fl.StringVar(&o.City, "city", "sample", "sample: the sample city's geography (30 routes, 18 zones); large: 10,000 routes and 1,000 zones")
	fl.IntVar(&o.Partitions, "partitions", 4, "partitions per topic")
	fl.DurationVar(&o.Interval, "interval", 10*time.Second, "reporting interval of the backlog's terminals")
	fl.StringVar(&o.At, "at", "10:00", "the city's local time of day (HH:MM) the backlog's device time starts at, on the latest weekday before now, so that the same restricted-zone hours apply whenever the bench runs (the sample city closes zones 07:00-09:00, 16:30-19:00 and 22:00-06:00, and at weekends 09:00-18:00 too); now: the backlog ends a minute before the bench starts")
	fl.DurationVar(&o.Live, "live", 20*time.Second, "length of the half-rate measurement window")
	fl.Float64Var(&o.LiveRate, "live-rate", 0, "fixes/s of the live traffic (0: half the rate measured on the backlog, as the issue asks)")
	fl.IntVar(&o.Lookups, "lookups", 20_000, "squad lookups after the window, with the live traffic still running")
	fl.Float64Var(&o.LookupRate, "lookup-rate", 1000, "squad lookups/s, arriving at random (open loop: a slow answer does not hold the next back); 0: closed loop, --concurrency clients as fast as they can")
	fl.IntVar(&o.Concurrency, "concurrency", 200, "squads, each with its own token (with --lookup-rate 0: concurrent clients)")
	fl.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fl.StringVar(&o.ConfigPath, "config", "", "config file (default: the embedded configs/muckwatch.yaml); its Kafka, ClickHouse, API and city settings are replaced by the bench's own")
	fl.StringVar(&o.ClickHouse, "clickhouse", "", "use this ClickHouse (host:port) instead of a throwaway local server; the bench's database is left on it")
	brokerMode := fl.String("broker", "process", "process: the embedded broker in a child process (muckbench broker), so this process's memory is the pipeline's; inprocess: in this process")
	squadsMode := fl.String("squads", "process", "process: the squads' lookups from a child process (muckbench squads), as a load generator runs, so that their HTTP clients are not the pipeline's; inprocess: from this process")
	fl.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the pipeline working off the backlog to this file")
	fl.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile to this file once the backlog is worked off")
	fl.StringVar(&o.PeakProfile, "peak-memprofile", "", "write a heap profile taken near this process's highest RSS (the last collection's live heap, and the allocations since the pipeline started) to this file")
	fl.StringVar(&o.Trace, "trace", "", "write an execution trace (go tool trace) of 3s of the backlog, from 2s after the pipeline starts consuming, to this file")
	fl.StringVar(&o.LiveTrace, "live-trace", "", "write an execution trace (go tool trace) of 6s of the live window, from 2s into it, to this file")
	fl.StringVar(&o.LiveCPUProfile, "live-cpuprofile", "", "write a CPU profile of the live window (the pipeline's process; the live traffic and the squads are processes of their own) to this file")
	fl.StringVar(&o.LiveMemProfile, "live-memprofile", "", "write heap profiles, each after a collection (counted in the report), at the live window's start (FILE.start), at the lookups' start (FILE.lookups) and at their end (FILE): go tool pprof -sample_index=alloc_space -base FILE.start FILE.lookups shows what the window allocated, -base FILE.lookups FILE what the lookups did")
	asJSON := fl.Bool("json", false, "also print the report as JSON")
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch *brokerMode {
	case "process":
	case "inprocess":
		o.BrokerInProcess = true
	default:
		return fmt.Errorf("--broker must be process or inprocess, got %q", *brokerMode)
	}
	switch *squadsMode {
	case "process":
	case "inprocess":
		o.SquadsInProcess = true
	default:
		return fmt.Errorf("--squads must be process or inprocess, got %q", *squadsMode)
	}
	o.Progress = os.Stderr
	r, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	bench.PrintReport(os.Stdout, r)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("cannot write the JSON report: %w", err)
		}
	}
	return nil
}
