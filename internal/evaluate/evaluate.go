// Package evaluate is muckwatch's accuracy harness (`muckbench evaluate`): it drives a simulated
// day of a city (sim, with the noise of real terminals and violations of every kind) through the
// embedded broker, the real pipeline and ClickHouse, reads back the alerts the pipeline stored,
// and scores every rule's precision, recall and delay against the simulator's ground truth.
//
// evaluate.go sets a run up and prints it; day.go runs the pipeline on the day and scores it.
package evaluate

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
)

// Options configure an evaluation.
type Options struct {
	Interval time.Duration // terminal reporting interval
	Duration time.Duration // simulated time span
	Vehicles int           // simulate the first N registered vehicles (0: all)
	Seed     uint64
	CityDir  string // the city folder
	// ClickHouse is host:port of a server to use; empty starts a throwaway local server with
	// internal/chlocal.
	ClickHouse string
	Explain    string // list the missed episodes and unmatched alerts of this rule
	// Start is the local time of day (HH:MM, the city's time zone) the simulated span starts at,
	// on the latest day that leaves it all in the past.
	Start string
}

// Run evaluates the day o describes through the embedded broker, the pipeline and ClickHouse,
// and writes the scores of every rule to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	cfg, err := pipeline.LoadConfig("")
	if err != nil {
		return err
	}
	cfg.City = o.CityDir
	cfg.CityReloadInterval = 0
	cfg.Metrics.Listen = ""
	cfg.API.Listen = ""
	cfg.Log.Level = "warn"
	c, err := pipeline.LoadCity(o.CityDir)
	if err != nil {
		return err
	}
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: 8, Topics: cfg.Topics()})
	if err != nil {
		return err
	}
	defer bk.Close()
	chAddr := o.ClickHouse
	if chAddr == "" {
		dir, err := os.MkdirTemp("", "muckwatch-evaluate-")
		if err != nil {
			return err
		}
		srv, err := chlocal.StartIn(filepath.Join(dir, "clickhouse"))
		if err != nil {
			return err
		}
		defer srv.Destroy()
		chAddr = srv.TCPAddr
	}
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{addr}, []string{addr}
	cfg.ClickHouse.Addr = []string{chAddr}
	cfg.ClickHouse.Database = fmt.Sprintf("muckwatch_eval_%d", time.Now().Unix())
	if err := cfg.Validate(); err != nil {
		return err
	}
	start, err := sim.PastStart(time.Now(), o.Start, o.Duration, c.Location)
	if err != nil {
		return err
	}
	so := sim.Noisy(o.Seed, start, o.Duration, o.Interval, o.Vehicles)
	fmt.Fprintf(w, "evaluating %s of %s from %s at %s reporting (seed %d) through the embedded broker, the pipeline and the ClickHouse at %s …\n",
		o.Duration, c.Name, start.Format("Mon 15:04 MST"), o.Interval, o.Seed, chAddr)
	r, err := runDay(ctx, c, so, addr, cfg)
	if err != nil {
		return err
	}
	printResult(w, r, so)
	if o.Explain != "" {
		eps, ds := sim.Unmatched(r.sim.Truth, r.dets, matchSlack(so), o.Explain)
		for _, ep := range eps {
			fmt.Fprintf(w, "missed   %s %s %s..%s at %s: %s\n", ep.Rule, ep.VehicleID, ep.Start.Format(time.TimeOnly), ep.End.Format(time.TimeOnly), ep.Place, ep.Note)
		}
		for _, d := range ds {
			fmt.Fprintf(w, "no truth %s %s %s..%s at %s (opened %s)\n", d.Rule, d.VehicleID, d.Start.Format(time.TimeOnly), d.End.Format(time.TimeOnly), d.Place, d.Opened.Format(time.TimeOnly))
		}
	}
	return nil
}

// printResult writes what the day measured: its traffic, then every rule's scores.
func printResult(w io.Writer, r result, o sim.Options) {
	fmt.Fprintf(w, "%d fixes (%d sent twice), %d events; noise σ=%gm, %.0f%% jumps, %.0f%% out of order; %d violation episodes; %s end to end (%.0f fixes/s)\n\n",
		r.sim.Fixes, r.sim.Duplicates, r.sim.Events, o.NoiseM, o.JumpRate*100, o.OutOfOrderRate*100, len(r.sim.Truth),
		r.elapsed.Round(time.Millisecond), float64(r.sim.Fixes)/r.elapsed.Seconds())
	sim.WriteScores(w, r.scores, o.Interval)
}
