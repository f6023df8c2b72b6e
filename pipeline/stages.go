package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/internal/backoff"
	"github.com/muckwatch/muckwatch/internal/eventtime"
	"github.com/muckwatch/muckwatch/internal/statetopic"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/sink"
)

// historyWriter is what the pipeline needs from ClickHouse.
type historyWriter interface {
	Write(ctx context.Context, b *sink.Batch) error
}

// feedWriter is what the pipeline needs from the Kafka outputs.
type feedWriter interface {
	Write(ctx context.Context, changes []detectors.Change, rejects []record.Reject) error
	// WriteState may not keep keys and values once it returned: they are the next write's.
	WriteState(ctx context.Context, keys, values [][]byte, partitions []int32) error
	WriteMisrouted(ctx context.Context, recs []record.Misrouted) error
}

// liveWriter publishes live records (api.LiveRecord) for the instances' shared view (api.view
// shared).
type liveWriter interface {
	WriteLive(ctx context.Context, keys, values [][]byte) error
}

// stateReader reads the detector checkpoints of some input partitions (statetopic.Read).
type stateReader func(ctx context.Context, inputs []int32, f func(key, value []byte) error) (int, error)

// batchObserver is told about every batch once it is judged and announced (the API's live view).
type batchObserver interface {
	Observe(fixes []record.Fix, officers []record.OfficerPosition, changes []detectors.Change)
}

// pipeline is the ingest.Handler that joins detection and the sinks, in four stages, each on a
// goroutine of its own, so that judging the next batch does not wait for Kafka or ClickHouse.
//
// Handle, on the consumer's goroutine, runs the detectors over a batch and hands it on. The
// announcer announces its alert changes and rejects on Kafka at once (the records they come
// from are already durable in the input topics: a crash before the batch is written only means
// they are judged, and announced under the same alert ids, again), shows them in the live view
// and hands the batch to the writer.
//
// The writer (Run) writes the batches in the order handed in to ClickHouse, retrying for as long
// as it fails; batches that queued up meanwhile are written together. Those that carry
// checkpoints go on to the state writer (saveState), which writes the checkpoints to the state
// topic, in order, while the writer goes on. The state on the state topic never runs ahead of the
// alert changes in ClickHouse.
//
// Checkpoints are taken on an interval (checkpointInterval), not with every batch: the batch
// judged once the interval has passed carries the checkpoints of every vehicle touched since
// the last one (a backlog touches almost every vehicle in every batch; producing them all each
// write cost a third of a write). A written batch without checkpoints is only Written: its
// offsets are committed with the next batch that carries them (Done), so that a crash restores
// checkpoints and offsets that go together and reads again at most an interval of input.
type stages struct {
	engine *detectors.Engine
	clock  *eventtime.Clock // how far each input partition has been read, in event time
	// now is the wall clock the event clock is read against (time.Now; a test's own clock)
	now     func() time.Time
	health  *health // the probes, told when the loop turns and when it holds back; may be nil
	history historyWriter
	feed    feedWriter
	log     *slog.Logger
	observe batchObserver // may be nil
	// live, with a shared view, publishes each judged batch's vehicles (position, risk) and
	// officers to the live topic, where every instance's view reads them; nil: not published
	live    liveWriter
	state   stateReader // may be nil: no state is restored
	topics  record.Topics
	group   string // the consumer group: its checkpoints are its own (statetopic.AppendKey)
	metrics pipelineMetrics
	// backoff paces the retries while a sink is down (retry, Rebalanced)
	backoff backoff.Policy

	judged  chan *judgedBatch // from Handle to the announcer
	toWrite chan *judgedBatch // from the announcer to the writer
	spare   chan *judgedBatch // judgedBatches to reuse
	// The writer writes at most every flushInterval, all the batches judged meanwhile together, or
	// at once when inFlight batches (all the consumer may hand over) are waiting.
	flushInterval time.Duration
	inFlight      int // batches
	fullRecords   int // records: more and the consumer may be waiting for some to be written

	// the writer's buffer: the batches written together
	merged sink.Batch
	// the state writer's: a snapshot's checkpoints keyed for the state topic
	checkpoints stateRecords
	// the alert changes waiting to be written with later records (changes.go)
	waiting waitingChanges
	// the event-time gauges, set as batches are written (eventtimes.go); judgedSeq numbers the
	// batches as they are judged (the consumer's goroutine)
	eventTimes *eventTimeGauges
	judgedSeq  uint64

	// checkpoints on an interval: when the last were taken
	checkpointInterval time.Duration
	checkpointed       time.Time
	// unsaved: records were judged since the last checkpoint; the first idle tick after them
	// checkpoints at once (Idle)
	unsaved bool
}

