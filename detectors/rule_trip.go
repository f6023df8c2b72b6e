package detectors

import (
	"fmt"
	"slices"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// SignalLostConfig configures signal_lost.
type SignalLostConfig struct {
	Disabled bool `yaml:"disabled"`
	// After: a truck that was moving outside the sites and has sent no fix for this long has lost
	// its signal (or is being shielded, GPS屏蔽), judged against the event-time watermark.
	After time.Duration `yaml:"after"`
	// MovingSpeedKmh: above this speed at its last fix the truck was moving.
	MovingSpeedKmh float64 `yaml:"moving_speed_kmh"`
	Timing         `yaml:",inline"`
}

func (c SignalLostConfig) withDefaults() SignalLostConfig {
	if c.After == 0 {
		c.After = 5 * time.Minute
	}
	if c.MovingSpeedKmh == 0 {
		c.MovingSpeedKmh = 5
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 1, EscalateAfter: 30 * time.Minute})
	return c
}

func (c SignalLostConfig) validate() error {
	if c.After < time.Minute {
		return fmt.Errorf("after must be at least 1m, got %s", c.After)
	}
	return validateTiming(c.Timing)
}

// SignalLost flags a truck that goes silent while it was moving on the road. Its episodes are
// opened by Engine.Tick at the event-time watermark and end at the next fix.
type SignalLost struct{ cfg SignalLostConfig }

// Name implements FixRule.
func (r *SignalLost) Name() Rule { return RuleSignalLost }

// Judge implements FixRule: a fix ends the silence, unless it is one from before the silence,
// read late (sent out of order, after the fixes resumed): within After of the fix before it, it
// does not bridge the silence that fired, and the next fix will.
func (r *SignalLost) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	if prev != nil && ep.state.alertOpen() && cur.Time.Sub(prev.Time) < r.cfg.After {
		return Verdict{}
	}
	return Verdict{Clear: true}
}

// Due implements TimeRule: silent for After since a fix on the road at speed. It keeps no memo.
func (r *SignalLost) Due(c *city.City, tr *Track, ep *Episode, watermark time.Time) (Verdict, bool) {
	last := tr.last.time()
	silent := watermark.Sub(last)
	if silent < r.cfg.After || !r.moving(&tr.last) || tr.inSite {
		return Verdict{}, false
	}
	return Verdict{Active: true, Immediate: true, Severity: SeverityWarning, Value: silent.Seconds(), Limit: r.cfg.After.Seconds(), Since: last}, false
}

// NextDue implements TimeRule: a truck last seen moving on the road is due its threshold after.
func (r *SignalLost) NextDue(tr *Track, ep *Episode) time.Time {
	if !tr.hasLast || !r.moving(&tr.last) || tr.inSite {
		return time.Time{}
	}
	return tr.last.time().Add(r.cfg.After)
}

// moving reports whether the truck was moving at its last fix: not still, and above
// MovingSpeedKmh.
func (r *SignalLost) moving(l *lastFix) bool {
	return (l.reported || !l.still) && l.speedKmh > r.cfg.MovingSpeedKmh
}

// spanValue implements spanValued: an alert's value is how long the truck has been silent, in
// seconds: the threshold when it opens, escalate_after when it escalates, the whole silence once
// the fixes resume.
func (r *SignalLost) spanValue(a *Alert, at time.Time) float64 {
	if !a.End.IsZero() {
		at = a.End
	}
	return at.Sub(a.Start).Seconds()
}

// Describe implements FixRule.
func (r *SignalLost) Describe(a *Alert) string {
	silent := (time.Duration(a.Value) * time.Second).Round(time.Second)
	if a.Status == StatusResolved {
		return fmt.Sprintf("no GPS fix for %s while moving on the road; fixes resumed", silent)
	}
	return fmt.Sprintf("no GPS fix for over %s while moving on the road: terminal off or shielded", silent)
}

