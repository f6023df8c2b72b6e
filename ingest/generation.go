package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// generation reads one generation of the group for this instance: a fetcher per assigned
// partition decodes its records into chunks; the read loop (run) fills batches from them and
// hands each to the handler and then to the committer (commitInOrder), which commits the batches'
// offsets in order once each is done. The generation is held open until the batches in hand are
// handled and committed.
type generation struct {
	c            *Consumer
	gen          *kafka.Generation
	h            Handler
	idler        Idler        // h, when it has time-driven decisions
	checkpointer Checkpointer // h, when it holds offsets back until it checkpoints

	// ctx is the consumer's, cancelled when it stops. read ends the read loop: cancelled too when
	// the group ends the generation (an instance joined or left) and at the first failure. work
	// is the handler's and the committer's: it outlives a stop by DrainTimeout, so that what was
	// read is written and committed.
	ctx, read, work context.Context
	stopRead        context.CancelFunc

	chunks chan *chunk // from the fetchers, each partition's in order
	spare  sync.Pool   // of *chunk
	carry  *chunk      // a chunk that did not fit in the batch before: it starts the next one

	flights   *flights
	handed    chan *flight  // to the committer, in the order handed downstream
	committed chan struct{} // closed once the committer has returned

	// The first failure, of handing a batch in or of writing one, ends the generation.
	failOnce sync.Once
	failure  error
	failed   chan struct{} // closed once failure is set
}

func newGeneration(ctx context.Context, c *Consumer, gen *kafka.Generation, h Handler, partitions int) *generation {
	g := &generation{
		c: c, gen: gen, h: h, ctx: ctx,
		// Memory stays bounded by what is in flight, whatever the records' sizes: short
		// per-partition queues (fetchQueue), a short hand-off of chunks (each closed at
		// chunkRecords or a share of BatchMaxBytes), batches closed at BatchMaxBytes, at most
		// BatchesInFlight batches handed downstream and not done (flights).
		chunks:    make(chan *chunk, min(fetchQueue, max(4, 2*partitions))),
		spare:     sync.Pool{New: func() any { return new(chunk) }},
		flights:   newFlights(c.cfg),
		handed:    make(chan *flight, c.cfg.BatchesInFlight),
		committed: make(chan struct{}),
		failed:    make(chan struct{}),
	}
	g.idler, _ = h.(Idler)
	g.checkpointer, _ = h.(Checkpointer)
	g.read, g.stopRead = context.WithCancel(ctx)
	return g
}

// runGeneration reads the generation's partitions until ctx is cancelled (stopped) or the
// generation ends.
func (c *Consumer) runGeneration(ctx context.Context, gen *kafka.Generation, parts []assignedPartition, h Handler) (stopped bool, err error) {
	return newGeneration(ctx, c, gen, h, len(parts)).run(parts)
}