// judgedBatch is a batch the detectors have been over, on its way to the writer.
type judgedBatch struct {
	b       *ingest.Batch
	changes []detectors.Change
	// snap, when not nil: the batch carries the checkpoints of the vehicles touched since the last
	// ones, as after the batch, encoded on a goroutine of their own while the next batches are
	// judged; its offsets, and those of the batches before it, may be committed once it and they
	// are written (saveState)
	snap *detectors.Snapshot
	// paused: snap was taken at once, the input paused or the generation ending: its memory is
	// not kept for the next (detectors.Snapshot.Release)
	paused bool
	// once written, its offsets are committed by commit, after its checkpoints; its batch of
	// fixes is the consumer's again by then
	commit func(error)
	fixes  int
	// the vehicles the batch touched (its fixes, events and changes), when live records are made
	touched []string
	// the live records of the vehicles it touched and the officers it moved (stages.live), and
	// their keys and values once encoded
	live                 []api.LiveRecord
	liveKeys, liveValues [][]byte
	// the event clocks after the batch, for the gauges once it is written
	mark eventMark
}

type pipelineMetrics struct {
	detectSeconds  prometheus.Histogram
	waitSeconds    prometheus.Histogram
	latencySeconds prometheus.Histogram
	writeFailures  prometheus.Counter
	holding        prometheus.Gauge
	coalesced      prometheus.Histogram
	// writeSeconds: how long each step of a write took (records, changes, checkpoints)
	writeSeconds *prometheus.HistogramVec
	writeRecords prometheus.Observer
	writeChanges prometheus.Observer
	writeState   prometheus.Observer
	// checkpoints read back that Restore refused (restore.go)
	refused prometheus.Counter
}

// judgedQueue is how many judged batches may wait for the writer; the consumer's
// batches_in_flight bounds it in practice (a batch is in flight until written).
const judgedQueue = 64

func newStages(cfg StagesConfig, engine *detectors.Engine, history historyWriter, feed feedWriter, log *slog.Logger, reg prometheus.Registerer) *stages {
	cfg = cfg.withDefaults()
	p := &stages{engine: engine, clock: eventtime.New(cfg.IdlePartition), now: time.Now, history: history, feed: feed, log: log,
		backoff: backoff.Policy{Min: cfg.RetryBackoff, Max: cfg.MaxRetryBackoff},
		judged:  make(chan *judgedBatch, judgedQueue), toWrite: make(chan *judgedBatch, judgedQueue), spare: make(chan *judgedBatch, judgedQueue),
		checkpointInterval: cfg.CheckpointInterval}
	p.metrics = pipelineMetrics{
		detectSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_detector_batch_seconds",
			Help: "Time the detectors take over one batch.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		waitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_detection_wait_seconds",
			Help: "From a batch's first record fetched from Kafka to the detectors starting on it (decoding, the hand-off, the batch filling, the batches before it): the queueing part of muckwatch_detection_latency_seconds.", Buckets: prometheus.ExponentialBuckets(0.001, math.Sqrt2, 32)}),
		latencySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_detection_latency_seconds",
			Help: "From a batch's first record fetched from Kafka to its alert changes produced to muck.alerts.", Buckets: prometheus.ExponentialBuckets(0.001, math.Sqrt2, 32)}),
		writeFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_pipeline_write_failures_total",
			Help: "Batch writes that failed and were retried (the batch's offsets stay uncommitted meanwhile)."}),
		holding: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_pipeline_holding",
			Help: "1 while the pipeline holds back because a sink is failing."}),
		coalesced: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_pipeline_batches_per_write",
			Help: "Judged batches written to ClickHouse and the state topic together (those that queued up while the write before was under way).", Buckets: []float64{1, 2, 4, 8, 16, 32, 64}}),
		writeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "muckwatch_pipeline_write_seconds",
			Help:    "Time each step of a successful write took, by step: records (to ClickHouse), changes (alert changes to ClickHouse), checkpoints (to the state topic, once the changes are stored). Records go beside the other two.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"step"}),
	}
	p.metrics.refused = prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_state_checkpoints_refused_total",
		Help: "Detector checkpoints read back from the state topic that could not be restored (malformed, values that are not numbers, an unknown format): those vehicles start afresh."})
	p.metrics.writeRecords = p.metrics.writeSeconds.WithLabelValues("records")
	p.metrics.writeChanges = p.metrics.writeSeconds.WithLabelValues("changes")
	p.metrics.writeState = p.metrics.writeSeconds.WithLabelValues("checkpoints")
	p.eventTimes = newEventTimeGauges()
	if reg != nil {
		reg.MustRegister(p.metrics.detectSeconds, p.metrics.waitSeconds, p.metrics.latencySeconds, p.metrics.writeFailures, p.metrics.holding, p.eventTimes.judged, p.eventTimes.read, p.metrics.coalesced,
			p.metrics.writeSeconds, p.metrics.refused)
	}
	return p
}

