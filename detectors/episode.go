package detectors

import (
	"slices"
	"strconv"
	"time"

	"github.com/paulmach/orb"
)

// An episode is one rule's state for one vehicle: where it is in its lifecycle, the times the
// lifecycle is judged by, its alert while one is open, and the rule's own memo of the vehicle (a
// dwell's stop, a trip under way), if the rule keeps one. Every rule shares one state machine,
// like a Prometheus alerting rule's (inactive → pending → firing), driven by the rule's verdicts
// (step) and, for the time-driven rules, by event time (Tick):
//
//	inactive ─active→ pending ─held for the rule's For and MinFixes (or Immediate)→ firing
//	pending ─clear→ inactive
//	firing ─clear→ clearing ─clear for ClearFor→ inactive    the alert resolves (at once if ClearFor is 0)
//	clearing ─active→ firing                                a relapse: the same alert goes on
//	firing ─Instant, or an event rule's window or clear→ resolved
//	resolved ─active→ pending, ─clear→ inactive
//	inactive, resolved ─a time-driven rule's finding (Tick)→ firing
//
// A track keeps no episode for a rule that is inactive and keeps nothing else (Track.slot); the
// engine's blank episode stands in for it while a rule looks at it. An episode's state changes
// only through Engine.move, which keeps the muckwatch_episodes gauge.

// State is where an episode is in its lifecycle.
type State uint8

// The states of an episode.
const (
	// StateInactive: nothing under way; the track keeps no episode unless the rule keeps a memo
	// in it.
	StateInactive State = iota
	// StatePending: the condition holds, not yet for the rule's For and MinFixes.
	StatePending
	// StateFiring: the alert is open.
	StateFiring
	// StateClearing: the alert is open and the condition clear, for less than the rule's
	// ClearFor: a relapse continues the alert, and once ClearFor has passed it resolves at the
	// first clear observation.
	StateClearing
	// StateResolved: the alert has been closed at once (an instant finding) or by an event rule's
	// window or clear evidence; the episode's times are kept until the condition is seen over,
	// and a new episode's last evidence is never older than them (camera events of one truck
	// need not come in time order).
	StateResolved
	numStates
)