// TripUnclosedConfig configures trip_unclosed.
type TripUnclosedConfig struct {
	Disabled bool `yaml:"disabled"`
	// MaxTrip: a trip from a construction site that has reached no disposal site after this long
	// is unclosed.
	MaxTrip time.Duration `yaml:"max_trip"`
	// MinTrip: leaving a construction site and coming back within this is not a trip (GPS jitter
	// at the gate, manoeuvring).
	MinTrip time.Duration `yaml:"min_trip"`
	// StopSpeedKmh: a trip ends at a site only where the truck stops (passing through a site's
	// corner on the road does not end it): its reported speed at most this, or, whatever it
	// reports or not, it has stayed within the engine's stop_radius_m for still_for.
	StopSpeedKmh float64 `yaml:"stop_speed_kmh"`
	// LeaveMarginM: a trip starts only once the truck is clearly out of the site, this far beyond
	// its border at two fixes in a row (GPS jitter inside a site, even a fast one, is no trip).
	LeaveMarginM float64 `yaml:"leave_margin_m"`
	Timing       `yaml:",inline"`
}

func (c TripUnclosedConfig) withDefaults() TripUnclosedConfig {
	if c.StopSpeedKmh == 0 {
		c.StopSpeedKmh = 5
	}
	if c.MaxTrip == 0 {
		c.MaxTrip = 3 * time.Hour
	}
	if c.MinTrip == 0 {
		c.MinTrip = 3 * time.Minute
	}
	if c.LeaveMarginM == 0 {
		c.LeaveMarginM = 100
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 1})
	return c
}

func (c TripUnclosedConfig) validate() error {
	if c.MinTrip <= 0 || c.MaxTrip <= c.MinTrip {
		return fmt.Errorf("need 0 < min_trip < max_trip, got %s and %s", c.MinTrip, c.MaxTrip)
	}
	return validateTiming(c.Timing)
}

// TripUnclosed follows each trip that leaves a construction site: it must reach a disposal site
// (its permit's, when it has one). A trip that ends at a construction site again, at another
// disposal site, or runs out of time is unclosed: dumping that no single fix shows.
type TripUnclosed struct{ cfg TripUnclosedConfig }

// tripLog is what trip_unclosed remembers of a truck: the site it was last stopped at and the
// trip under way from it, when disposal sites' gate cameras saw it, and the decisions on its
// trips that wait for the watermark.
type tripLog struct {
	site     string         // the site it was last stopped at: the one a trip under way left
	underway bool           // a trip from site is under way
	left     time.Time      // when it left, while underway
	seen     []time.Time    // when disposal gate cameras saw it, oldest first, bounded (maxSightings)
	waiting  []tripDecision // oldest first, bounded (maxSightings)
}

// tripDecision is a decision on a trip that ended at a construction site, taken once the
// event-time watermark has reached Due: once every input has been read up to then, and a disposal
// gate camera's sighting during the trip has been read if there is one.
type tripDecision struct {
	Due   time.Time
	From  time.Time // the trip left its site then
	Place string    // the construction site it ended at
}

func (t *tripLog) start(at time.Time) { t.underway, t.left = true, at }
func (t *tripLog) end()               { t.underway, t.left = false, time.Time{} }

func (t *tripLog) empty() bool {
	return t.site == "" && !t.underway && len(t.seen) == 0 && len(t.waiting) == 0
}

func (t *tripLog) saved() memoFields {
	return memoFields{Ref: t.site, Anchored: t.underway, Mark: t.left, Seen: t.seen, Pending: t.waiting}
}

// restoreMemo implements remembering.
func (r *TripUnclosed) restoreMemo(f memoFields) memo {
	t := &tripLog{site: f.Ref, seen: f.Seen, waiting: f.Pending}
	if f.Anchored {
		t.start(f.Mark)
	}
	if t.empty() {
		return nil
	}
	return t
}