// Handle implements ingest.Handler: it judges the batch and hands it on to be announced and
// written; the writer calls b.Done once it is written.
func (p *stages) Handle(ctx context.Context, b *ingest.Batch) error {
	p.turned()
	start := time.Now()
	if !b.Fetched.IsZero() {
		p.metrics.waitSeconds.Observe(start.Sub(b.Fetched).Seconds())
	}
	p.engine.Reset()
	p.advance(b, p.now())
	p.engine.ProcessBatch(b.Fixes, b.Events)
	p.metrics.detectSeconds.Observe(time.Since(start).Seconds())
	p.unsaved = p.unsaved || b.Len() > 0
	return p.pass(ctx, b, false)
}

// advance counts the batch's records in the event clock (a batch is read at once: one wall time
// for all of them) and tells the engine how far event time has got. A partition taken over that
// delivers its first record is read again: its restored vehicles are judged from now on.
func (p *stages) advance(b *ingest.Batch, wall time.Time) {
	p.clock.ReadBatch(b.Fixes, b.Events, wall, func(s record.Shard) { p.engine.Resume(s) })
	if wm, ok := p.clock.Watermark(wall); ok {
		p.engine.Advance(wm)
	}
}

// Idle implements ingest.Idler: with no record arriving, the partitions go quiet and stop holding
// back the event time, and the time-driven rules (signal_lost, trip closure) take the decisions
// that were waiting for them; the alert changes and checkpoints go the way of a batch's.
//
// The first idle tick after records were judged checkpoints at once, whatever the interval: the
// input has paused (a backlog worked off, a quiet hour), so the state of what was read is
// saved and its offsets committed now instead of up to an interval later, and a crash in the
// pause reads nothing again.
func (p *stages) Idle(ctx context.Context, b *ingest.Batch) error {
	p.turned()
	p.engine.Reset()
	if wm, ok := p.clock.Watermark(p.now()); ok {
		p.engine.Advance(wm)
	}
	p.engine.Tick()
	return p.pass(ctx, b, p.unsaved)
}

// Checkpoint implements ingest.Checkpointer: at the end of a generation (a rebalance, a stop) the
// vehicles touched since the last checkpoint are checkpointed, so that what was read is
// committed before another instance may take the partitions over.
func (p *stages) Checkpoint(ctx context.Context, b *ingest.Batch) error {
	p.engine.Reset()
	return p.pass(ctx, b, true)
}

