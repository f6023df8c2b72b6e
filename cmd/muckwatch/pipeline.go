package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/sink"
)

// historyWriter is what the pipeline needs from ClickHouse.
type historyWriter interface {
	Write(ctx context.Context, b *sink.Batch) error
}

// feedWriter is what the pipeline needs from the Kafka outputs.
type feedWriter interface {
	Write(ctx context.Context, changes []detectors.Change, rejects []ingest.Reject) error
	WriteState(ctx context.Context, keys, values [][]byte, partitions []int32) error
}

// stateReader reads the detector checkpoints of some input partitions (sink.ReadState).
type stateReader func(ctx context.Context, inputs []int32, f func(key, value []byte) error) (int, error)

// batchObserver is told about every batch once it is durably written (the API's live view).
type batchObserver interface {
	Observe(fixes []ingest.Fix, officers []ingest.OfficerPosition, changes []detectors.Change)
}

// pipeline is the ingest.Handler that joins detection and the sinks: it runs the detectors over a
// batch, then writes history to ClickHouse and alert changes and rejects to Kafka, retrying until
// both succeeded. Only then does the consumer commit the batch's offsets.
type pipeline struct {
	engine  *detectors.Engine
	history historyWriter
	feed    feedWriter
	log     *slog.Logger
	observe batchObserver // may be nil
	state   stateReader   // may be nil: no state is restored
	topics  ingest.Topics
	batch   sink.Batch
	// the checkpoints of the vehicles the batch touched, written after the batch and before commit
	stateKeys, stateValues [][]byte
	stateParts             []int32
	metrics                pipelineMetrics
	// retry backoff while a sink is down
	backoffMin, backoffMax time.Duration
}

type pipelineMetrics struct {
	detectSeconds  prometheus.Histogram
	latencySeconds prometheus.Histogram
	writeFailures  prometheus.Counter
	holding        prometheus.Gauge
	judged         prometheus.Gauge
	read           prometheus.Gauge
}

func newPipeline(engine *detectors.Engine, history historyWriter, feed feedWriter, log *slog.Logger, reg prometheus.Registerer) *pipeline {
	p := &pipeline{engine: engine, history: history, feed: feed, log: log, backoffMin: 200 * time.Millisecond, backoffMax: 10 * time.Second}
	p.metrics = pipelineMetrics{
		detectSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_detector_batch_seconds",
			Help: "Time the detectors take over one batch.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		latencySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_detection_latency_seconds",
			Help: "From a batch's first record fetched from Kafka to its alert changes produced to muck.alerts.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		writeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_pipeline_write_failures_total",
			Help: "Batch writes that failed and were retried (the batch's offsets stay uncommitted meanwhile)."}),
		holding: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_pipeline_holding",
			Help: "1 while the pipeline holds back because a sink is failing."}),
		judged: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_event_time_judged_seconds",
			Help: "Event time (Unix seconds) up to which the time-driven rules (signal_lost, trip closure) have decided and their alerts are written: every busy input partition has been read up to it. Wall time minus this is the pipeline's event-time lag."}),
		read: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_event_time_read_seconds",
			Help: "Newest event time (Unix seconds) read from the input partitions this instance owns. Once the input goes quiet, muckwatch_event_time_judged_seconds reaches it."}),
	}
	if reg != nil {
		reg.MustRegister(p.metrics.detectSeconds, p.metrics.latencySeconds, p.metrics.writeFailures, p.metrics.holding, p.metrics.judged, p.metrics.read)
	}
	return p
}

// Handle implements ingest.Handler.
func (p *pipeline) Handle(ctx context.Context, b *ingest.Batch) error {
	start := time.Now()
	p.engine.Reset()
	p.engine.ProcessBatch(b.Fixes, b.Events)
	p.metrics.detectSeconds.Observe(time.Since(start).Seconds())
	return p.flush(ctx, b)
}

// flush writes a batch after detection: its records, the alert changes, the checkpoints of the
// vehicles it touched; then tells the live view.
func (p *pipeline) flush(ctx context.Context, b *ingest.Batch) error {
	p.batch = sink.Batch{Fixes: b.Fixes, Events: b.Events, Officers: b.Officers, Changes: p.engine.Changes(), Rejects: b.Rejects}
	p.stateKeys, p.stateValues, p.stateParts = p.stateKeys[:0], p.stateValues[:0], p.stateParts[:0]
	p.engine.Dirty(func(vehicle string, partition int32, cp []byte) {
		p.stateKeys = append(p.stateKeys, []byte(vehicle))
		p.stateValues = append(p.stateValues, cp)
		p.stateParts = append(p.stateParts, partition)
	})
	if err := p.write(ctx); err != nil {
		return err
	}
	if len(p.batch.Changes) > 0 && !b.Fetched.IsZero() {
		p.metrics.latencySeconds.Observe(time.Since(b.Fetched).Seconds())
	}
	if p.observe != nil {
		p.observe.Observe(b.Fixes, b.Officers, p.batch.Changes)
	}
	p.batch = sink.Batch{}
	p.setJudged()
	return nil
}

