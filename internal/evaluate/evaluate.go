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

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
)

// Options configure an evaluation.
type Options struct {
	// Intervals are the terminals' reporting intervals: one day is run for each, in turn.
	Intervals []time.Duration
	// Street gives the day the GPS of real recorded traces (sim.Street): irregular reporting (a
	// 1 s feed reports every 1–5 s), re-acquisition snaps after short losses of the fix, parked
	// trucks drifting and jittering. NoSpeed sends the fixes without speed_kmh (the detectors
	// derive it), street or not.
	Street, NoSpeed bool
	// Away is the share of licensed trips that leave the city's map on a long haul of 50–300 km
	// (sim.Options.AwayRate).
	Away     float64
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

// Run evaluates the day o describes, once for each of its intervals, through the embedded broker,
// the pipeline and ClickHouse, and writes the scores of every rule to w.
func Run(ctx context.Context, o Options, w io.Writer) error {
	if len(o.Intervals) == 0 {
		return fmt.Errorf("cannot evaluate: no reporting interval")
	}
	for _, iv := range o.Intervals {
		if iv < time.Second {
			return fmt.Errorf("cannot evaluate: reporting interval %s is shorter than 1s", iv)
		}
	}
	if o.Away < 0 || o.Away > 1 {
		return fmt.Errorf("cannot evaluate: the share of trips leaving the map must be between 0 and 1, got %g", o.Away)
	}
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
	cfg.ClickHouse.Addr = []string{chAddr}
	start, err := sim.PastStart(time.Now(), o.Start, o.Duration, c.Location)
	if err != nil {
		return err
	}
	for i, interval := range o.Intervals {
		if i > 0 {
			fmt.Fprintln(w)
		}
		so := o.simOptions(start, interval)
		fmt.Fprintf(w, "evaluating %s of %s from %s at %s, %s (seed %d) through the embedded broker, the pipeline and the ClickHouse at %s …\n",
			o.Duration, c.Name, start.Format("Mon 15:04 MST"), o.describe(interval), o.gps(), o.Seed, chAddr)
		// a broker and a database of its own for each day
		cfg.ClickHouse.Database = fmt.Sprintf("muckwatch_eval_%d_%d", time.Now().Unix(), i)
		r, err := evaluateDay(ctx, c, so, cfg)
		if err != nil {
			return err
		}
		printResult(w, r, so)
		if o.Explain != "" {
			explain(w, r, so, o.Explain)
		}
	}
	return nil
}

// evaluateDay runs one simulated day through a broker of its own, the pipeline and ClickHouse.
func evaluateDay(ctx context.Context, c *city.City, so sim.Options, cfg pipeline.Config) (result, error) {
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: 8, Topics: cfg.Topics()})
	if err != nil {
		return result{}, err
	}
	defer bk.Close()
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{addr}, []string{addr}
	if err := cfg.Validate(); err != nil {
		return result{}, err
	}
	return runDay(ctx, c, so, addr, cfg)
}

// simOptions is the simulated day of o at one reporting interval.
func (o Options) simOptions(start time.Time, interval time.Duration) sim.Options {
	so := sim.Noisy(o.Seed, start, o.Duration, interval, o.Vehicles)
	if o.Street {
		so = sim.Street(o.Seed, start, o.Duration, interval, o.Vehicles, true)
	}
	so.NoSpeed = o.NoSpeed
	so.AwayRate = o.Away
	return so
}

// describe says how often the terminals report at interval.
func (o Options) describe(interval time.Duration) string {
	if so := o.simOptions(time.Time{}, interval); so.IntervalSpread > 0 {
		return fmt.Sprintf("%s–%s reporting", interval, interval+so.IntervalSpread)
	}
	return interval.String() + " reporting"
}

// gps says what the terminals' GPS is like.
func (o Options) gps() string {
	s := "simulator GPS"
	if o.Street {
		s = "street GPS (re-acquisition snaps, parked jitter)"
	}
	if o.NoSpeed {
		s += ", no reported speed"
	} else {
		s += ", reported speed"
	}
	if o.Away > 0 {
		s += fmt.Sprintf(", %.0f %% of trips leaving the map", o.Away*100)
	}
	return s
}

// explain lists the missed episodes and the unmatched alerts of rule.
func explain(w io.Writer, r result, so sim.Options, rule string) {
	eps, ds := sim.Unmatched(r.sim.Truth, r.dets, matchSlack(so), rule)
	for _, ep := range eps {
		fmt.Fprintf(w, "missed   %s %s %s..%s at %s: %s\n", ep.Rule, ep.VehicleID, ep.Start.Format(time.TimeOnly), ep.End.Format(time.TimeOnly), ep.Place, ep.Note)
	}
	for _, d := range ds {
		fmt.Fprintf(w, "no truth %s %s %s..%s at %s (opened %s)\n", d.Rule, d.VehicleID, d.Start.Format(time.TimeOnly), d.End.Format(time.TimeOnly), d.Place, d.Opened.Format(time.TimeOnly))
	}
}

// printResult writes what the day measured: its traffic, then every rule's scores.
func printResult(w io.Writer, r result, o sim.Options) {
	fmt.Fprintf(w, "%d fixes (%d sent twice), %d events; noise σ=%gm, %.0f%% jumps, %.0f%% out of order; %d violation episodes; %s end to end (%.0f fixes/s)\n\n",
		r.sim.Fixes, r.sim.Duplicates, r.sim.Events, o.NoiseM, o.JumpRate*100, o.OutOfOrderRate*100, len(r.sim.Truth),
		r.elapsed.Round(time.Millisecond), float64(r.sim.Fixes)/r.elapsed.Seconds())
	sim.WriteScores(w, r.scores, o.Interval)
}
