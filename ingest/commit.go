package ingest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/internal/backoff"
)

// commitInOrder waits for each batch handed in to be done, in order, and commits its offsets;
// then the batch may be filled again. After a failure nothing more is committed: the records from
// there on are read again. It returns once the read loop has closed g.handed and every batch in
// it is done and committed, or given up at the drain timeout.
//
// A batch written whose commit waits for the handler (Batch.WrittenCommitLater) is freed at once:
// the marks up to it wait in pending, in order, while the batches after it are taken on; a batch
// done meanwhile waits behind them, so that offsets are committed in order.
func (g *generation) commitInOrder() {
	defer close(g.committed)
	c := g.c
	broken := false
	// the marks of the batches written but held (Batch.Written), the newest per partition, and
	// how many records they cover: committed with the next batch done
	var held []partitionMark
	heldRecords := 0
	// the marks up to each batch whose commit waits for the handler's word, and of each batch
	// done behind them (no word to wait for), in order
	var pending []pendingCommit
	fail := func(err error) {
		if !broken {
			broken = true
			g.fail(err)
		}
		pending = pending[:0]
	}
	// resolve takes the first pending commit's word: its marks committed, or the failure
	resolve := func(err error) {
		p := pending[0]
		if err != nil {
			fail(fmt.Errorf("cannot save the state covering %d records: %w", p.records, err))
			return
		}
		g.commit(p.marks, p.records)
		pending = pending[1:]
	}
	// settle commits, in order, the pending marks whose word has come; wait: waits for each
	// word, up to the drain timeout
	settle := func(wait bool) {
		for len(pending) > 0 {
			p := pending[0]
			if p.word == nil {
				resolve(nil)
				continue
			}
			if !wait {
				select {
				case err := <-p.word:
					resolve(err)
				default:
					return
				}
				continue
			}
			select {
			case err := <-p.word:
				resolve(err)
			case <-g.work.Done():
				fail(fmt.Errorf("checkpoint of %d records not saved within the drain timeout (%s) after the stop: %w", p.records, c.DrainTimeout, g.work.Err()))
			}
		}
	}
	var f *flight // the batch whose verdict is awaited; nil: the next one handed in
	for {
		var next <-chan *flight
		var verdict <-chan Verdict
		var drained <-chan struct{}
		if f == nil {
			next = g.handed
		} else {
			verdict, drained = f.b.done, g.work.Done()
		}
		var word <-chan error // the first pending commit's, while any
		if len(pending) > 0 {
			word = pending[0].word
		}
		var v Verdict
		select {
		case got, ok := <-next:
			if !ok {
				settle(true)
				return
			}
			f = got
			continue
		case err := <-word:
			resolve(err)
			settle(false)
			continue
		case v = <-verdict:
		case <-drained:
			v.Err = fmt.Errorf("not written within the drain timeout (%s) after the stop: %w", c.DrainTimeout, g.work.Err())
		}
		if v.Err != nil {
			fail(fmt.Errorf("cannot write a batch of %d records: %w", f.records, v.Err))
		}
		if !broken {
			c.metrics.handleSeconds.Observe(c.now().Sub(f.handed).Seconds())
			held = mergeMarks(held, f.marks)
			heldRecords += f.records
			switch {
			case v.Later != nil || (!v.Held && len(held) > 0 && len(pending) > 0): // after those pending
				pending = append(pending, pendingCommit{marks: slices.Clone(held), records: heldRecords, word: v.Later})
				held, heldRecords = held[:0], 0
				settle(false)
			case !v.Held && len(held) > 0:
				g.commit(held, heldRecords)
				held, heldRecords = held[:0], 0
			}
		}
		g.flights.done(f)
		f = nil
	}
}

// pendingCommit is marks to commit once the handler has saved the state that covers them (its
// word: nil, committed; an error, nothing more is), or, without a word, once those before it are.
type pendingCommit struct {
	marks   []partitionMark
	records int
	word    <-chan error
}

// mergeMarks adds marks to held, a later mark of a partition replacing an earlier one.
func mergeMarks(held, marks []partitionMark) []partitionMark {
next:
	for _, m := range marks {
		for i := range held {
			if held[i].tp == m.tp {
				held[i] = m
				continue next
			}
		}
		held = append(held, m)
	}
	return held
}

// commit commits the offsets after marks, which cover records durably written: five attempts at
// most, 200ms apart and doubling. A commit that keeps failing (the broker down, the group
// rebalancing) only means the records are read again, and writing them again is idempotent.
func (g *generation) commit(marks []partitionMark, records int) {
	offsets := map[string]map[int]int64{}
	for _, pm := range marks {
		po := offsets[pm.tp.Topic]
		if po == nil {
			po = map[int]int64{}
			offsets[pm.tp.Topic] = po
		}
		po[int(pm.tp.Partition)] = pm.next
	}
	c := g.c
	err := backoff.Retry(g.work, backoff.Policy{Min: 200 * time.Millisecond, Attempts: 5}, func() error {
		err := g.gen.CommitOffsets(offsets)
		if err != nil {
			c.metrics.commitErrors.Inc()
			if generationOver(err) {
				return backoff.Permanent(err)
			}
		}
		return err
	}, nil)
	if err != nil {
		c.log.Warn("cannot commit offsets; the batches' records will be read again (writes are idempotent)", "records", records, "err", err)
	} else {
		c.metrics.commits.Inc()
	}
	c.setLags(marks)
}

// setLags records how far behind the partitions' high watermarks the marks are, once committed.
func (c *Consumer) setLags(marks []partitionMark) {
	c.lagMu.Lock()
	defer c.lagMu.Unlock()
	for _, pm := range marks {
		if pm.hwm > 0 {
			c.lags[pm.tp] = pm.hwm - pm.next
		}
	}
	for tp, l := range c.lags {
		c.metrics.lag.WithLabelValues(tp.Topic, strconv.Itoa(int(tp.Partition))).Set(float64(l))
	}
}

// generationOver tells a commit refused because the group has moved on: retrying cannot help,
// the records are read again by the partition's next owner.
func generationOver(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.ErrGenerationEnded)
}