// tripOf returns the truck's trip log, a new one when it keeps none.
func tripOf(ep *Episode) *tripLog {
	if t, ok := ep.memo.(*tripLog); ok {
		return t
	}
	t := new(tripLog)
	ep.memo = t
	return t
}

// Name implements FixRule.
func (r *TripUnclosed) Name() Rule { return RuleTripUnclosed }

// Judge implements FixRule.
func (r *TripUnclosed) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	var site *city.Site
	for _, i := range cur.Sites {
		site = c.SiteAt(i)
		if site.Kind == city.SiteDisposal {
			break
		}
	}
	if site != nil && !cur.Still && !(cur.Reported && cur.SpeedKmh <= r.cfg.StopSpeedKmh) {
		site = nil // driving through a site's corner is neither arriving at it nor leaving it
	}
	if site == nil { // on the road, or moving inside a site
		if t, ok := ep.memo.(*tripLog); ok {
			return r.onRoad(c, prev, cur, t)
		}
		return Verdict{} // never stopped at a site
	}
	t := tripOf(ep)
	onTrip, from, left := t.underway, t.site, t.left
	if site.Kind == city.SiteDisposal {
		t.site = site.ID
		t.end()
		if onTrip && cur.Permit != nil && cur.Permit.ToSite != site.ID && cur.Permit.FromSite == from {
			return Verdict{Active: true, Immediate: true, Instant: true, Severity: SeveritySevere, Value: cur.Time.Sub(left).Seconds(), Place: site.ID}
		}
		return Verdict{Clear: true}
	}
	// a construction site
	if onTrip && from == site.ID && cur.Time.Sub(left) < r.cfg.MinTrip {
		t.end() // back through the gate it just left
		return Verdict{Clear: true}
	}
	t.site = site.ID
	t.end()
	if onTrip && !sawDisposal(t.seen, left, cur.Time) {
		// Decided once events up to now have been read (Due): a disposal gate camera may have
		// seen the truck while its terminal was silent.
		arrived := cur.Time
		switch {
		case cur.Still && cur.StillSince.After(left):
			arrived = cur.StillSince // stopped there since then: the trip ended then, whenever confirmed
		case prev != nil && cur.AfterGap && prev.Time.After(left):
			// stopped (a reported speed) at the first fix after a gap (a loss of the fix, a snap
			// dropped): the truck arrived unheard between the two, at an unknown moment, the
			// middle of the gap being the estimate nearest the truth in the worst case
			arrived = cur.Time.Add(-cur.Time.Sub(prev.Time) / 2)
		}
		if len(t.waiting) < maxSightings {
			t.waiting = append(t.waiting, tripDecision{Due: arrived, From: left, Place: site.ID})
		}
		return Verdict{}
	}
	return Verdict{Clear: true}
}

// onRoad judges a truck on the road: a trip starts once it has left a construction site, ends
// once a disposal gate camera has seen it, and is unclosed once it has run out of time.
func (r *TripUnclosed) onRoad(c *city.City, prev, cur *Observation, t *tripLog) Verdict {
	switch {
	case !t.underway:
		if s := c.Site(t.site); t.site != "" && s != nil && s.Kind == city.SiteConstruction && r.clearlyOut(s, prev) && r.clearlyOut(s, cur) {
			t.start(prev.Time) // out since the first of the two fixes
			return Verdict{Clear: true}
		}
	case sawDisposal(t.seen, t.left, cur.Time): // a disposal gate camera saw it during this trip
		t.site = ""
		t.end()
		return Verdict{Clear: true}
	case cur.Time.Sub(t.left) > r.cfg.MaxTrip:
		v := Verdict{Active: true, Immediate: true, Instant: true, Severity: SeverityWarning, Value: cur.Time.Sub(t.left).Seconds(), Limit: r.cfg.MaxTrip.Seconds(), Place: "timeout"}
		t.site = ""
		t.end()
		return v
	}
	return Verdict{}
}

