package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sink"
)

// running is the pipeline running in this process, as the bench measures it.
type running struct {
	started pipeline.Started
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	stopped chan struct{} // closed once pipeline.Run has returned
	err     error         // what it returned, once stopped is closed
}

// startPipeline starts the pipeline with cfg and returns once it is consuming. It is stopped with
// stop, not by the end of ctx: it must drain and commit before the broker and ClickHouse go.
func startPipeline(ctx context.Context, cfg pipeline.Config, log *slog.Logger, reg *prometheus.Registry) (*running, error) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &running{reg: reg, cancel: cancel, stopped: make(chan struct{})}
	ready := make(chan pipeline.Started, 1)
	go func() {
		p.err = pipeline.Run(pctx, cfg, log, reg, ready)
		close(p.stopped)
	}()
	select {
	case p.started = <-ready:
		return p, nil
	case <-p.stopped:
		cancel()
		return nil, fmt.Errorf("the pipeline did not start: %w", p.err)
	case <-ctx.Done():
		_ = p.stop()
		return nil, ctx.Err()
	}
}

// stop stops the pipeline, waits until it has, and returns what it returned; calls after the
// first return the same.
func (p *running) stop() error {
	p.cancel()
	<-p.stopped
	return p.err
}

// workBacklog starts the pipeline on the backlog and measures it working the backlog off: its
// rate, CPU, batches, heap and alerts. It returns the pipeline still running, for the live
// phase, and the bench's watch on it.
func workBacklog(ctx context.Context, o *Options, cfg pipeline.Config, log *slog.Logger, ch *sink.ClickHouse, brokerAddr string,
	ps procSet, r *Report) (*running, *watch, error) {
	r.HeapBefore = liveHeap()
	cpuBacklog := ps.mark()
	debug.FreeOSMemory()
	r.PeakRSSReset = resetPeakRSS() == nil
	if !r.PeakRSSReset {
		r.Notes = append(r.Notes, "cannot reset the peak RSS (/proc/self/clear_refs): it includes the preload and the ceiling phases")
	}
	var prof *os.File
	if o.CPUProfile != "" {
		var err error
		if prof, err = os.Create(o.CPUProfile); err != nil {
			return nil, nil, fmt.Errorf("cannot create the CPU profile: %w", err)
		}
		defer prof.Close()
		if err := pprof.StartCPUProfile(prof); err != nil {
			return nil, nil, fmt.Errorf("cannot start the CPU profile: %w", err)
		}
	}
	stopProfile := func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil
		}
	}
	defer stopProfile()

	gc0 := readGC()
	reg := pipeline.NewRegistry()
	began := time.Now()
	o.logf("starting the pipeline on the backlog")
	p, err := startPipeline(ctx, cfg, log, reg)
	if err != nil {
		return nil, nil, err
	}
	readyAt := time.Now()
	cpuReady := ps.mark()
	r.StartupCPU = cpuReady.self - cpuBacklog.self
	sumsBacklog := gatherSums(reg)
	stopTrace, err := startTrace(o.Trace, readyAt, traceFor)
	if err != nil {
		_ = p.stop()
		return nil, nil, err
	}
	defer stopTrace()
	r.StartupSeconds = readyAt.Sub(began).Seconds()
	r.TrackedAtReady = p.started.Engine.Tracks()
	r.HeapReady = liveHeap()
	w := &watch{conn: ch, db: cfg.ClickHouse.Database, client: &kafka.Client{Addr: kafka.TCP(brokerAddr), Timeout: 10 * time.Second},
		group: cfg.Kafka.GroupID, topic: cfg.Kafka.Topics.GPS, partitions: o.Partitions, stopped: p.stopped}
	doneAt, err := w.waitCaughtUp(ctx, uint64(o.Fixes))
	if err != nil {
		select {
		case <-p.stopped:
			err = fmt.Errorf("the pipeline did not work off the backlog: %w: %v", err, p.err)
		default:
			err = fmt.Errorf("the pipeline did not work off the backlog: %w", err)
		}
		_ = p.stop()
		return nil, nil, err
	}
	stopProfile()
	stopTrace()
	// The backlog's CPU is counted from when the pipeline is consuming: its start (the city
	// loaded, checkpoints restored) is once a process, not a cost a fix (StartupCPU).
	r.BacklogCPU = ps.since(cpuReady)
	r.BacklogBatches = batchesSince(sumsBacklog, gatherSums(reg), doneAt.Sub(readyAt))
	r.PipelineSeconds = doneAt.Sub(readyAt).Seconds()
	r.PipelineRate = float64(o.Fixes) / r.PipelineSeconds
	r.PipelineRateAll = float64(o.Fixes) / doneAt.Sub(began).Seconds()
	r.CeilingShare = r.PipelineRate / r.CeilingRate
	r.CPUPerFix = r.BacklogCPU.Pipeline / r.PipelineRate * 1e6
	gc1 := readGC()
	r.BacklogGCCPU, r.BacklogGCCycles = gc1.cpu-gc0.cpu, gc1.cycles-gc0.cycles
	r.HeapAfter = liveHeap()
	// What a collection over that heap costs, the pipeline idle: the best of three, each with
	// both cores marking (the pipeline's collections mark beside the traffic, on a quarter of
	// the cores and the idle time).
	r.FullGCMs = math.Inf(1)
	for range 3 {
		t := time.Now()
		runtime.GC()
		r.FullGCMs = min(r.FullGCMs, float64(time.Since(t).Microseconds())/1000)
	}
	if err := readBacklogState(ctx, o, reg, w, r); err != nil {
		_ = p.stop()
		return nil, nil, err
	}
	o.logf("backlog worked off: %.0f fixes/s sustained (%.1fs after a %.1fs start), %d vehicles tracked", r.PipelineRate, r.PipelineSeconds, r.StartupSeconds, r.Tracked)
	return p, w, nil
}

// readBacklogState reads what the pipeline holds once the backlog is worked off: a heap profile
// if asked, the vehicles tracked and their heap, the alerts opened and the rows stored.
func readBacklogState(ctx context.Context, o *Options, reg prometheus.Gatherer, w *watch, r *Report) error {
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile); err != nil {
			return err
		}
	}
	tracked, err := gatherValue(reg, "muckwatch_tracked_vehicles")
	if err != nil {
		return err
	}
	r.Tracked = int(tracked)
	if n := r.Tracked - r.TrackedAtReady; n > 0 {
		r.HeapPerVehicle = (float64(r.HeapAfter) - float64(r.HeapReady)) / float64(n)
	}
	if r.Tracked > 0 {
		r.HeapAllPerVeh = (float64(r.HeapAfter) - float64(r.HeapBefore)) / float64(r.Tracked)
	}
	opened := [2]string{"change", "opened"}
	if r.BacklogAlerts, err = gatherCounter(reg, "muckwatch_alert_changes_total", opened); err != nil {
		return err
	}
	if r.BacklogAlertsByRule, err = gatherCounterBy(reg, "muckwatch_alert_changes_total", "rule", opened); err != nil {
		return err
	}
	if r.BacklogStored, err = w.count(ctx, "count()"); err != nil {
		return err
	}
	return nil
}

// liveHeap returns this process's live heap after a collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