// pass hands a judged batch, with its alert changes and, once checkpointInterval has passed since
// the last ones (or when told to), the checkpoints of the vehicles touched since, to the
// announcer (and through it to the writer).
func (p *stages) pass(ctx context.Context, b *ingest.Batch, checkpoint bool) error {
	var j *judgedBatch
	select {
	case j = <-p.spare:
	default:
		j = &judgedBatch{}
	}
	j.b = b
	j.changes = append(j.changes[:0], p.engine.Changes()...)
	if p.live != nil {
		p.touchedVehicles(j)
		p.liveRecords(j)
	}
	p.judgedSeq++
	j.mark = eventMark{seq: p.judgedSeq, judged: p.engine.Judged(), read: p.clock.Newest()}
	if now := p.now(); checkpoint || now.Sub(p.checkpointed) >= p.checkpointInterval {
		// The state after this batch, encoded while the next ones are judged (a fleet's takes
		// ~125 ms, which the batches behind it waited for when this goroutine encoded it), spread
		// over a quarter of the interval; at once when the input paused or the generation ends.
		spread := p.checkpointInterval / 4
		if checkpoint {
			spread = 0
		}
		p.checkpointed, p.unsaved = now, false
		j.snap, j.paused = p.engine.Snapshot(spread), checkpoint
	}
	select {
	case p.judged <- j:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cannot hand a batch to the announcer before shutdown: %w", ctx.Err())
	}
}

// announce announces the alert changes and rejects of each judged batch, in order, as soon as it
// comes (the consumer goes on judging the next one meanwhile), shows them in the live view and
// hands the batch to the writer. It returns once ctx is done.
func (p *stages) announce(ctx context.Context) {
	for {
		var j *judgedBatch
		select {
		case j = <-p.judged:
		case <-ctx.Done():
			return
		}
		b := j.b
		if len(b.Misrouted) > 0 { // re-keyed before the batch is done: its offsets then cover them
			if err := p.retry(ctx, "re-key the misrouted records of", len(b.Fixes), func() error {
				return p.feed.WriteMisrouted(ctx, b.Misrouted)
			}); err != nil {
				b.Done(err)
				return
			}
		}
		if len(j.changes) > 0 || len(b.Rejects) > 0 {
			if err := p.retry(ctx, "announce the alert changes and rejects of", len(b.Fixes), func() error {
				return p.feed.Write(ctx, j.changes, b.Rejects)
			}); err != nil {
				b.Done(err)
				return
			}
			if len(j.changes) > 0 && !b.Fetched.IsZero() {
				p.metrics.latencySeconds.Observe(time.Since(b.Fetched).Seconds())
			}
		}
		if p.live != nil {
			p.encodeLive(j)
		}
		if p.live != nil && len(j.liveValues) > 0 {
			if err := p.retry(ctx, "publish the live positions and risks of", len(b.Fixes), func() error {
				return p.live.WriteLive(ctx, j.liveKeys, j.liveValues)
			}); err != nil {
				b.Done(err)
				return
			}
		}
		if p.observe != nil {
			p.observe.Observe(b.Fixes, b.Officers, j.changes)
		}
		select {
		case p.toWrite <- j:
		case <-ctx.Done():
			b.Done(fmt.Errorf("cannot hand a batch to the writer before shutdown: %w", ctx.Err()))
			return
		}
	}
}

