package detectors

import (
	"slices"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// Each vehicle's state goes with the input shard its records come from (Track.shard, set from
// the records; for the pipeline, a Kafka partition). When a consumer group rebalance moves a shard
// to another instance, the pipeline tells the engine: Release forgets the shard's vehicles (their
// new owner restores them from their checkpoints, Restore), and Resume says that a shard taken
// over is being read again. The engine only compares shards: it does not interpret them.

// Resume marks the vehicles restored for shard s as read again (its first record since the
// restore has come, or it had nothing left to read): the time-driven rules judge them from now
// on, their silence being real. It returns their newest device time (zero when it has none): the
// shard's event time when nothing of it was left to read.
func (e *Engine) Resume(s record.Shard) time.Time {
	var newest time.Time
	for _, tr := range e.tracks {
		if tr.shard != s {
			continue
		}
		tr.restored = false
		if last := tr.last.time(); tr.hasLast && last.After(newest) {
			newest = last
		}
	}
	return newest
}

// Release forgets the vehicles whose records come from shard s: another instance owns it now (a
// consumer group rebalance) and carries their state on from their checkpoints. It returns how
// many vehicles it forgot.
func (e *Engine) Release(s record.Shard) int {
	e.finishSnapshot() // it may be encoding the vehicles about to be forgotten
	n := 0
	for id, tr := range e.tracks {
		if tr.shard != s {
			continue
		}
		e.forget(tr)
		e.dropEpisodes(tr)
		e.unschedule(tr)
		e.risks.drop(id)
		n++
	}
	if n > 0 {
		e.dirty = slices.DeleteFunc(e.dirty, func(tr *Track) bool { return tr.shard == s })
		e.tracked.Store(int64(len(e.tracks)))
		e.metrics.tracked.Set(float64(len(e.tracks)))
	}
	return n
}
