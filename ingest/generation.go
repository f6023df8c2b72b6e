package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// runGeneration reads the generation's partitions until ctx is cancelled (stopped) or the
// generation ends. The generation is held open until the batch in hand is handled and committed.
func (c *Consumer) runGeneration(ctx context.Context, gen *kafka.Generation, parts []assignedPartition, h Handler) (stopped bool, err error) {
	ended := make(chan struct{})
	finished := make(chan struct{})
	defer close(finished)
	gen.Start(func(gctx context.Context) {
		<-gctx.Done()
		close(ended)
		<-finished
	})
	fetchCtx, stopFetch := context.WithCancel(ctx)
	var fetchers sync.WaitGroup
	defer func() {
		stopFetch()
		fetchers.Wait()
	}()
	// Memory stays bounded by what is in flight, whatever the records' sizes: short per-partition
	// queues (fetchQueue), a short hand-off of chunks (each closed at chunkRecords or a share of
	// BatchMaxBytes), batches closed at BatchMaxBytes, at most BatchesInFlight batches handed
	// downstream and not done.
	chunks := make(chan *chunk, min(fetchQueue, max(4, 2*len(parts))))
	spareChunks := sync.Pool{New: func() any { return new(chunk) }}
	release := func(ch *chunk) {
		ch.reset()
		spareChunks.Put(ch)
	}
	for _, p := range parts {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			c.fetch(fetchCtx, p, len(parts), chunks, func() *chunk { return spareChunks.Get().(*chunk) })
		}()
	}

	// The batches handed in are worked on as long as it takes while running (a ClickHouse outage
	// is held through), and for at most DrainTimeout once stopping, even those begun before.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(c.DrainTimeout, cancelWork) })
	defer stopDrain()

	// The free batches are a stack: the most recently done is filled next, so a backlog keeps
	// reusing the few batches its big runs need and the others stay small.
	var (
		freeMu sync.Mutex
		free   = make([]*flight, 0, c.cfg.BatchesInFlight)
	)
	for range c.cfg.BatchesInFlight {
		free = append(free, &flight{b: Batch{done: make(chan error, 1)}})
	}
	takeFree := func() *flight {
		freeMu.Lock()
		defer freeMu.Unlock()
		if n := len(free); n > 0 {
			f := free[n-1]
			free = free[:n-1]
			return f
		}
		return nil
	}
	handed := make(chan *flight, c.cfg.BatchesInFlight)
	// Records in flight are bounded too: a batch is started only while a full one still fits in
	// recordsInFlight, so big batches (a backlog) do not pile up as deep as small ones (live).
	// So are their bytes: huge records (a hostile flood) are held until announced, and decoding
	// beside judging lets the consumer run ahead of the announcer.
	var inFlight, bytesInFlight atomic.Int64
	budget := int64(recordsInFlight * c.cfg.BatchMaxRecords)
	bytesBudget := int64(bytesInFlightShare * c.cfg.BatchMaxBytes)
	freed := make(chan struct{}, 1)
	// The first failure, of handing a batch in or of writing one, ends the generation.
	var (
		failOnce sync.Once
		failure  error
		failed   = make(chan struct{}) // closed once failure is set
	)
	fail := func(err error) {
		failOnce.Do(func() {
			failure = err
			close(failed)
		})
	}
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		c.commitInOrder(workCtx, gen, handed, func(f *flight) {
			inFlight.Add(-int64(f.records))
			bytesInFlight.Add(-int64(f.bytes))
			freeMu.Lock()
			free = append(free, f)
			freeMu.Unlock()
			select {
			case freed <- struct{}{}:
			default:
			}
		}, fail)
	}()
	// drain waits until every batch handed in is done and committed, or given up.
	drain := func() {
		close(handed)
		<-committerDone
	}
	// give finishes the generation: a stop while a batch could not be finished is not an error
	// (its records are read again), a failure is.
	give := func(stopping bool) (bool, error) {
		drain()
		select {
		case <-failed:
			if ctx.Err() != nil {
				c.log.Warn("stopped before every batch in hand was written; their records will be read again", "err", failure)
				return true, nil
			}
			return false, failure
		default:
		}
		return stopping, nil
	}

	var carry *chunk // a chunk that did not fit in the batch before: it starts the next one
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	idler, _ := h.(Idler)
	for {
		// A batch to fill: at most BatchesInFlight are handed in and not done, and a full one
		// still fits in the records budget.
		var f *flight
		var held time.Time // since when the bounds have kept a batch from starting
		for {
			if inFlight.Load()+int64(c.cfg.BatchMaxRecords) <= budget && bytesInFlight.Load()+int64(c.cfg.BatchMaxBytes) <= bytesBudget {
				if f = takeFree(); f != nil {
					break
				}
			}
			if held.IsZero() {
				held = time.Now()
			}
			select {
			case <-freed:
			case <-ctx.Done():
				return give(true)
			case <-ended:
				return give(false)
			case <-failed:
				return give(false)
			}
		}
		if !held.IsZero() {
			c.metrics.heldSeconds.Add(time.Since(held).Seconds())
		}
		f.b.Reset()
		f.records, f.bytes, f.marks = 0, 0, f.marks[:0]
		// Wait for the first chunk of a batch.
		ch := carry
		carry = nil
	first:
		for ch == nil {
			select {
			case <-ctx.Done():
				return give(true)
			case <-ended:
				return give(false)
			case <-failed:
				return give(false)
			case <-idle.C:
				if idler == nil {
					continue
				}
				f.handed = c.now()
				if err := idler.Idle(workCtx, &f.b); err != nil {
					fail(fmt.Errorf("idle: %w", err))
					return give(false)
				}
				handed <- f
				f = nil
				break first
			case ch = <-chunks:
				idle.Reset(time.Second)
			}
		}
		if f == nil {
			continue // an idle tick was handed in
		}
		f.b.Fetched = ch.fetched
		f.add(ch)
		release(ch)
		timer.Reset(c.cfg.BatchMaxWait)
	fill:
		for f.records < c.cfg.BatchMaxRecords && f.bytes < c.cfg.BatchMaxBytes {
			select {
			case ch = <-chunks:
				if f.records+ch.b.Len() > c.cfg.BatchMaxRecords {
					carry = ch // the next batch's first
					break fill
				}
				f.add(ch)
				release(ch)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			case <-ended:
				break fill
			}
		}
		timer.Stop()
		stopping := ctx.Err() != nil
		c.metrics.batchRecords.Observe(float64(f.records))
		f.handed = c.now()
		inFlight.Add(int64(f.records))
		bytesInFlight.Add(int64(f.bytes))
		if err := h.Handle(workCtx, &f.b); err != nil {
			fail(fmt.Errorf("cannot handle a batch of %d records: %w", f.records, err))
			return give(false)
		}
		handed <- f
		if stopping {
			return give(true)
		}
	}
}