// Run is the pipeline's later stages until ctx is cancelled: the announcer (announce), the
// writer, which writes the judged batches to ClickHouse, several together, and the state
// writer (saveState), which writes the checkpoints some of them carry to the state topic.
func (p *stages) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { p.announce(ctx) })
	toSave := make(chan *judgedBatch, judgedQueue)
	wg.Go(func() { p.saveState(ctx, toSave) })
	var (
		group     []*judgedBatch
		lastWrite time.Time
		full      = judgedQueue
	)
	if p.inFlight > 0 {
		full = min(p.inFlight, judgedQueue)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	changesTimer := time.NewTimer(time.Hour)
	changesTimer.Stop()
	for {
		var changesWaited <-chan time.Time // the alert changes waiting are due, without a batch
		if at, ok := p.waiting.due(); ok {
			changesTimer.Reset(time.Until(at))
			changesWaited = changesTimer.C
		}
		select {
		case j := <-p.toWrite:
			group = append(group[:0], j)
		case <-changesWaited:
			if err := p.write(ctx, nil, true); err != nil {
				return
			}
			continue
		case <-ctx.Done():
			return
		}
		changesTimer.Stop()
		// Gather the batches judged until flushInterval after the last write (fewer, larger
		// inserts), or until the consumer may be waiting for them to be written.
		records := group[0].b.Len()
		filled := func() bool { return len(group) >= full || (p.fullRecords > 0 && records >= p.fullRecords) }
		if wait := time.Until(lastWrite.Add(p.flushInterval)); wait > 0 && !filled() {
			timer.Reset(wait)
		gather:
			for !filled() {
				select {
				case j := <-p.toWrite:
					group = append(group, j)
					records += j.b.Len()
				case <-timer.C:
					break gather
				case <-ctx.Done():
					break gather
				}
			}
			timer.Stop()
		}
	more: // whatever queued up meanwhile goes with it
		for len(group) < judgedQueue {
			select {
			case j := <-p.toWrite:
				group = append(group, j)
			default:
				break more
			}
		}
		lastWrite = time.Now()
		p.metrics.coalesced.Observe(float64(len(group)))
		err := p.write(ctx, group, p.waiting.add(group, lastWrite))
		for _, j := range group {
			switch {
			case err != nil:
				j.b.Done(err)
			case j.snap != nil: // committed once its checkpoints are written too
				j.fixes, j.commit = len(j.b.Fixes), j.b.WrittenCommitLater()
				j.b = nil // the consumer's again
				select {
				case toSave <- j:
					continue
				case <-ctx.Done():
					j.commit(fmt.Errorf("cannot hand checkpoints to the state writer before shutdown: %w", ctx.Err()))
				}
			default:
				if !p.waiting.hold(j) {
					p.eventTimes.set(j.mark)
				}
				j.b.Written()
			}
			p.recycle(j)
		}
		clear(group)
		if err != nil {
			return
		}
	}
}

// saveState writes the checkpoints of each written batch that carries them to the state topic,
// in order, and then says that the batch's offsets, and those of the batches written before it,
// may be committed (ingest.Batch.WrittenCommitLater: the batch itself was freed once written).
// The writer and the consumer go on with the next batches meanwhile: encoding and producing a
// fleet's checkpoints (~50 MB) took a third of a second, which the consumer waited for once
// every batch in flight was behind them. The checkpoints never run ahead of the alert changes in
// ClickHouse (the writer stored those of the batch, and of every batch before it, first), and a
// crash meanwhile only reads again from the last offsets committed.
func (p *stages) saveState(ctx context.Context, in <-chan *judgedBatch) {
	for {
		var j *judgedBatch
		select {
		case j = <-in:
		case <-ctx.Done():
			return
		}
		err := j.snap.Wait(ctx) // encoded while the batches after it were judged
		st := &p.checkpoints
		if err == nil {
			st.of(j.snap, p.group)
		}
		if err == nil && len(st.keys) > 0 {
			err = p.retry(ctx, "write the checkpoints of", j.fixes, func() error {
				start := time.Now()
				err := p.feed.WriteState(ctx, st.keys, st.values, st.parts)
				if err == nil {
					p.metrics.writeState.Observe(time.Since(start).Seconds())
				}
				return err
			})
		}
		if err == nil {
			// written: the snapshot's memory and the records' lists serve the next, unless the
			// input paused
			st.release(!j.paused)
			j.snap.Release(!j.paused)
			p.eventTimes.set(j.mark)
		}
		j.commit(err)
		p.recycle(j)
		if err != nil {
			return
		}
	}
}

// recycle keeps a judgedBatch, once its batch is written or given up, for the next.
func (p *stages) recycle(j *judgedBatch) {
	j.b = nil
	clear(j.changes)
	j.snap, j.paused, j.commit = nil, false, nil
	select {
	case p.spare <- j:
	default:
	}
}

