package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/muckwatch/muckwatch/pipeline"
)

// liveFleet is what the live phase needs of the fleet that produced the backlog: the
// terminals' process drives the same fleet on from where the backlog left it.
type liveFleet struct {
	cityDir  string
	plates   []string
	t0       time.Time // the fleet's device-time origin
	simStart int64     // Unix ms: after every fix of the backlog
}

// runLive produces live traffic at half the backlog rate and measures, in a window, the
// detection latency (the pipeline's histogram, and produce → alert on the alerts topic) and fix →
// queryable in ClickHouse; then squad lookups while the traffic goes on.
func runLive(ctx context.Context, o *Options, cfg pipeline.Config, fleet liveFleet, st pipeline.Started, reg prometheus.Gatherer,
	w *watch, ps procSet, tokens []string, r *Report) error {
	r.LiveTargetRate = r.PipelineRate / 2
	if o.LiveRate > 0 {
		r.LiveTargetRate = o.LiveRate
		r.Notes = append(r.Notes, fmt.Sprintf("live traffic at %.0f fixes/s as --live-rate asks, not at half the backlog rate", o.LiveRate))
	}
	alertStarts, err := topicEnds(ctx, w.client, cfg.Outputs.AlertsTopic, o.Partitions)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(lctx)
	every := time.Duration(float64(len(fleet.plates)) / r.LiveTargetRate * float64(time.Second))
	o.logf("live traffic at %.0f fixes/s from the terminals' process: every vehicle every %s; measuring for %s", r.LiveTargetRate, every.Round(time.Millisecond), o.Live)
	cmd, err := o.child("terminals")
	if err != nil {
		cancel()
		return err
	}
	term, err := startTerminals(ctx, cmd, terminalsLoad{Broker: w.client.Addr.String(), Topic: cfg.Kafka.Topics.GPS, CityDir: fleet.cityDir,
		Seed: o.Seed, Partitions: o.Partitions, DeviceT0: fleet.t0.UnixMilli(), SimStart: fleet.simStart, Rate: r.LiveTargetRate, Window: o.Live})
	if err != nil {
		cancel()
		return err
	}
	var pollDone chan struct{}
	defer func() { // every goroutine below has ended before runLive returns, the terminals too
		cancel()
		_ = g.Wait()
		_ = term.stop()
		if pollDone != nil {
			<-pollDone
		}
	}()
	latencyBefore, waitBefore, err := gatherDetectionHists(reg)
	if err != nil {
		return err
	}
	gcBefore, allocBefore := gcCycles(), heapAllocated()

	if o.LiveCPUProfile != "" {
		prof, err := os.Create(o.LiveCPUProfile)
		if err != nil {
			return fmt.Errorf("cannot create the CPU profile: %w", err)
		}
		defer prof.Close()
		if err := pprof.StartCPUProfile(prof); err != nil {
			return fmt.Errorf("cannot start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile() // stopping twice is harmless
	}
	if o.LiveMemProfile != "" {
		if err := writeHeapProfile(o.LiveMemProfile + ".start"); err != nil {
			return err
		}
	}
	cpuLive, schedLive := ps.mark(), schedLatencies()
	sumsLive := gatherSums(reg)
	wallStart := time.Unix(0, term.started.WallStartNs)
	windowEnd := wallStart.Add(o.Live)
	stopTrace, err := startTrace(o.LiveTrace, wallStart, liveTraceFor)
	if err != nil {
		return err
	}
	defer stopTrace()

	// Produce → alert, read back from the alerts topic.
	var alertLat latencies
	if err := readAlerts(gctx, g, cfg, alertStarts, term, windowEnd, &alertLat); err != nil {
		return err
	}

	// Fix → queryable: poll ClickHouse for the probes.
	var queryLat latencies
	missing := 0
	pollDone = make(chan struct{})
	go func() {
		defer close(pollDone)
		missing = pollProbes(gctx, w, term.probes, &queryLat, windowEnd.Add(30*time.Second))
	}()

	// The window.
	select {
	case <-time.After(time.Until(windowEnd)):
	case <-gctx.Done():
	case <-w.stopped:
		return errors.New("the pipeline stopped during the live phase")
	}
	latencyAfter, waitAfter, err := gatherDetectionHists(reg)
	if err != nil {
		return err
	}
	r.LiveGCCycles, r.LiveAllocated = gcCycles()-gcBefore, heapAllocated()-allocBefore
	r.LiveSchedP50Ms, r.LiveSchedP99Ms, _ = schedLatencies().sub(schedLive).p50p99Ms()
	if r.LiveLagAtEnd, err = w.lag(ctx); err != nil {
		return err
	}
	if r.LiveReadLagAtEnd, err = w.readLag(ctx, reg); err != nil {
		return err
	}
	select {
	case n := <-term.inWindow:
		r.LiveWindowFixes = int(n)
	case <-time.After(10 * time.Second):
		return errors.New("the terminals' process did not report the fixes it produced in the window")
	case <-ctx.Done():
		return ctx.Err()
	}
	r.LiveAchievedRate = float64(r.LiveWindowFixes) / o.Live.Seconds()
	r.LiveCPU = ps.since(cpuLive)
	r.LiveBatches = batchesSince(sumsLive, gatherSums(reg), time.Since(wallStart))
	if o.LiveCPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if float64(r.LiveReadLagAtEnd) > r.LiveTargetRate {
		r.Notes = append(r.Notes, fmt.Sprintf("the pipeline did not keep up with the live traffic at %.0f fixes/s: %d records not yet read at the window's end "+
			"(more than a second of traffic), so the window's latencies include that queueing", r.LiveTargetRate, r.LiveReadLagAtEnd))
	}
	latency, wait := latencyAfter.sub(latencyBefore), waitAfter.sub(waitBefore)
	r.DetectBatches, r.WaitBatches = latency.total, wait.total
	r.DetectP50Ms, r.DetectP99Ms, r.DetectOverflow = latency.p50p99Ms()
	r.WaitP50Ms, r.WaitP99Ms, _ = wait.p50p99Ms()

	// Squad lookups, the traffic still running.
	if o.LookupRate > 0 {
		o.logf("squad lookups: %d by %d squads at %.0f/s, live traffic still at %.0f fixes/s", o.Lookups, o.Concurrency, o.LookupRate, r.LiveTargetRate)
	} else {
		o.logf("squad lookups: %d by %d concurrent clients as fast as they can, live traffic still at %.0f fixes/s", o.Lookups, o.Concurrency, r.LiveTargetRate)
	}
	if o.LiveMemProfile != "" {
		if err := writeHeapProfile(o.LiveMemProfile + ".lookups"); err != nil {
			return err
		}
	}
	gcBefore, allocBefore = gcCycles(), heapAllocated()
	cpuLookups, schedLookups := ps.mark(), schedLatencies()
	if err := runLookups(gctx, o, st.APIURL, fleet.plates, tokens, r); err != nil {
		cancel()
		if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
			return werr
		}
		return err
	}
	r.LookupGCCycles, r.LookupAlloc = gcCycles()-gcBefore, heapAllocated()-allocBefore
	r.LookupCPU = ps.since(cpuLookups)
	r.LookupSchedP50Ms, r.LookupSchedP99Ms, _ = schedLatencies().sub(schedLookups).p50p99Ms()
	if o.LiveMemProfile != "" {
		if err := writeHeapProfile(o.LiveMemProfile); err != nil {
			return err
		}
	}
	if r.LookupLag, err = w.lag(ctx); err != nil {
		return err
	}
	if err := term.stop(); err != nil {
		return err
	}
	<-pollDone
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.LiveFixes = int(term.sent)
	ql := queryLat.sorted()
	r.QueryableProbes, r.QueryableMissing = len(ql)+missing, missing
	r.QueryableP50Ms, r.QueryableP99Ms, r.QueryableMaxMs = ms(percentile(ql, 0.50)), ms(percentile(ql, 0.99)), ms(percentile(ql, 1))
	al := alertLat.sorted()
	r.AlertSamples = len(al)
	r.AlertP50Ms, r.AlertP99Ms, r.AlertMaxMs = ms(percentile(al, 0.50)), ms(percentile(al, 0.99)), ms(percentile(al, 1))
	o.logf("live phase over: %d fixes produced; waiting for the pipeline to store and commit them", r.LiveFixes)
	if _, err := w.waitCaughtUp(ctx, r.BacklogStored+uint64(r.LiveFixes)); err != nil {
		return fmt.Errorf("the pipeline did not catch up with the live traffic: %w", err)
	}
	return nil
}

// readAlerts reads the alerts topic in g from the offsets starts, one reader a partition, until
// gctx is done, and adds to lat the time from the production of each speeding alert's fix to the
// alert, for the fixes the terminals produced before windowEnd.
func readAlerts(gctx context.Context, g *errgroup.Group, cfg pipeline.Config, starts []int64, term *terminals, windowEnd time.Time, lat *latencies) error {
	for part, start := range starts {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Outputs.Brokers, Topic: cfg.Outputs.AlertsTopic, Partition: part,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond, ReadLagInterval: -1})
		if err := rd.SetOffset(start); err != nil {
			rd.Close()
			return fmt.Errorf("cannot read the alerts topic: %w", err)
		}
		g.Go(func() error {
			defer rd.Close()
			for {
				msg, err := rd.ReadMessage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("cannot read the alerts topic: %w", err)
				}
				arrived := time.Now()
				var a struct {
					Change    string `json:"change"`
					Rule      string `json:"rule"`
					UpdatedMs int64  `json:"updated_ms"`
				}
				if err := json.Unmarshal(msg.Value, &a); err != nil {
					return fmt.Errorf("an alert on %s is not JSON: %w", cfg.Outputs.AlertsTopic, err)
				}
				if a.Change == "opened" && a.Rule == "speeding" && a.UpdatedMs >= term.started.SimStartMs {
					if produced := term.wallOf(a.UpdatedMs); produced.Before(windowEnd) {
						lat.add(arrived.Sub(produced))
					}
				}
			}
		})
	}
	return nil
}

