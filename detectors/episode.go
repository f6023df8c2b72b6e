package detectors

import (
	"slices"
	"time"

	"github.com/paulmach/orb"
)

// Episode is one rule's state for one vehicle.
type Episode struct {
	Since    time.Time // when the condition started to hold (pending or firing)
	SinceLL  orb.Point
	Last     time.Time // last observation with the condition holding
	Cleared  time.Time // first clear observation of a firing alert waiting out ClearFor
	Fixes    int       // consecutive observations with the condition holding
	alert    *Alert    // the open alert, nil unless firing
	Anchor   orb.Point // rule bookkeeping (e.g. where a dwell started), projected metres
	Mark     time.Time // rule bookkeeping (e.g. since when stopped)
	Anchored bool
	Ref      string      // rule bookkeeping (e.g. the site a trip started from)
	Seen     []time.Time // rule bookkeeping (e.g. when disposal gate cameras saw the truck), bounded
	Pending  []Pending   // rule bookkeeping: decisions waiting for the watermark, oldest first
}

// Pending is a decision a rule takes once the event-time watermark has reached Due: once every
// input has been read up to then.
type Pending struct {
	Due   time.Time
	From  time.Time // the window of evidence it looks at starts here
	Place string
}

// Firing reports whether the episode has an open alert.
func (ep *Episode) Firing() bool { return ep.alert != nil }

// episode returns the track's episode of a rule slot, or the engine's blank one (emptied) when
// the track keeps none: most trucks have nothing going on for most rules, and an empty episode
// costs no memory.
func (e *Engine) episode(tr *Track, i int) *Episode {
	if ep := tr.slot(i); ep != nil {
		return ep
	}
	e.blank = Episode{}
	return &e.blank
}

// keep makes ep the track's own episode of slot i (a copy, when ep is the blank one) and returns it.
func (e *Engine) keep(tr *Track, i int, ep *Episode) *Episode {
	if ep != &e.blank {
		return ep
	}
	own := new(Episode)
	*own = *ep
	e.blank = Episode{}
	e.setSlot(tr, i, own)
	return own
}

// release drops the track's episode of slot i when it holds nothing any more, and the track's
// slots once none holds anything.
func (e *Engine) release(tr *Track, i int) {
	if ep := tr.slot(i); ep != nil && ep.empty() {
		tr.episodes[i] = nil
		if !slices.ContainsFunc(tr.episodes, func(ep *Episode) bool { return ep != nil }) {
			tr.episodes = nil
		}
	}
}

// slot returns the track's episode of rule slot i, nil when it keeps none.
func (tr *Track) slot(i int) *Episode {
	if tr.episodes == nil {
		return nil
	}
	return tr.episodes[i]
}

// setSlot makes ep the track's episode of rule slot i. A track gets its slots with its first
// episode: most trucks have none for most of the time, and a hundred thousand empty slot arrays
// were a fifth of the tracks' memory.
func (e *Engine) setSlot(tr *Track, i int, ep *Episode) {
	if tr.episodes == nil {
		tr.episodes = make([]*Episode, len(e.names))
	}
	tr.episodes[i] = ep
}

// empty reports whether the episode holds nothing: no alert, no condition under way, no rule
// bookkeeping.
func (ep *Episode) empty() bool {
	return ep.alert == nil && ep.Since.IsZero() && ep.Last.IsZero() && ep.Cleared.IsZero() && ep.Mark.IsZero() && ep.Fixes == 0 &&
		ep.Ref == "" && !ep.Anchored && len(ep.Seen) == 0 && len(ep.Pending) == 0 && ep.Anchor == (orb.Point{}) && ep.SinceLL == (orb.Point{})
}

type describer interface{ Describe(a *Alert) string }

