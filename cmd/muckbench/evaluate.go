package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/internal/evaluate"
)

// cmdEvaluate is `muckbench evaluate`: its flags, then the evaluation, written to standard output.
func cmdEvaluate(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	var o evaluate.Options
	intervals := fl.String("interval", "30s", "terminal reporting interval (e.g. 1s, 10s, 30s); a comma-separated list runs one day for each, in turn")
	fl.BoolVar(&o.Street, "street", false, "the street's GPS: irregular reporting (a 1s feed reports every 1-5s), re-acquisition snaps after losses of the fix, parked jitter")
	fl.BoolVar(&o.NoSpeed, "no-speed", false, "fixes without speed_kmh: the detectors derive speed from positions")
	fl.Float64Var(&o.Away, "away", 0, "share of licensed trips that leave the city's map on a long haul of 50-300 km (0 to 1)")
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
	var err error
	if o.Intervals, err = parseIntervals(*intervals); err != nil {
		return err
	}
	return evaluate.Run(ctx, o, os.Stdout)
}

// parseIntervals reads --interval: one duration, or several separated by commas.
func parseIntervals(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < time.Second {
			return nil, fmt.Errorf("--interval: %q is not a reporting interval of at least 1s (e.g. 1s, 5s, 30s, or 1s,5s,30s)", f)
		}
		out = append(out, d)
	}
	return out, nil
}
