package pipeline

import (
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// The alert changes are not written with every write's records. Each insert into ClickHouse
// makes a part of every table it goes to (18.16 has wide parts only: two files a column), which
// its merges then rewrite: with 14 % of the fleet in violation (muckbench --at 08:00) the alerts,
// their changes and the violations view took an insert each on every write, ClickHouse used a
// whole core, and the backlog went at 154,000 fixes/s against 223,000 with no changes written.
// The changes wait instead until a batch carries checkpoints (they follow from its changes,
// and its offsets are committed after them), until writeChangesEvery has passed since the first
// of them (written alone if no batch comes), or until there are maxPendingChanges. A batch
// without checkpoints is freed once its records are written: its offsets are committed only
// with the next checkpoints, so a crash meanwhile judges it again and its changes come again.
//
// The live view and the alerts topic have every change as soon as it is judged (announce); only
// ClickHouse's copy waits, for up to writeChangesEvery.
const (
	writeChangesEvery = time.Second
	maxPendingChanges = 50_000
	keptChanges       = 1024 // the buffer kept between writes (a busy second's is dropped)
)

// waitingChanges are the alert changes of the batches written since the changes were last
// written, with when the first of them was, and those batches' event times, which say their
// alerts are written (muckwatch_event_time_judged_seconds) only once they are.
type waitingChanges struct {
	changes []detectors.Change
	since   time.Time
	mark    eventMark
}

// add adds the alert changes of group, written at now, and reports whether all that wait are
// due to be written with group's records.
func (w *waitingChanges) add(group []*judgedBatch, now time.Time) bool {
	checkpoint := false
	for _, j := range group {
		if len(j.changes) > 0 && len(w.changes) == 0 {
			w.since = now
		}
		w.changes = append(w.changes, j.changes...)
		checkpoint = checkpoint || j.snap != nil
	}
	return len(w.changes) > 0 && (checkpoint || now.Sub(w.since) >= writeChangesEvery || len(w.changes) >= maxPendingChanges)
}

// due is when the changes waiting are to be written even if no batch comes; ok is false when
// none wait.
func (w *waitingChanges) due() (at time.Time, ok bool) {
	return w.since.Add(writeChangesEvery), len(w.changes) > 0
}

// hold keeps the event times of j, a written batch without checkpoints, while changes wait (the
// batch's own among them, or before them); false: none wait, j's times may be set now.
func (w *waitingChanges) hold(j *judgedBatch) bool {
	if len(w.changes) == 0 {
		return false
	}
	w.mark = w.mark.merge(j.mark)
	return true
}

// written empties w once its changes are written, and returns the mark of the batches held
// meanwhile.
func (w *waitingChanges) written() eventMark {
	mark := w.mark
	clear(w.changes) // keep the buffer, not what it points to; a large one not at all
	w.changes = w.changes[:0]
	if cap(w.changes) > keptChanges {
		w.changes = nil
	}
	w.since, w.mark = time.Time{}, eventMark{}
	return mark
}