var stateNames = [numStates]string{"inactive", "pending", "firing", "clearing", "resolved"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// alertOpen reports whether an episode in state s has an open alert.
func (s State) alertOpen() bool { return s == StateFiring || s == StateClearing }

// Episode is one rule's state for one vehicle. The engine keeps its lifecycle; the rule keeps its
// memo.
type Episode struct {
	since   time.Time // when the condition started to hold (pending, firing, clearing; kept once resolved)
	sinceLL orb.Point // where
	last    time.Time // the newest observation with the condition holding
	cleared time.Time // clearing: the first clear observation
	fixes   int       // consecutive observations with the condition holding
	state   State
	alert   *Alert // the open alert: firing and clearing only
	memo    memo   // the rule's own memo of the vehicle, nil when it keeps none
}

// A memo is what a rule remembers of a vehicle besides its episode's lifecycle, kept in the
// vehicle's episode of that rule: where and since when a truck has been stopped (dwell's
// dwellStop), its trip under way (trip_unclosed's tripLog). Each rule that keeps one has a type of
// its own, and reads and writes it in its Judge; a rule that remembers nothing keeps none.
type memo interface {
	// empty reports whether it remembers nothing any more: the episode may be released.
	empty() bool
	// saved is the memo in the checkpoint's fields.
	saved() memoFields
}

// State returns where the episode is in its lifecycle.
func (ep *Episode) State() State { return ep.state }

// restoredState is the state of an episode restored from a checkpoint, which keeps its times and
// alert but not its state: they tell it apart.
func restoredState(ep *Episode) State {
	switch {
	case ep.alert != nil && ep.cleared.IsZero():
		return StateFiring
	case ep.alert != nil:
		return StateClearing
	case ep.fixes != 0:
		return StatePending
	case !ep.since.IsZero() || !ep.last.IsZero() || ep.sinceLL != (orb.Point{}):
		return StateResolved
	}
	return StateInactive
}

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

// dropEpisodes forgets the track's episodes (a released or restored vehicle).
func (e *Engine) dropEpisodes(tr *Track) {
	for i, ep := range tr.episodes {
		if ep != nil {
			e.move(i, ep, StateInactive)
		}
	}
	tr.episodes = nil
}

// empty reports whether the episode holds nothing: inactive, and no memo that remembers anything.
func (ep *Episode) empty() bool {
	return ep.state == StateInactive && (ep.memo == nil || ep.memo.empty())
}

// move puts ep, the track's own episode of rule slot i, in state to. It is the one place an
// episode's state changes.
func (e *Engine) move(i int, ep *Episode, to State) {
	if ep.state == to {
		return
	}
	e.metrics.episodes.moved(i, ep.state, to)
	ep.state = to
}

type describer interface{ Describe(a *Alert) string }

// step advances the episode of rule slot i by the rule's verdict on an observation: the state
// machine every rule shares.
func (e *Engine) step(tr *Track, i int, ep *Episode, d describer, t Timing, phase Phase, cur *Observation, v Verdict) {
	switch {
	case v.Active:
		switch ep.state {
		case StateInactive, StateResolved: // a new episode
			e.move(i, ep, StatePending)
			ep.since, ep.sinceLL = cur.Time, cur.LL
			if !v.Since.IsZero() && v.Since.Before(cur.Time) {
				ep.since = v.Since // a condition judged over time (a stop) started before it was seen
			}
		case StateClearing: // a relapse
			e.move(i, ep, StateFiring)
		}
		ep.fixes++
		if cur.Time.After(ep.last) { // events of one truck from several cameras need not come in time order
			ep.last = cur.Time
		}
		ep.cleared = time.Time{}
		if ep.state == StatePending {
			if v.Immediate || (cur.Time.Sub(ep.since) >= t.For && ep.fixes >= t.MinFixes+v.MoreFixes) {
				e.open(tr, i, ep, d, phase, cur, v)
				if v.Instant {
					e.resolve(i, ep, d, cur.Time)
				}
			}
			return
		}
		// Firing. The value follows the episode (its peak: the highest speed, the farthest off
		// route, the longest stop) and reaches the feed as an update, throttled (updateEvery,
		// updateStep) so that repeats within an episode do not flood it, and with every change.
		a := ep.alert
		peak := v.Value > a.Value
		if peak {
			a.Value = v.Value
		}
		if v.Basis != "" {
			a.basis = v.Basis
		}
		if v.Severity.rank() > a.Severity.rank() {
			a.Severity = v.Severity
			e.emit(ChangeEscalated, a, d, cur.Time)
			return
		}
		if t.EscalateAfter > 0 && a.Severity != SeveritySevere && cur.Time.Sub(a.Start) >= t.EscalateAfter {
			a.Severity = SeveritySevere
			e.emit(ChangeEscalated, a, d, cur.Time)
			return
		}
		if peak && cur.Time.Sub(a.Updated) >= max(updateEvery, a.Updated.Sub(a.Start)/2) {
			e.emit(ChangeUpdated, a, d, cur.Time)
		}
	case v.Clear:
		if ep.state.alertOpen() {
			if ep.state == StateFiring {
				ep.cleared = cur.Time
				if v.Since.After(ep.last) && v.Since.Before(cur.Time) {
					ep.cleared = v.Since // over since an earlier fix, known only now (a stop left)
				}
			}
			if cur.Time.Sub(ep.last) < t.ClearFor {
				e.move(i, ep, StateClearing) // a relapse continues this alert
				return
			}
			e.resolveAt(i, ep, d, ep.cleared, cur.Time)
		}
		// Over: the next active observation starts a new episode, so nothing of this one is
		// needed any more and, unless the rule keeps a memo in it, it is released.
		e.move(i, ep, StateInactive)
		ep.fixes, ep.since, ep.sinceLL, ep.last, ep.cleared = 0, time.Time{}, orb.Point{}, time.Time{}, time.Time{}
	case ep.state == StatePending && t.MinFixes > 1:
		// Neither in violation nor clear of it (a rule's hysteresis band) before the alert
		// fired: the fixes that open an alert are in violation in a row, so two lone outliers
		// with a sound fix between them (two re-acquisition snaps) are not an episode.
		e.move(i, ep, StateInactive)
		ep.fixes, ep.since, ep.sinceLL, ep.last, ep.cleared = 0, time.Time{}, orb.Point{}, time.Time{}, time.Time{}
	}
}

// openAt opens an alert for an episode a time-driven rule found under way since since, at ll (a
// silence, a trip's decision that waited for the watermark): it fires at once, decided at cur.
func (e *Engine) openAt(tr *Track, i int, ep *Episode, d describer, phase Phase, since time.Time, ll orb.Point, cur *Observation, v Verdict) {
	if v.At != (orb.Point{}) {
		ll = v.At // where the finding is, not where the truck is when it is decided
	}
	ep.since, ep.sinceLL, ep.fixes = since, ll, 1
	e.open(tr, i, ep, d, phase, cur, v)
}

// open fires the episode of rule slot i: its alert opens.
func (e *Engine) open(tr *Track, i int, ep *Episode, d describer, phase Phase, cur *Observation, v Verdict) {
	c := e.city.Load()
	rule := e.names[i]
	a := &Alert{
		ID:        AlertID(rule, tr.VehicleID, ep.since),
		Rule:      rule,
		Severity:  v.Severity,
		Phase:     phase,
		Status:    StatusOpen,
		VehicleID: tr.VehicleID,
		Place:     v.Place,
		Start:     ep.since,
		Lat:       ep.sinceLL[1],
		Lon:       ep.sinceLL[0],
		Value:     v.Value,
		Limit:     v.Limit,
		basis:     v.Basis,
	}
	if veh := c.Vehicle(tr.VehicleID); veh != nil {
		a.Company = veh.Company
	}
	if p := c.ActivePermit(tr.VehicleID, cur.Time); p != nil {
		a.PermitID = p.ID
	}
	if dist := c.DistrictAt(c.Proj.Forward(ep.sinceLL)); dist != nil {
		a.District = dist.ID
	}
	ep.alert = a
	e.move(i, ep, StateFiring)
	e.emit(ChangeOpened, a, d, cur.Time)
}

// resolve closes the alert of the episode of rule slot i with its end at at.
func (e *Engine) resolve(i int, ep *Episode, d describer, at time.Time) {
	e.resolveAt(i, ep, d, at, at)
}

// resolveAt closes the alert of the episode of rule slot i with its end at end, decided at at
// (later, after ClearFor).
func (e *Engine) resolveAt(i int, ep *Episode, d describer, end, at time.Time) {
	a := ep.alert
	a.Status = StatusResolved
	a.End = end
	if at.Before(a.Updated) {
		at = a.Updated // a change is never stamped before the one it follows
	}
	ep.alert = nil // closed before emit, so the risk it recomputes no longer counts it
	ep.fixes = 0
	ep.cleared = time.Time{}
	e.move(i, ep, StateResolved)
	e.emit(ChangeResolved, a, d, at)
}

// spanValued is implemented by a rule whose alert's value is how long its episode has lasted,
// with no fix to say so as it goes on (signal_lost: how long the truck has been silent): the
// value is taken at every change, and at the end once resolved.
type spanValued interface {
	spanValue(a *Alert, at time.Time) float64
}

func (e *Engine) emit(kind ChangeKind, a *Alert, d describer, at time.Time) {
	if sv, ok := d.(spanValued); ok {
		a.Value = sv.spanValue(a, at)
	}
	a.Version++
	a.Updated = at
	a.Evidence = d.Describe(a)
	if a.note != "" {
		a.Evidence += "; " + a.note
	}
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

// An open alert's value follows its episode: a new peak goes out as an update once the time since
// the alert's last change is at least updateEvery and half the alert's age then (updates thin out
// as an episode goes on: a 30-minute stop gives four), and with every other change. The throttle
// is judged from the alert's own times only, so a restore from a checkpoint changes nothing.
const updateEvery = time.Minute

// A fix-driven episode lives on its track's fixes: once the track has been silent for
// Config.SilentAfter, nothing will end it, so it ends there (expire), as of its last evidence,
// "ended by a lost signal". Escalations that wait for time, not for a fix (signal_lost: severe
// after escalate_after of silence), are taken as event time passes too. Both are decided at
// times fixed by the track's fixes (its last fix, the alert's start), not by when the engine
// looks, so a backlog and a live feed give the same changes: at the track's next fix after a
// gap (ProcessFix), or at the watermark (Tick), whichever comes first.

// expire ends the fix-driven episodes of tr that its silence ends and takes the escalations due,
// as of event time now (the watermark, or the track's next fix).
func (e *Engine) expire(tr *Track, now time.Time) {
	if tr.episodes == nil || !tr.hasLast {
		return
	}
	silentAt := tr.last.time().Add(e.cfg.SilentAfter)
	for i := range e.fixes {
		ep := tr.slot(i)
		if ep == nil {
			continue
		}
		fe := &e.fixes[i]
		if ep.state.alertOpen() {
			if a := ep.alert; fe.timing.EscalateAfter > 0 && a.Severity != SeveritySevere {
				if at := a.Start.Add(fe.timing.EscalateAfter); !now.Before(at) {
					a.Severity = SeveritySevere
					e.emit(ChangeEscalated, a, fe.rule, maxTime(at, a.Updated))
					e.markDirty(tr)
				}
			}
		}
		if now.Before(silentAt) || !silenceEnds(fe.rule, e.silence) {
			continue
		}
		switch ep.state {
		case StateFiring, StateClearing:
			ep.alert.note = "ended: no fix for " + e.cfg.SilentAfter.String()
			end := ep.last
			if ep.state == StateClearing {
				end = ep.cleared
			}
			e.resolveAt(i, ep, fe.rule, end, silentAt)
			e.move(i, ep, StateInactive)
		case StatePending:
			e.move(i, ep, StateInactive)
		}
		ep.fixes, ep.since, ep.sinceLL, ep.last, ep.cleared = 0, time.Time{}, orb.Point{}, time.Time{}, time.Time{}
		if _, ok := ep.memo.(*dwellStop); ok {
			ep.memo = nil // a stop is not known to go on through a silence
		}
		e.markDirty(tr)
		e.release(tr, i)
	}
}

// closeWindows resolves tr's event-rule episodes whose window has passed both for its fixes and
// for event time now (the watermark's), as ProcessFix does at a fix once the watermark is past
// the window: a fix read while a lagging input held the watermark back leaves the episode to the
// watermark, which must not wait for another fix of the truck (there may be none). Either way
// the alert ends at the window's end, so the change is the same whichever comes first.
func (e *Engine) closeWindows(tr *Track, now time.Time) {
	if tr.episodes == nil || !tr.hasLast {
		return
	}
	for i := range e.events {
		ee := &e.events[i]
		slot := len(e.fixes) + i
		ep := tr.slot(slot)
		if ep != nil && ep.state.alertOpen() && tr.last.time().Sub(ep.last) > ee.timing.Window && now.Sub(ep.last) > ee.timing.Window {
			e.resolve(slot, ep, ee.rule, ep.last.Add(ee.timing.Window))
			e.release(tr, slot)
			e.markDirty(tr)
		}
	}
}

// expireDue is the earliest event time at which expire or closeWindows may change something for
// tr (zero: none until its next fix).
func (e *Engine) expireDue(tr *Track) time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if tr.episodes == nil || !tr.hasLast {
		return next
	}
	for i := range e.fixes {
		ep := tr.slot(i)
		if ep == nil {
			continue
		}
		fe := &e.fixes[i]
		if ep.state.alertOpen() && fe.timing.EscalateAfter > 0 && ep.alert.Severity != SeveritySevere {
			earlier(ep.alert.Start.Add(fe.timing.EscalateAfter))
		}
		if ep.state != StateInactive && ep.state != StateResolved && silenceEnds(fe.rule, e.silence) {
			earlier(tr.last.time().Add(e.cfg.SilentAfter))
		}
	}
	for i := range e.events {
		window := e.events[i].timing.Window
		if ep := tr.slot(len(e.fixes) + i); ep != nil && ep.state.alertOpen() && tr.last.time().Sub(ep.last) > window {
			earlier(ep.last.Add(window + time.Millisecond)) // closeWindows: once past the window
		}
	}
	return next
}

// silenceEnds reports whether a track's silence ends rule's episodes: every fix-driven rule's
// but signal_lost's (the silence is its episode) and the time-driven trip decisions'.
func silenceEnds(rule FixRule, sl *SignalLost) bool {
	if _, timed := rule.(TimeRule); timed {
		return false
	}
	return rule != FixRule(sl)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
