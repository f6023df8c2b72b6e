package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
)

// evalResult is what an evaluation run measured.
type evalResult struct {
	sim     sim.Result
	dets    []sim.Detection
	scores  []sim.RuleScore
	elapsed time.Duration // from the first record produced to the last fix stored
}

// runEvaluation runs the pipeline with cfg, produces a simulated city into the broker at addr,
// waits until the pipeline has stored every fix in the database conn points at and finished the write holding
// the newest (written reports the newest event time the pipeline has read and written:
// muckwatch_event_time_read_seconds, set once a write's positions and alerts are all stored),
// then scores the alerts stored there against the simulator's ground truth.
func runEvaluation(ctx context.Context, c *city.City, o sim.Options, addr string, cfg pipeline.Config) (evalResult, error) {
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	ready := make(chan pipeline.Started, 1)
	done := make(chan error, 1)
	reg := pipeline.NewRegistry()
	go func() { done <- pipeline.Run(pctx, cfg, pipeline.NewLogger(cfg.Log), reg, ready) }()
	var st pipeline.Started
	select {
	case st = <-ready:
	case err := <-done:
		return evalResult{}, err
	}
	written := func() time.Time { return gaugeTime(reg, "muckwatch_event_time_read_seconds") }
	r, err := scoreRun(ctx, c, o, addr, cfg, st.ClickHouse.Conn(), written)
	stop()
	if perr := <-done; err == nil && perr != nil {
		err = fmt.Errorf("the pipeline stopped with an error: %w", perr)
	}
	return r, err
}

// scoreRun produces the simulation and scores what the pipeline stored of it.
func scoreRun(ctx context.Context, c *city.City, o sim.Options, addr string, cfg pipeline.Config, conn driver.Conn, written func() time.Time) (evalResult, error) {
	db := cfg.ClickHouse.Database // a validated identifier
	s, err := sim.New(c, o)
	if err != nil {
		return evalResult{}, err
	}
	began := time.Now()
	em := sim.NewKafkaEmitter(ctx, []string{addr}, simTopics(cfg))
	res, err := s.Run(em)
	if err == nil {
		err = em.Flush()
	}
	em.Close()
	if err != nil {
		return evalResult{}, err
	}
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT uniqExact(fix_id) FROM "+db+".positions").Scan(&n); err != nil {
			return evalResult{}, fmt.Errorf("cannot count stored fixes: %w", err)
		}
		if n >= uint64(res.Fixes) {
			break
		}
		select {
		case <-ctx.Done():
			return evalResult{}, fmt.Errorf("stopped after %d of %d fixes were stored: %w", n, res.Fixes, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	var newestMs uint64
	if err := conn.QueryRow(ctx, "SELECT toUInt64(max(ts_ms)) FROM "+db+".positions").Scan(&newestMs); err != nil {
		return evalResult{}, fmt.Errorf("cannot read the newest stored fix: %w", err)
	}
	for newest := time.UnixMilli(int64(newestMs)); written().Before(newest); {
		select {
		case <-ctx.Done():
			return evalResult{}, fmt.Errorf("stopped before the write holding the newest fix (%s) was over: %w", newest.Format(time.RFC3339), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(began)
	dets, err := sim.ReadDetections(ctx, conn, db)
	if err != nil {
		return evalResult{}, err
	}
	return evalResult{sim: res, dets: dets, scores: sim.Score(res.Truth, dets, 2*o.Interval+5*time.Second), elapsed: elapsed}, nil
}

func cmdEvaluate(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	interval := fl.Duration("interval", 30*time.Second, "terminal reporting interval (e.g. 1s, 10s, 30s)")
	duration := fl.Duration("duration", 24*time.Hour, "simulated time span")
	vehicles := fl.Int("vehicles", 0, "simulate the first N registered vehicles (0: all)")
	seed := fl.Uint64("seed", 1, "random seed")
	cityDir := fl.String("city", "configs/cities/shenzhen", "city folder")
	chAddr := fl.String("clickhouse", "", "use this ClickHouse (host:port) instead of starting a throwaway local server")
	explain := fl.String("explain", "", "list the missed episodes and unmatched alerts of this rule")
	startAt := fl.String("start", "06:00", "local time of day (city time zone) the simulated span starts at, on the latest day that leaves it all in the past")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg, err := pipeline.LoadConfig("")
	if err != nil {
		return err
	}
	cfg.City = *cityDir
	cfg.CityReloadInterval = 0
	cfg.Metrics.Listen = ""
	cfg.API.Listen = ""
	cfg.Log.Level = "warn"
	c, err := pipeline.LoadCity(*cityDir)
	if err != nil {
		return err
	}
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: 8, Topics: cfg.Topics()})
	if err != nil {
		return err
	}
	defer bk.Close()
	if *chAddr == "" {
		dir, err := os.MkdirTemp("", "muckwatch-evaluate-")
		if err != nil {
			return err
		}
		srv, err := chlocal.StartIn(filepath.Join(dir, "clickhouse"))
		if err != nil {
			return err
		}
		defer srv.Destroy()
		*chAddr = srv.TCPAddr
	}
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{addr}, []string{addr}
	cfg.ClickHouse.Addr = []string{*chAddr}
	cfg.ClickHouse.Database = fmt.Sprintf("muckwatch_eval_%d", time.Now().Unix())
	if err := cfg.Validate(); err != nil {
		return err
	}
	start, err := sim.PastStart(time.Now(), *startAt, *duration, c.Location)
	if err != nil {
		return err
	}
	o := sim.Noisy(*seed, start, *duration, *interval, *vehicles)
	fmt.Printf("evaluating %s of %s from %s at %s reporting (seed %d) through the embedded broker, the pipeline and the ClickHouse at %s …\n",
		*duration, c.Name, start.Format("Mon 15:04 MST"), *interval, *seed, *chAddr)
	r, err := runEvaluation(ctx, c, o, addr, cfg)
	if err != nil {
		return err
	}
	printEvaluation(os.Stdout, r, o)
	if *explain != "" {
		eps, ds := sim.Unmatched(r.sim.Truth, r.dets, 2*o.Interval+5*time.Second, *explain)
		for _, ep := range eps {
			fmt.Printf("missed   %s %s %s..%s at %s: %s\n", ep.Rule, ep.VehicleID, ep.Start.Format(time.TimeOnly), ep.End.Format(time.TimeOnly), ep.Place, ep.Note)
		}
		for _, d := range ds {
			fmt.Printf("no truth %s %s %s..%s at %s (opened %s)\n", d.Rule, d.VehicleID, d.Start.Format(time.TimeOnly), d.End.Format(time.TimeOnly), d.Place, d.Opened.Format(time.TimeOnly))
		}
	}
	return nil
}

func printEvaluation(w io.Writer, r evalResult, o sim.Options) {
	fmt.Fprintf(w, "%d fixes (%d sent twice), %d events; noise σ=%gm, %.0f%% jumps, %.0f%% out of order; %d violation episodes; %s end to end (%.0f fixes/s)\n\n",
		r.sim.Fixes, r.sim.Duplicates, r.sim.Events, o.NoiseM, o.JumpRate*100, o.OutOfOrderRate*100, len(r.sim.Truth),
		r.elapsed.Round(time.Millisecond), float64(r.sim.Fixes)/r.elapsed.Seconds())
	sim.WriteScores(w, r.scores, o.Interval)
}

// gaugeTime reads a gauge holding Unix seconds from g; zero when it has no such gauge.
func gaugeTime(g prometheus.Gatherer, name string) time.Time {
	v, err := gatherValue(g, name)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(math.Round(v * 1000)))
}
