package detectors

import (
	"slices"
	"time"
)

// A consumer group rebalance moves input partitions, and the vehicles whose records come from
// them, between instances. The pipeline tells the engine: Release forgets the vehicles of a
// partition taken away (their new owner restores them from their checkpoints, Restore), Expect
// makes the event time wait for a partition taken over until it delivers, and Caught says that
// one taken over had nothing left to read. These calls, the tracks' partitions (Track.src,
// evSrc) and the event clock (eventtime.go) are all the engine knows of Kafka.

// Caught marks the input partition as read to its end although no record of it came since the
// restore (nothing was left to read): its restored vehicles are judged by the time-driven rules
// from now on, their silence being real.
// The partition's event time is its vehicles' newest, as if their last records had just been
// read, so that the watermark reaches it even when no other partition moves it.
func (e *Engine) Caught(topic string, partition int32) {
	k := partitionKey{topic, partition}
	var newest time.Time
	for _, tr := range e.tracks {
		if tr.src != k {
			continue
		}
		tr.restored = false
		if tr.hasLast && tr.last.Time.After(newest) {
			newest = tr.last.Time
		}
	}
	if pt, ok := e.clock.get(k); ok && pt.expected {
		e.clock.forget(k) // nothing to wait for
	}
	if !newest.IsZero() {
		e.clock.observe(topic, partition, newest, 0)
	}
}

// Expect marks an input partition just assigned that has records to read: until it delivers one
// (or is reported caught up, or stays silent for IdlePartition) the event-time watermark waits
// for it, so that the partitions read first after a restart or a rebalance do not carry the
// time-driven rules past records of the others not read yet (Tick never goes back in event time:
// decisions due in between would be skipped).
func (e *Engine) Expect(topic string, partition int32) {
	k := partitionKey{topic, partition}
	if pt, ok := e.clock.get(k); ok && !pt.expected {
		return // already read
	}
	e.clock.set(k, partitionTime{seen: e.clock.wall(), expected: true})
}

// Release forgets the vehicles whose records come from the input partition, and the partition's
// event time: another instance owns the partition now (a consumer group rebalance) and carries
// their state on from their checkpoints. It returns how many vehicles it forgot.
func (e *Engine) Release(topic string, partition int32) int {
	k := partitionKey{topic, partition}
	e.clock.forget(k)
	n := 0
	for id, tr := range e.tracks {
		if tr.src != k {
			continue
		}
		e.forget(tr)
		e.dropEpisodes(tr)
		e.unschedule(tr)
		e.risks.drop(id)
		n++
	}
	if n > 0 {
		e.dirty = slices.DeleteFunc(e.dirty, func(tr *Track) bool { return tr.src == k })
		e.tracked.Store(int64(len(e.tracks)))
		e.metrics.tracked.Set(float64(len(e.tracks)))
	}
	return n
}