// clearlyOut reports whether o is outside site s by more than the leave margin.
func (r *TripUnclosed) clearlyOut(s *city.Site, o *Observation) bool {
	return o != nil && !s.Area.Contains(o.XY) && s.Area.DistanceToEdge(o.XY) >= r.cfg.LeaveMarginM
}

// Due implements TimeRule: the waiting decisions on trips that ended at a construction site.
func (r *TripUnclosed) Due(c *city.City, tr *Track, ep *Episode, watermark time.Time) (Verdict, bool) {
	t, ok := ep.memo.(*tripLog)
	if !ok {
		return Verdict{}, false
	}
	decided := false
	for len(t.waiting) > 0 && !watermark.Before(t.waiting[0].Due) {
		d := t.waiting[0]
		t.waiting, decided = t.waiting[1:], true
		if !sawDisposal(t.seen, d.From, d.Due) {
			// Everything in it comes from the trip (not from when it is decided): its place is
			// the construction site it names, where the alert is.
			v := Verdict{Active: true, Immediate: true, Instant: true, Severity: SeveritySevere, Value: d.Due.Sub(d.From).Seconds(), Place: d.Place, Since: d.Due}
			if s := c.Site(d.Place); s != nil {
				v.At = c.Proj.Inverse(s.Area.Bound.Center())
			}
			return v, true
		}
	}
	if len(t.waiting) == 0 {
		t.waiting = nil
	}
	return Verdict{}, decided
}

// NextDue implements TimeRule: the first waiting decision.
func (r *TripUnclosed) NextDue(tr *Track, ep *Episode) time.Time {
	if t, ok := ep.memo.(*tripLog); ok && len(t.waiting) > 0 {
		return t.waiting[0].Due
	}
	return time.Time{}
}

// ObserveEvent implements EventObserver: a disposal site's gate camera seeing the truck enter
// closes its trip, even if its terminal was silent inside.
// Events and fixes come from different topics and may be read in either order: the sighting is
// kept (seen) and counts for the trip under way at its time.
func (r *TripUnclosed) ObserveEvent(c *city.City, ev *record.Event, ep *Episode) {
	if ev.Kind != record.KindGateEntry {
		return
	}
	s := c.Site(ev.SiteID)
	if s == nil || s.Kind != city.SiteDisposal {
		return
	}
	t := tripOf(ep)
	i, found := slices.BinarySearchFunc(t.seen, ev.Time, func(a, b time.Time) int { return a.Compare(b) })
	if !found {
		t.seen = slices.Insert(t.seen, i, ev.Time)
		if len(t.seen) > maxSightings {
			t.seen = slices.Delete(t.seen, 0, len(t.seen)-maxSightings)
		}
	}
	// The trip under way is not closed here: the sighting may belong to a later trip (the events
	// topic read ahead of the fixes). Judge closes it once the fixes reach the sighting's time.
}

// maxSightings bounds the disposal-gate sightings kept per truck: events are read from their own
// topic and may run hours ahead of the fixes.
const maxSightings = 64

// sawDisposal reports whether a disposal site's gate camera saw the truck between from and to.
func sawDisposal(seen []time.Time, from, to time.Time) bool {
	i, _ := slices.BinarySearchFunc(seen, from, func(a, b time.Time) int { return a.Compare(b) })
	return i < len(seen) && !seen[i].After(to)
}

// Describe implements FixRule.
func (r *TripUnclosed) Describe(a *Alert) string {
	switch a.Place {
	case "timeout":
		return fmt.Sprintf("trip from a construction site reached no disposal site within %s", time.Duration(a.Limit)*time.Second)
	default:
		return fmt.Sprintf("trip ended at %s without unloading at its permit's disposal site after %s: suspected illegal dumping", a.Place, (time.Duration(a.Value) * time.Second).Round(time.Second))
	}
}