// pollProbes polls ClickHouse for the probe fixes until every one is stored, probes is closed
// and drained, or the deadline passes; it returns how many were never seen.
func pollProbes(ctx context.Context, w *watch, probes <-chan probe, lat *latencies, deadline time.Time) int {
	pending := map[string]probe{}
	var args []any // the pending probes' vehicles, then their fix IDs
	open := true
	tick := time.NewTicker(probePoll)
	defer tick.Stop()
	for open || len(pending) > 0 {
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return len(pending)
		case pr, ok := <-probes:
			if !ok {
				open = false
				probes = nil
				continue
			}
			pending[pr.fixID] = pr
			continue
		case <-tick.C:
		}
		if len(pending) == 0 {
			continue
		}
		args = args[:0]
		for _, pr := range pending {
			args = append(args, pr.vehicle)
		}
		for id := range pending {
			args = append(args, id)
		}
		marks := strings.TrimSuffix(strings.Repeat("?,", len(pending)), ",")
		rows, err := w.conn.Conn().Query(ctx, "SELECT fix_id FROM "+w.db+".positions WHERE vehicle_id IN ("+marks+") AND fix_id IN ("+marks+")", args...)
		if err != nil {
			continue // polled again next tick
		}
		seen := time.Now()
		for rows.Next() {
			var id string
			if rows.Scan(&id) == nil {
				if pr, ok := pending[id]; ok {
					lat.add(seen.Sub(pr.produced))
					delete(pending, id)
				}
			}
		}
		rows.Close()
	}
	return len(pending)
}