// write writes a group of judged batches' records to ClickHouse, beside the alert changes
// waiting when changes is true (changes.go), retrying with back-off for as long as it fails (an outage holds the pipeline back;
// nothing is committed meanwhile). Every write is idempotent, so a retry after a partial success
// stores nothing twice in effect. The checkpoints some batches carry are written after it
// (saveState).
func (p *stages) write(ctx context.Context, group []*judgedBatch, changes bool) error {
	var batch sink.Batch
	m := &p.merged
	switch len(group) {
	case 0: // the changes alone
	case 1:
		batch = sink.Batch{Fixes: group[0].b.Fixes, Events: group[0].b.Events, Officers: group[0].b.Officers, Rejects: group[0].b.Rejects}
	default:
		m.Fixes, m.Events, m.Officers, m.Rejects = m.Fixes[:0], m.Events[:0], m.Officers[:0], m.Rejects[:0]
		for _, j := range group {
			m.Fixes = append(m.Fixes, j.b.Fixes...)
			m.Events = append(m.Events, j.b.Events...)
			m.Officers = append(m.Officers, j.b.Officers...)
			m.Rejects = append(m.Rejects, j.b.Rejects...)
		}
		batch = *m
	}
	defer clear(m.Rejects) // keep the buffer, not what it points to
	// The checkpoints are written once the alert changes they follow from are stored: a crash in
	// between reads the records again from the uncommitted offsets and judges them again, where a
	// checkpoint ahead of its changes would have them stored but never judged again, so lost.
	// The records themselves are stored beside the changes (read again, they are stored again).
	var pending sink.Batch
	if changes {
		pending.Changes = p.waiting.changes
	}
	err := p.retry(ctx, "write", len(batch.Fixes), func() error {
		var recordsErr error
		var wg sync.WaitGroup
		start := time.Now()
		if len(group) > 0 {
			wg.Go(func() {
				if recordsErr = p.history.Write(ctx, &batch); recordsErr == nil {
					p.metrics.writeRecords.Observe(time.Since(start).Seconds())
				}
			})
		}
		var err error
		if len(pending.Changes) > 0 {
			if err = p.history.Write(ctx, &pending); err == nil {
				p.metrics.writeChanges.Observe(time.Since(start).Seconds())
			}
		}
		wg.Wait()
		return errors.Join(recordsErr, err)
	})
	if err == nil && changes {
		p.eventTimes.set(p.waiting.written())
	}
	return err
}

// stateRecords is a snapshot's checkpoints keyed for the state topic. The state writer keeps
// one for every snapshot: once written, its lists are emptied and serve the next.
type stateRecords struct {
	keys, values [][]byte
	parts        []int32
	keyBytes     []byte
}

// of lists s's checkpoints keyed by group (statetopic.AppendKey).
func (r *stateRecords) of(s *detectors.Snapshot, group string) {
	n := s.Len()
	if n == 0 {
		return
	}
	r.keys, r.values, r.parts = slices.Grow(r.keys[:0], n), slices.Grow(r.values[:0], n), slices.Grow(r.parts[:0], n)
	r.keyBytes = slices.Grow(r.keyBytes[:0], n*(len(group)+1+12)) // a plate: 9-12 bytes
	s.Each(func(v string, shard record.Shard, cp []byte) {
		start := len(r.keyBytes)
		r.keyBytes = statetopic.AppendKey(r.keyBytes, group, v)
		r.keys = append(r.keys, r.keyBytes[start:len(r.keyBytes):len(r.keyBytes)])
		r.values = append(r.values, cp)
		r.parts = append(r.parts, shard.Partition)
	})
}

// release empties r once written, keeping its lists (keep), but not what they point to, for the
// next snapshot. A key appended past keyBytes' room made a new array for the keys after it; the
// earlier ones keep the old one until then.
func (r *stateRecords) release(keep bool) {
	if !keep {
		*r = stateRecords{}
		return
	}
	clear(r.keys)
	clear(r.values)
	r.keys, r.values, r.parts, r.keyBytes = r.keys[:0], r.values[:0], r.parts[:0], r.keyBytes[:0]
}

// turned tells the probes that the consumer's loop turned (a batch, or an idle tick).
func (p *stages) turned() {
	if p.health != nil {
		p.health.turn()
	}
}

// hold shows whether the pipeline holds back because a sink fails: muckwatch_pipeline_holding,
// and the readiness probe.
func (p *stages) hold(on bool) {
	v := 0.0
	if on {
		v = 1
	}
	p.metrics.holding.Set(v)
	if p.health != nil {
		p.health.setHolding(on)
	}
}

