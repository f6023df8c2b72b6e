package detectors

import (
	"errors"
	"fmt"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
)

// DwellConfig configures dwell.
type DwellConfig struct {
	Disabled bool `yaml:"disabled"`
	// StopSpeedKmh is no longer used: a stop is judged by displacement over time (StopRadiusM);
	// kept so that existing configuration files still load.
	StopSpeedKmh float64 `yaml:"stop_speed_kmh"`
	// StopRadiusM: a truck that stays within this distance of where it stopped (the centre of its
	// fixes there) is stopped; one fix outside it (jitter) does not end the stop, two in a row do.
	StopRadiusM float64 `yaml:"stop_radius_m"`
	// SiteMarginM: a raised dump body this close to a site counts as at the site (GPS error).
	SiteMarginM float64 `yaml:"site_margin_m"`
	Timing      `yaml:",inline"`
}

func (c DwellConfig) withDefaults() DwellConfig {
	if c.StopSpeedKmh == 0 {
		c.StopSpeedKmh = 5
	}
	if c.StopRadiusM == 0 {
		c.StopRadiusM = 60
	}
	if c.SiteMarginM == 0 {
		c.SiteMarginM = 40
	}
	c.Timing = defaultTiming(c.Timing, Timing{For: 10 * time.Minute, MinFixes: 2, EscalateAfter: 30 * time.Minute})
	return c
}

func (c DwellConfig) validate() error {
	if c.StopSpeedKmh <= 0 || c.StopRadiusM <= 0 {
		return errors.New("stop_speed_kmh and stop_radius_m must be positive")
	}
	return validateTiming(c.Timing)
}

// DwellDetector flags a truck stopped too long outside any authorised site (suspected illegal
// dumping, 偷倒). A dump body raised outside a disposal site is severe at once.
//
// A stop is judged by displacement over time, not by one fix's speed: the truck has stayed within
// stop_radius_m of where it stopped (the running centre of its fixes there) since the stop began.
// One fix outside the radius (GPS jitter, a re-acquisition) is set aside; the stop is over only
// when two fixes in a row are outside it and agree on another place.
type DwellDetector struct{ cfg DwellConfig }

// dwellStop is what dwell remembers of a truck: where (lon/lat, the running centre of its fixes)
// and since when it has been staying, and whether its last fix had the dump body raised outside
// any site.
type dwellStop struct {
	stay   stay
	lifted bool
}

func (s *dwellStop) empty() bool { return false }

func (s *dwellStop) saved() memoFields {
	f := memoFields{Anchor: s.stay.centre, Mark: s.stay.since, Anchored: true, Stay: &s.stay}
	if s.lifted {
		f.Ref = "lifted"
	}
	return f
}

// restoreMemo implements remembering.
func (r *DwellDetector) restoreMemo(f memoFields) memo {
	if !f.Anchored {
		return nil
	}
	if f.Stay != nil && f.Stay.n > 0 {
		return &dwellStop{stay: *f.Stay, lifted: f.Ref == "lifted"}
	}
	return &dwellStop{stay: stay{centre: f.Anchor, n: stayMeanMax, since: f.Mark}, lifted: f.Ref == "lifted"}
}

// dwellConfirm is how long a stay must have lasted before it counts as a stop (the episode then
// starts when the stay did): a truck crawling through traffic stays within the radius for a few
// seconds only.
const dwellConfirm = time.Minute

// Name implements FixRule.
func (r *DwellDetector) Name() Rule { return RuleDwell }

// Judge implements FixRule. A moving truck has no memo: one starts once the track is still
// (kinematics: stayed within the radius for still_for), from the track's stay, and goes on with
// the stop's own stay (checkpointed) until the truck has moved.
func (r *DwellDetector) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	stop, _ := ep.memo.(*dwellStop)
	lifted := cur.Lifted && !r.nearSite(c, cur.XY)
	inStay := true
	switch {
	case stop == nil && !cur.Still && !lifted:
		return Verdict{Clear: true} // moving: nothing to remember
	case stop == nil:
		stop = &dwellStop{stay: stay{centre: cur.LL, n: 1, since: cur.Time}}
		if cur.Still {
			stop.stay = stay{centre: cur.StayAt, n: 2, since: cur.StillSince}
		}
		ep.memo = stop
	default:
		left := stop.stay.altAt
		switch stop.stay.observe(cur.Time, cur.LL, r.cfg.StopRadiusM) {
		case stayAside:
			inStay = false
		case stayMoved: // two fixes in a row away from the stop: it ended at the first of them
			if !lifted {
				ep.memo = nil
				return Verdict{Clear: true, Since: left}
			}
		}
	}
	if lifted {
		// Severe at once, on the second such fix in a row: one GPS outlier at a disposal site
		// while unloading is not dumping.
		confirmed := stop.lifted
		stop.lifted = true
		return Verdict{Active: true, Immediate: confirmed, Severity: SeveritySevere, Value: cur.Time.Sub(stop.stay.since).Seconds(), Place: "lifted"}
	}
	stop.lifted = false
	if !inStay {
		return Verdict{} // one fix away from the stop: jitter, or the start of a move the next fix confirms
	}
	stayed := cur.Time.Sub(stop.stay.since)
	if len(cur.Sites) > 0 || stayed < dwellConfirm {
		return Verdict{Clear: true} // at a site, or not stopped long enough to count yet
	}
	return Verdict{Active: true, Severity: SeverityWarning, Value: stayed.Seconds(), Limit: r.cfg.For.Seconds(), Since: stop.stay.since}
}

// nearSite reports whether xy is in a site or so close to one that GPS error could explain it.
func (r *DwellDetector) nearSite(c *city.City, xy orb.Point) bool {
	var buf [8]int32
	return len(c.SitesNear(xy, r.cfg.SiteMarginM, buf[:0])) > 0
}

// Describe implements FixRule.
func (r *DwellDetector) Describe(a *Alert) string {
	if a.Place == "lifted" {
		return "dump body raised outside any disposal site: suspected illegal dumping"
	}
	return fmt.Sprintf("stopped %s outside any authorised site (limit %s, within %.0f m): suspected illegal dumping",
		(time.Duration(a.Value) * time.Second).String(), (time.Duration(a.Limit) * time.Second).String(), r.cfg.StopRadiusM)
}
