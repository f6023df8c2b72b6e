package detectors

import (
	"container/heap"
	"time"

	"github.com/muckwatch/muckwatch/city"
)

// The time-driven rules (signal_lost, trip closure's pending decisions) take decisions as the
// watermark passes a time each track knows in advance. Tick visits only the tracks whose next
// such time the watermark has reached, from a min-heap of tracks by that time, instead of every
// track of the fleet at every tick.

// Tick runs the time-driven rules (signal_lost, trip_unclosed's pending decisions) up to the
// event time every input has been read to (Advance). A backlog or a lagging input holds it back,
// so the pipeline's own lag never looks like a silent truck and no decision is taken before the
// evidence that could change it has been read; nothing ticks at shutdown.
func (e *Engine) Tick() { e.tick(e.advanced) }

// tick takes every time-driven decision due up to event time wm. A decision is stamped with the
// time it fell due, not with wm: the same input gives the same alerts, whenever the decision was
// taken, however the inputs were spread over instances and however far each had been read.
func (e *Engine) tick(wm time.Time) {
	if len(e.timed) == 0 || !wm.After(e.ticked) {
		return
	}
	e.ticked = wm
	c := e.city.Load()
	wmNs := wm.UnixNano()
	for len(e.due) > 0 && e.due[0].due <= wmNs {
		tr := heap.Pop(&e.due).(*Track)
		e.settle(tr) // before anything of it changes
		if !tr.hasLast {
			continue
		}
		if tr.restored {
			// its input not read since the restore: its silence is this process's, not the
			// truck's; looked at again later
			tr.due = wm.Add(time.Second).UnixNano()
			heap.Push(&e.due, tr)
			continue
		}
		if h := tr.held; h != nil && h.until.UnixNano() <= tr.due {
			// a fix held back, and no next fix came to confirm or refute it: judged alone (which
			// schedules the track again)
			tr.held = nil
			e.markDirty(tr)
			// judged as of its due time, not as of wm: what it makes due comes round again in
			// this tick when not after wm, however far wm has jumped
			e.ticked = time.Unix(0, tr.due).UTC()
			e.judgeFix(tr, &h.fix, true)
			e.ticked = wm
			continue
		}
		// Judged as of the time it is due, not as of wm: what falls due later is decided when
		// the heap brings it round again (still within this tick when it is not after wm), so
		// the changes come in the order of their times whatever the watermark's steps (a trip
		// decision due after a silence ends an episode comes after that episode's end).
		now := time.Unix(0, tr.due).UTC()
		for _, i := range e.timed {
			e.decide(c, tr, i, now)
		}
		e.expire(tr, now) // episode.go: episodes a silence ends, escalations due in time
		e.closeWindows(tr, now)
		e.schedule(tr, now)
	}
}

// decide takes the decisions of time-driven fix rule i for tr that fell due up to wm, in order.
func (e *Engine) decide(c *city.City, tr *Track, i int, wm time.Time) {
	fe := &e.fixes[i]
	rule := fe.rule.(TimeRule)
	for {
		ep := e.episode(tr, i)
		if ep.state.alertOpen() {
			return
		}
		at := rule.NextDue(tr, ep)
		if at.IsZero() || at.After(wm) {
			return
		}
		v, decided := rule.Due(c, tr, ep, at)
		if decided {
			e.markDirty(tr)
		}
		if !v.Active {
			e.release(tr, i)
			if !decided {
				return // nothing more falls due before something else happens to the truck
			}
			continue
		}
		ep = e.keep(tr, i, ep)
		e.markDirty(tr)
		e.openAt(tr, i, ep, fe.rule, fe.phase, v.Since, tr.last.ll, &Observation{Time: at, LL: tr.last.ll}, v)
		if v.Instant {
			e.resolve(i, ep, fe.rule, v.Since)
		}
		e.release(tr, i)
	}
}

// dueHeap is a min-heap of tracks by their next due time; Track.dueAt is a track's index in it,
// -1 when it is not in it.
type dueHeap []*Track

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].dueAt, h[j].dueAt = int32(i), int32(j)
}
func (h *dueHeap) Push(x any) {
	tr := x.(*Track)
	tr.dueAt = int32(len(*h))
	*h = append(*h, tr)
}
func (h *dueHeap) Pop() any {
	old := *h
	tr := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	tr.dueAt = -1
	return tr
}

// schedule puts tr in the due heap at the earliest time one of its time-driven rules may decide
// (or leaves it at an earlier time it is already there for), or takes it out when none may.
// after is the watermark already judged: a time not after it is moved just past it, so a track
// is never visited twice for the same watermark.
func (e *Engine) schedule(tr *Track, after time.Time) {
	var next time.Time
	for _, i := range e.timed {
		ep := e.episode(tr, i)
		if ep.state.alertOpen() {
			continue
		}
		if t := e.fixes[i].rule.(TimeRule).NextDue(tr, ep); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if t := e.expireDue(tr); !t.IsZero() && (next.IsZero() || t.Before(next)) {
		next = t // episode.go: a silence that ends episodes, an escalation due in time
	}
	if tr.held != nil && (next.IsZero() || tr.held.until.Before(next)) {
		next = tr.held.until // a fix held back is judged alone once no next fix came
	}
	if next.IsZero() {
		if tr.dueAt >= 0 {
			heap.Remove(&e.due, int(tr.dueAt))
		}
		return
	}
	if !next.After(after) {
		next = after.Add(time.Nanosecond)
	}
	if tr.dueAt >= 0 {
		if next.UnixNano() >= tr.due {
			// Later than the time it is in the heap for (every fix moves signal_lost's time on):
			// left there. Tick visits it then, finds nothing due, and schedules it again, once
			// per threshold instead of a heap fix per fix.
			return
		}
		tr.due = next.UnixNano()
		heap.Fix(&e.due, int(tr.dueAt))
		return
	}
	tr.due = next.UnixNano()
	heap.Push(&e.due, tr)
}

// unschedule takes tr out of the due heap (a released track).
func (e *Engine) unschedule(tr *Track) {
	if tr.dueAt >= 0 {
		heap.Remove(&e.due, int(tr.dueAt))
	}
}