// retry calls f until it succeeds, with back-off, holding the pipeline back meanwhile; it gives
// up only when ctx is done.
//
// Retrying a failed write is this layer's job, not the sinks': ClickHouse's inserter makes one
// attempt per call and returns a wrapped error (see sink's inserter.insert). Only here is it
// known that the batch's offsets stay uncommitted while a sink fails, so that an outage can be
// held through for as long as it lasts, counted in muckwatch_pipeline_write_failures_total and
// shown by muckwatch_pipeline_holding; retries below this one would hide failures from those
// metrics, give up on their own after some attempts, and multiply the waits.
func (p *stages) retry(ctx context.Context, what string, fixes int, f func() error) error {
	failures := 0
	err := backoff.Retry(ctx, p.backoff, func() error {
		err := f()
		if err != nil {
			failures++
			p.metrics.writeFailures.Inc()
			p.hold(true)
		}
		return err
	}, func(attempt int, err error, wait time.Duration) {
		p.log.Warn("cannot "+what+" a batch; holding back and retrying", "fixes", fixes, "attempt", attempt, "retry_in", wait, "err", err)
	})
	if err != nil {
		return fmt.Errorf("cannot %s a batch of %d fixes before shutdown: %w", what, fixes, err)
	}
	if failures > 0 {
		p.log.Info("sinks recovered", "did", what+" a batch", "attempts", failures+1)
		p.hold(false)
	}
	return nil
}

// liveRecords gathers the live records of a judged batch, on the consumer's goroutine (the engine
// is between batches): the position and risk of every vehicle it touched (j.touched) and the
// newest position of every officer it moved. The announcer encodes them (encodeLive).
func (p *stages) liveRecords(j *judgedBatch) {
	j.live = j.live[:0]
	for _, plate := range j.touched {
		risk, ok := p.engine.Risk(plate)
		if !ok {
			continue // forgotten (its partition released) or never scored
		}
		sv := &api.SharedVehicle{VehiclePosition: api.VehiclePosition{Plate: plate}, Risk: risk}
		if lat, lon, speed, at, ok := p.engine.LastSeen(plate); ok {
			sv.Lat, sv.Lon, sv.SpeedKmh, sv.TimeMs = lat, lon, float32(speed), at.UnixMilli()
		}
		j.live = append(j.live, api.LiveRecord{Vehicle: sv})
	}
	newest := map[string]int{}
	for i := range j.b.Officers {
		o := &j.b.Officers[i]
		if k, ok := newest[o.OfficerID]; !ok || j.b.Officers[k].Time.Before(o.Time) {
			newest[o.OfficerID] = i
		}
	}
	for _, i := range newest {
		o := &j.b.Officers[i]
		j.live = append(j.live, api.LiveRecord{Officer: &api.OfficerPosition{OfficerID: o.OfficerID, Lat: o.Lat, Lon: o.Lon, Available: o.Available, TimeMs: o.Time.UnixMilli()}})
	}
}

// touchedVehicles lists, once each, the vehicles a judged batch touched: those of its fixes and
// events and those its changes are about (time-driven decisions included).
func (p *stages) touchedVehicles(j *judgedBatch) {
	j.touched = j.touched[:0]
	seen := make(map[string]struct{}, len(j.b.Fixes)/4+len(j.changes))
	add := func(plate string) {
		if _, ok := seen[plate]; !ok {
			seen[plate] = struct{}{}
			j.touched = append(j.touched, plate)
		}
	}
	for i := range j.b.Fixes {
		add(j.b.Fixes[i].VehicleID)
	}
	for i := range j.b.Events {
		add(j.b.Events[i].VehicleID)
	}
	for i := range j.changes {
		add(j.changes[i].Alert.VehicleID)
	}
}

// encodeLive encodes a judged batch's live records, on the announcer's goroutine.
func (p *stages) encodeLive(j *judgedBatch) {
	j.liveKeys, j.liveValues = j.liveKeys[:0], j.liveValues[:0]
	for i := range j.live {
		r := &j.live[i]
		v, err := json.Marshal(r)
		if err != nil { // plain fields only: cannot happen
			p.log.Error("cannot encode a live record", "err", err)
			continue
		}
		j.liveKeys = append(j.liveKeys, api.LiveKey(nil, r))
		j.liveValues = append(j.liveValues, v)
	}
	clear(j.live)
}
