package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/muckwatch/muckwatch/internal/evaluate"
)

// cmdEvaluate is `muckbench evaluate`: its flags, then the evaluation, written to standard output.
func cmdEvaluate(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	var o evaluate.Options
	fl.DurationVar(&o.Interval, "interval", 30*time.Second, "terminal reporting interval (e.g. 1s, 10s, 30s)")
	fl.DurationVar(&o.Duration, "duration", 24*time.Hour, "simulated time span")
	fl.IntVar(&o.Vehicles, "vehicles", 0, "simulate the first N registered vehicles (0: all)")
	fl.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fl.StringVar(&o.CityDir, "city", "configs/cities/shenzhen", "city folder")
	fl.StringVar(&o.ClickHouse, "clickhouse", "", "use this ClickHouse (host:port) instead of starting a throwaway local server")
	fl.StringVar(&o.Explain, "explain", "", "list the missed episodes and unmatched alerts of this rule")
	fl.StringVar(&o.Start, "start", "06:00", "local time of day (city time zone) the simulated span starts at, on the latest day that leaves it all in the past")
	if err := fl.Parse(args); err != nil {
		return err
	}
	return evaluate.Run(ctx, o, os.Stdout)
}
