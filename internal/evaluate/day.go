package evaluate

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
)

// result is what an evaluation run measured.
type result struct {
	sim     sim.Result
	dets    []sim.Detection
	scores  []sim.RuleScore
	elapsed time.Duration // from the first record produced to the last fix stored
}

// matchSlack is how far an alert may start from its episode and still match it.
func matchSlack(o sim.Options) time.Duration { return o.MatchSlack() }

// runDay runs the pipeline with cfg, produces a simulated city into the broker at addr, waits
// until the pipeline has stored every fix in the database conn points at and finished the write
// holding the newest (written reports the newest event time the pipeline has read and written:
// muckwatch_event_time_read_seconds, set once a write's positions and alerts are all stored) and
// until its time-driven decisions have reached the end of the simulated span (judged:
// muckwatch_event_time_judged_seconds), then scores the alerts stored there against the
// simulator's ground truth.
func runDay(ctx context.Context, c *city.City, o sim.Options, addr string, cfg pipeline.Config) (result, error) {
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
		return result{}, err
	}
	written := func() time.Time { return gaugeTime(reg, "muckwatch_event_time_read_seconds") }
	judged := func() time.Time { return gaugeTime(reg, "muckwatch_event_time_judged_seconds") }
	r, err := scoreDay(ctx, c, o, addr, cfg, st.ClickHouse.Conn(), written, judged)
	stop()
	if perr := <-done; err == nil && perr != nil {
		err = fmt.Errorf("the pipeline stopped with an error: %w", perr)
	}
	return r, err
}

// scoreDay produces the simulation and scores what the pipeline stored of it.
func scoreDay(ctx context.Context, c *city.City, o sim.Options, addr string, cfg pipeline.Config, conn driver.Conn, written, judged func() time.Time) (result, error) {
	db := cfg.ClickHouse.Database // a validated identifier
	s, err := sim.New(c, o)
	if err != nil {
		return result{}, err
	}
	began := time.Now()
	topics := cfg.Kafka.Topics
	em := sim.NewKafkaEmitter(ctx, []string{addr}, topics)
	res, err := s.Run(em)
	if err == nil {
		err = em.Flush()
	}
	em.Close()
	if err != nil {
		return result{}, err
	}
	for {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT uniqExact(fix_id) FROM "+db+".positions").Scan(&n); err != nil {
			return result{}, fmt.Errorf("cannot count stored fixes: %w", err)
		}
		if n >= uint64(res.Fixes) {
			break
		}
		select {
		case <-ctx.Done():
			return result{}, fmt.Errorf("stopped after %d of %d fixes were stored: %w", n, res.Fixes, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	var newestMs uint64
	if err := conn.QueryRow(ctx, "SELECT toUInt64(max(ts_ms)) FROM "+db+".positions").Scan(&newestMs); err != nil {
		return result{}, fmt.Errorf("cannot read the newest stored fix: %w", err)
	}
	for newest := time.UnixMilli(int64(newestMs)); written().Before(newest); {
		select {
		case <-ctx.Done():
			return result{}, fmt.Errorf("stopped before the write holding the newest fix (%s) was over: %w", newest.Format(time.RFC3339), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	elapsed := time.Since(began)
	// A decision that falls due in the span's last seconds (a silence found 5 minutes after a
	// truck's last fix) is taken once event time gets there: with the producer done, once every
	// input has been quiet for the idle time (pipeline.idle_partition). Scored before that, it
	// would count as missed; decisions taken past the span's end are left out, as the ground
	// truth stops there.
	end := o.Start.Add(o.Duration)
	deadline := time.Now().Add(endWait)
	for judged().Before(end) {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("event time did not reach the end of the simulated span (%s) within %s of the last write: judged up to %s",
				end.Format(time.RFC3339), endWait, judged().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return result{}, fmt.Errorf("stopped before event time reached the end of the simulated span: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	all, err := sim.ReadDetections(ctx, conn, db)
	if err != nil {
		return result{}, err
	}
	dets := all[:0]
	for _, d := range all {
		if !d.Opened.After(end) {
			dets = append(dets, d)
		}
	}
	dets = res.Observable(dets, matchSlack(o))
	return result{sim: res, dets: dets, scores: sim.Score(res.Truth, dets, matchSlack(o)), elapsed: elapsed}, nil
}

// endWait bounds how long after its last write the pipeline may take to let event time pass the
// end of the simulated span: the idle time (5 s by default) and a few idle turns.
const endWait = time.Minute

// gaugeTime reads a gauge holding Unix seconds from g; zero when it has no such gauge.
func gaugeTime(g prometheus.Gatherer, name string) time.Time {
	mfs, err := g.Gather()
	if err != nil {
		return time.Time{}
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var secs float64
		for _, m := range mf.GetMetric() {
			secs += m.GetGauge().GetValue()
		}
		return time.UnixMilli(int64(math.Round(secs * 1000)))
	}
	return time.Time{}
}