// step advances one episode by one verdict: the shared state machine of every rule.
func (e *Engine) step(tr *Track, ep *Episode, rule Rule, d describer, t Timing, phase Phase, cur *Observation, v Verdict) {
	switch {
	case v.Active:
		if ep.Fixes == 0 && ep.alert == nil {
			ep.Since, ep.SinceLL = cur.Time, cur.LL
		}
		ep.Fixes++
		if cur.Time.After(ep.Last) { // events of one truck from several cameras need not come in time order
			ep.Last = cur.Time
		}
		ep.Cleared = time.Time{}
		if ep.alert == nil {
			if v.Immediate || (cur.Time.Sub(ep.Since) >= t.For && ep.Fixes >= t.MinFixes) {
				e.open(tr, ep, rule, d, phase, cur, v)
				if v.Instant {
					e.resolve(ep, d, cur.Time)
				}
			}
			return
		}
		// The peak value is kept; it reaches the feed with the next change, so repeats within an
		// episode do not flood it.
		a := ep.alert
		if v.Value > a.Value {
			a.Value = v.Value
		}
		if v.Severity.rank() > a.Severity.rank() {
			a.Severity = v.Severity
			e.emit(ChangeEscalated, a, d, cur.Time)
			return
		}
		if t.EscalateAfter > 0 && a.Severity != SeveritySevere && cur.Time.Sub(a.Start) >= t.EscalateAfter {
			a.Severity = SeveritySevere
			e.emit(ChangeEscalated, a, d, cur.Time)
		}
	case v.Clear:
		if ep.alert != nil {
			if ep.Cleared.IsZero() {
				ep.Cleared = cur.Time
			}
			if cur.Time.Sub(ep.Last) < t.ClearFor {
				return // clearing: a relapse continues this alert
			}
			e.resolveAt(ep, d, ep.Cleared, cur.Time)
		}
		// Over: the next active observation starts a new episode, so nothing of this one is
		// needed any more and, unless the rule keeps bookkeeping in it, it is released.
		ep.Fixes, ep.Since, ep.SinceLL, ep.Last, ep.Cleared = 0, time.Time{}, orb.Point{}, time.Time{}, time.Time{}
	}
}

func (e *Engine) open(tr *Track, ep *Episode, rule Rule, d describer, phase Phase, cur *Observation, v Verdict) {
	c := e.city.Load()
	a := &Alert{
		ID:        AlertID(rule, tr.VehicleID, ep.Since),
		Rule:      rule,
		Severity:  v.Severity,
		Phase:     phase,
		Status:    StatusOpen,
		VehicleID: tr.VehicleID,
		Place:     v.Place,
		Start:     ep.Since,
		Lat:       ep.SinceLL[1],
		Lon:       ep.SinceLL[0],
		Value:     v.Value,
		Limit:     v.Limit,
	}
	if veh := c.Vehicle(tr.VehicleID); veh != nil {
		a.Company = veh.Company
	}
	if p := c.ActivePermit(tr.VehicleID, cur.Time); p != nil {
		a.PermitID = p.ID
	}
	if dist := c.DistrictAt(c.Proj.Forward(ep.SinceLL)); dist != nil {
		a.District = dist.ID
	}
	ep.alert = a
	e.emit(ChangeOpened, a, d, cur.Time)
}

func (e *Engine) resolve(ep *Episode, d describer, at time.Time) { e.resolveAt(ep, d, at, at) }

// resolveAt closes ep's alert with its end at end, decided at at (later, after ClearFor).
func (e *Engine) resolveAt(ep *Episode, d describer, end, at time.Time) {
	a := ep.alert
	a.Status = StatusResolved
	a.End = end
	ep.alert = nil // closed before emit, so the risk it recomputes no longer counts it
	ep.Fixes = 0
	ep.Cleared = time.Time{}
	e.emit(ChangeResolved, a, d, at)
}

func (e *Engine) emit(kind ChangeKind, a *Alert, d describer, at time.Time) {
	a.Version++
	a.Updated = at
	a.Evidence = d.Describe(a)
	e.out = append(e.out, Change{Kind: kind, Alert: *a})
	e.metrics.alerts.WithLabelValues(string(a.Rule), string(a.Severity), string(kind)).Inc()
	if tr := e.tracks[a.VehicleID]; tr != nil {
		if kind == ChangeOpened {
			tr.history = append(tr.history, at)
			if len(tr.history) > riskHistoryMax {
				tr.history = tr.history[len(tr.history)-riskHistoryMax:]
			}
		}
		e.updateRisk(tr, at)
	}
}