// run starts the fetchers and the committer and runs the read loop: a batch to fill, its first
// chunk (or, after a second without one, an idle tick), the chunks that follow until it is full
// or BatchMaxWait has passed, then the batch handed in; until the read ends.
func (g *generation) run(parts []assignedPartition) (stopped bool, err error) {
	defer g.stopRead()
	finished := make(chan struct{})
	defer close(finished)
	g.gen.Start(func(gctx context.Context) { // the group ends the generation: read no more, but
		<-gctx.Done() // hold it open until what was read is committed
		g.stopRead()
		<-finished
	})
	fetchCtx, stopFetch := context.WithCancel(g.ctx)
	var fetchers sync.WaitGroup
	defer func() {
		stopFetch()
		fetchers.Wait()
	}()
	for _, p := range parts {
		fetchers.Go(func() { g.c.fetch(fetchCtx, p, len(parts), g.chunks, &g.spare) })
	}
	// The batches handed in are worked on as long as it takes while running (a ClickHouse outage
	// is held through), and for at most DrainTimeout once stopping, even those begun before.
	work, cancelWork := context.WithCancel(context.WithoutCancel(g.ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(g.ctx, func() { time.AfterFunc(g.c.DrainTimeout, cancelWork) })
	defer stopDrain()
	g.work = work
	go g.commitInOrder()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	for {
		f := g.batchToFill()
		if f == nil {
			return g.finish()
		}
		ch := g.firstChunk(f, idle)
		if ch == nil {
			if g.read.Err() != nil {
				return g.finish()
			}
			continue // f went to the Idler on an idle tick
		}
		g.fill(f, ch, timer)
		stopping := g.ctx.Err() != nil
		if !g.hand(f) || stopping {
			return g.finish()
		}
	}
}

// batchToFill waits for a batch to fill (see flights.take); nil once the read has ended.
func (g *generation) batchToFill() *flight {
	var held time.Time // since when the bounds have kept a batch from starting
	for {
		if f := g.flights.take(); f != nil {
			if !held.IsZero() {
				g.c.metrics.heldSeconds.Add(time.Since(held).Seconds())
			}
			return f
		}
		if held.IsZero() {
			held = time.Now()
		}
		select {
		case <-g.flights.freed:
		case <-g.read.Done():
			return nil
		}
	}
}

// firstChunk waits for the first chunk of f, the one carried over or the next to come. At every
// second without one it hands f, empty, to the Idler if the handler is one, and returns nil; it
// returns nil too once the read has ended.
func (g *generation) firstChunk(f *flight, idle *time.Ticker) *chunk {
	if ch := g.carry; ch != nil {
		g.carry = nil
		return ch
	}
	for {
		select {
		case ch := <-g.chunks:
			idle.Reset(time.Second)
			return ch
		case <-idle.C:
			if g.idler == nil {
				continue
			}
			f.handed = g.c.now()
			if err := g.idler.Idle(g.work, &f.b); err != nil {
				g.fail(fmt.Errorf("idle: %w", err))
			} else {
				g.handed <- f
			}
			return nil
		case <-g.read.Done():
			return nil
		}
	}
}

// fill adds ch and the chunks that follow it to f until f is full, BatchMaxWait has passed or
// the read has ended. A chunk that would take f past BatchMaxRecords starts the next batch.
func (g *generation) fill(f *flight, ch *chunk, timer *time.Timer) {
	f.b.Fetched = ch.fetched
	f.add(ch)
	g.release(ch)
	timer.Reset(g.c.cfg.BatchMaxWait)
	defer timer.Stop()
	for f.records < g.c.cfg.BatchMaxRecords && f.bytes < g.c.cfg.BatchMaxBytes {
		select {
		case ch = <-g.chunks:
			if f.records+ch.b.Len() > g.c.cfg.BatchMaxRecords {
				g.carry = ch
				return
			}
			f.add(ch)
			g.release(ch)
		case <-timer.C:
			return
		case <-g.read.Done():
			return
		}
	}
}

// release gives a chunk whose records are in a batch back to the fetchers.
func (g *generation) release(ch *chunk) {
	ch.reset()
	g.spare.Put(ch)
}

// hand hands f to the handler, then to the committer; false: the handler failed.
func (g *generation) hand(f *flight) bool {
	g.c.metrics.batchRecords.Observe(float64(f.records))
	f.handed = g.c.now()
	g.flights.hand(f)
	if err := g.h.Handle(g.work, &f.b); err != nil {
		g.fail(fmt.Errorf("cannot handle a batch of %d records: %w", f.records, err))
		return false
	}
	g.handed <- f
	return true
}

// fail records the generation's first failure and ends the read.
func (g *generation) fail(err error) {
	g.failOnce.Do(func() {
		g.failure = err
		close(g.failed)
		g.stopRead()
	})
}

// finish waits until every batch handed in is done and committed, or given up, and says how the
// generation ended: a stop while a batch could not be finished is not an error (its records are
// read again), a failure is.
func (g *generation) finish() (stopped bool, err error) {
	g.checkpoint()
	close(g.handed)
	<-g.committed
	stopped = g.ctx.Err() != nil
	select {
	case <-g.failed:
		if stopped {
			g.c.log.Warn("stopped before every batch in hand was written; their records will be read again", "err", g.failure)
			return true, nil
		}
		return false, g.failure
	default:
	}
	return stopped, nil
}

// checkpoint hands a Checkpointer an empty batch at the end of the generation, unless it failed,
// so that the offsets it holds back are committed before the partitions may go elsewhere.
func (g *generation) checkpoint() {
	if g.checkpointer == nil {
		return
	}
	var f *flight
	for f == nil {
		select {
		case <-g.failed:
			return
		default:
		}
		if f = g.flights.take(); f != nil {
			break
		}
		select {
		case <-g.flights.freed:
		case <-g.failed:
			return
		case <-g.work.Done():
			return
		}
	}
	f.handed = g.c.now()
	if err := g.checkpointer.Checkpoint(g.work, &f.b); err != nil {
		g.fail(fmt.Errorf("cannot checkpoint at the end of generation %d: %w", g.gen.ID, err))
		g.flights.done(f)
		return
	}
	g.handed <- f
}

// flights are a generation's batches: the free ones, to be filled, and the bounds on those handed
// downstream and not yet done. There are BatchesInFlight of them; a batch is started only while
// a full one still fits in the records and the bytes budgets, so big batches (a backlog) do not
// pile up as deep as small ones (live), and huge records (a hostile flood) are held until
// written while decoding beside judging lets the consumer run ahead of the writer.
type flights struct {
	mu sync.Mutex
	// free is a stack: the most recently done batch is filled next, so a backlog keeps reusing
	// the few batches its big runs need and the others stay small.
	free                   []*flight
	records, bytes         int64         // handed downstream and not done
	maxRecords, maxBytes   int64         // the budgets
	fullRecords, fullBytes int64         // a full batch
	freed                  chan struct{} // signalled when a batch is done
}

func newFlights(cfg ConsumerConfig) *flights {
	fs := &flights{
		free:        make([]*flight, 0, cfg.BatchesInFlight),
		maxRecords:  int64(recordsInFlight * cfg.BatchMaxRecords),
		maxBytes:    int64(bytesInFlightShare * cfg.BatchMaxBytes),
		fullRecords: int64(cfg.BatchMaxRecords),
		fullBytes:   int64(cfg.BatchMaxBytes),
		freed:       make(chan struct{}, 1),
	}
	for range cfg.BatchesInFlight {
		fs.free = append(fs.free, &flight{b: Batch{done: make(chan Verdict, 1)}})
	}
	return fs
}

// take returns a free batch, emptied, if a full one fits in the budgets; else nil.
func (fs *flights) take() *flight {
	fs.mu.Lock()
	n := len(fs.free)
	if n == 0 || fs.records+fs.fullRecords > fs.maxRecords || fs.bytes+fs.fullBytes > fs.maxBytes {
		fs.mu.Unlock()
		return nil
	}
	f := fs.free[n-1]
	fs.free = fs.free[:n-1]
	fs.mu.Unlock()
	f.b.Reset()
	f.records, f.bytes, f.marks = 0, 0, f.marks[:0]
	return f
}

// hand counts f's records and bytes as handed downstream.
func (fs *flights) hand(f *flight) {
	fs.mu.Lock()
	fs.records += int64(f.records)
	fs.bytes += int64(f.bytes)
	fs.mu.Unlock()
}

// done frees f, done and committed (or given up), to be filled again.
func (fs *flights) done(f *flight) {
	fs.mu.Lock()
	fs.records -= int64(f.records)
	fs.bytes -= int64(f.bytes)
	fs.free = append(fs.free, f)
	fs.mu.Unlock()
	select {
	case fs.freed <- struct{}{}:
	default:
	}
}
