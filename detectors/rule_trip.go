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

// Judge implements FixRule: any fix ends the silence.
func (r *SignalLost) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	return Verdict{Clear: true}
}

// Due implements TimeRule: silent for After since a fix on the road at speed.
func (r *SignalLost) Due(c *city.City, tr *Track, ep *Episode, watermark time.Time) Verdict {
	silent := watermark.Sub(tr.last.Time)
	if silent < r.cfg.After || tr.last.SpeedKmh <= r.cfg.MovingSpeedKmh || tr.inSite {
		return Verdict{}
	}
	return Verdict{Active: true, Immediate: true, Severity: SeverityWarning, Value: silent.Seconds(), Limit: r.cfg.After.Seconds(), Since: tr.last.Time}
}

// NextDue implements TimeRule: a truck last seen moving on the road is due its threshold after.
func (r *SignalLost) NextDue(tr *Track, ep *Episode) time.Time {
	if !tr.hasLast || tr.last.SpeedKmh <= r.cfg.MovingSpeedKmh || tr.inSite {
		return time.Time{}
	}
	return tr.last.Time.Add(r.cfg.After)
}

// Describe implements FixRule.
func (r *SignalLost) Describe(a *Alert) string {
	if a.Status == StatusResolved {
		return fmt.Sprintf("no GPS fix for %s while moving on the road; fixes resumed", a.End.Sub(a.Start).Round(time.Second))
	}
	return fmt.Sprintf("no GPS fix for over %s while moving on the road: terminal off or shielded", time.Duration(a.Limit)*time.Second)
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
	// corner on the road does not end it).
	StopSpeedKmh float64 `yaml:"stop_speed_kmh"`
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
//
// Its episode keeps the trip: Ref is the site it left, Mark when, Anchored whether it is under way.
type TripUnclosed struct{ cfg TripUnclosedConfig }

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
	onTrip := ep.Anchored
	if site != nil && cur.SpeedKmh > r.cfg.StopSpeedKmh {
		site = nil // driving through a site's corner is neither arriving at it nor leaving it
	}
	switch {
	case site == nil: // on the road
		if !onTrip && ep.Ref != "" && c.Site(ep.Ref) != nil && c.Site(ep.Ref).Kind == city.SiteConstruction {
			ep.Anchored, ep.Mark = true, cur.Time // a trip starts
			return Verdict{Clear: true}
		}
		if onTrip && sawDisposal(ep.Seen, ep.Mark, cur.Time) {
			ep.Ref, ep.Anchored = "", false // a disposal gate camera saw it during this trip
			return Verdict{Clear: true}
		}
		if onTrip && cur.Time.Sub(ep.Mark) > r.cfg.MaxTrip {
			ep.Anchored = false
			ep.Ref = ""
			return Verdict{Active: true, Immediate: true, Instant: true, Severity: SeverityWarning, Value: cur.Time.Sub(ep.Mark).Seconds(), Limit: r.cfg.MaxTrip.Seconds(), Place: "timeout"}
		}
		return Verdict{}
	case site.Kind == city.SiteDisposal:
		from := ep.Ref
		ep.Ref, ep.Anchored = site.ID, false
		if onTrip && cur.Permit != nil && cur.Permit.ToSite != site.ID && cur.Permit.FromSite == from {
			return Verdict{Active: true, Immediate: true, Instant: true, Severity: SeveritySevere, Value: cur.Time.Sub(ep.Mark).Seconds(), Place: site.ID}
		}
		return Verdict{Clear: true}
	default: // a construction site
		if onTrip && ep.Ref == site.ID && cur.Time.Sub(ep.Mark) < r.cfg.MinTrip {
			ep.Anchored = false // back through the gate it just left
			return Verdict{Clear: true}
		}
		ep.Ref, ep.Anchored = site.ID, false
		if onTrip && !sawDisposal(ep.Seen, ep.Mark, cur.Time) {
			// Decided once events up to now have been read (Due): a disposal gate camera may have
			// seen the truck while its terminal was silent.
			if len(ep.Pending) < maxSightings {
				ep.Pending = append(ep.Pending, Pending{Due: cur.Time, From: ep.Mark, Place: site.ID})
			}
			return Verdict{}
		}
		return Verdict{Clear: true}
	}
}

// Due implements TimeRule: the pending decision on a trip that ended at a construction site.
func (r *TripUnclosed) Due(c *city.City, tr *Track, ep *Episode, watermark time.Time) Verdict {
	for len(ep.Pending) > 0 && !watermark.Before(ep.Pending[0].Due) {
		p := ep.Pending[0]
		ep.Pending = ep.Pending[1:]
		if !sawDisposal(ep.Seen, p.From, p.Due) {
			return Verdict{Active: true, Immediate: true, Instant: true, Severity: SeveritySevere, Value: p.Due.Sub(p.From).Seconds(), Place: p.Place, Since: p.Due}
		}
	}
	if len(ep.Pending) == 0 {
		ep.Pending = nil
	}
	return Verdict{}
}

// NextDue implements TimeRule: the first pending decision.
func (r *TripUnclosed) NextDue(tr *Track, ep *Episode) time.Time {
	if len(ep.Pending) == 0 {
		return time.Time{}
	}
	return ep.Pending[0].Due
}

// ObserveEvent implements EventObserver: a disposal site's gate camera seeing the truck enter
// closes its trip, even if its terminal was silent inside.
// Events and fixes come from different topics and may be read in either order: the sighting is
// kept (Seen) and counts for the trip under way at its time.
func (r *TripUnclosed) ObserveEvent(c *city.City, ev *record.Event, ep *Episode) {
	if ev.Kind != record.KindGateEntry {
		return
	}
	s := c.Site(ev.SiteID)
	if s == nil || s.Kind != city.SiteDisposal {
		return
	}
	i, found := slices.BinarySearchFunc(ep.Seen, ev.Time, func(a, b time.Time) int { return a.Compare(b) })
	if !found {
		ep.Seen = slices.Insert(ep.Seen, i, ev.Time)
		if len(ep.Seen) > maxSightings {
			ep.Seen = slices.Delete(ep.Seen, 0, len(ep.Seen)-maxSightings)
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