// Idle implements ingest.Idler: with no record arriving, the partitions go quiet and stop holding
// back the event time, and the time-driven rules (signal_lost, trip closure) take the decisions
// that were waiting for them; the alert changes and checkpoints are written as after a batch.
// Nothing is committed: no offset moved.
// A shutdown meanwhile is not an error: the checkpoints still hold the state before this tick, and
// the next run takes the same decisions.
func (p *pipeline) Idle(ctx context.Context) error {
	p.engine.Reset()
	p.engine.Tick()
	if len(p.engine.Changes()) == 0 {
		p.setJudged()
		return nil
	}
	if err := p.flush(ctx, &ingest.Batch{}); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

func (p *pipeline) setJudged() {
	if t := p.engine.Judged(); !t.IsZero() {
		p.metrics.judged.Set(float64(t.UnixMilli()) / 1000)
	}
	if t := p.engine.Read(); !t.IsZero() {
		p.metrics.read.Set(float64(t.UnixMilli()) / 1000)
	}
}

// write writes the batch to ClickHouse and Kafka, then the touched vehicles' checkpoints, retrying with back-off for as long as a sink
// fails (an outage holds the pipeline back; nothing is committed meanwhile). Both writes are
// idempotent, so a retry after a partial success stores nothing twice in effect.
func (p *pipeline) write(ctx context.Context) error {
	backoff := p.backoffMin
	for attempt := 1; ; attempt++ {
		err := p.history.Write(ctx, &p.batch)
		if err == nil {
			err = p.feed.Write(ctx, p.batch.Changes, p.batch.Rejects)
		}
		if err == nil {
			err = p.feed.WriteState(ctx, p.stateKeys, p.stateValues, p.stateParts)
		}
		if err == nil {
			if attempt > 1 {
				p.log.Info("sinks recovered; batch written", "attempts", attempt)
				p.metrics.holding.Set(0)
			}
			return nil
		}
		p.metrics.writeFailures.Inc()
		p.metrics.holding.Set(1)
		p.log.Warn("cannot write a batch; holding back and retrying", "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot write a batch of %d fixes before shutdown: %w", len(p.batch.Fixes), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, p.backoffMax)
	}
}

// Rebalanced implements ingest.Rebalancer: detector state moves with the input partitions. The
// vehicles of revoked partitions are forgotten (their new owner carries them on); those of added
// partitions are restored from their checkpoints on the state topic, written before every commit,
// so the state restored covers at least the committed offsets the partition is read from. Records
// read again after a checkpoint are stored but not judged twice.
func (p *pipeline) Rebalanced(ctx context.Context, r ingest.Rebalance) error {
	forgot := 0
	for _, tp := range r.Revoked {
		forgot += p.engine.Release(tp.Topic, tp.Partition)
	}
	added := map[ingest.TopicPartition]bool{}
	var inputs []int32
	for _, tp := range r.Added {
		if tp.Topic != p.topics.GPS && tp.Topic != p.topics.Events {
			continue
		}
		forgot += p.engine.Release(tp.Topic, tp.Partition) // whatever this instance knew of it is stale
		added[tp] = true
		inputs = append(inputs, tp.Partition)
	}
	if len(inputs) == 0 || p.state == nil {
		p.log.Info("partitions moved", "generation", r.Generation, "owned", len(r.Owned), "revoked", len(r.Revoked), "vehicles_forgotten", forgot)
		return nil
	}
	owned := func(topic string, partition int32) bool {
		return added[ingest.TopicPartition{Topic: topic, Partition: partition}]
	}
	began := time.Now()
	backoff := p.backoffMin
	for attempt := 1; ; attempt++ {
		restored := 0
		n, err := p.state(ctx, inputs, func(_, v []byte) error {
			if err := p.engine.Restore(v, owned); err != nil {
				p.log.Warn("a detector checkpoint cannot be restored; that vehicle starts afresh", "err", err)
			} else {
				restored++
			}
			return nil
		})
		if err == nil {
			for _, tp := range r.CaughtUp {
				p.engine.Caught(tp.Topic, tp.Partition)
			}
			if attempt > 1 {
				p.metrics.holding.Set(0)
			}
			p.log.Info("detector state restored for the partitions taken over", "generation", r.Generation,
				"added", len(r.Added), "revoked", len(r.Revoked), "checkpoints_read", n, "vehicles", p.engine.Tracks(),
				"vehicles_forgotten", forgot, "caught_up", r.CaughtUp, "took", time.Since(began).Round(time.Millisecond))
			return nil
		}
		p.metrics.holding.Set(1)
		p.log.Warn("cannot read the detector checkpoints of the partitions taken over; retrying", "attempt", attempt, "retry_in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("cannot restore the detector state of partitions %v: %w", inputs, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, p.backoffMax)
	}
}
