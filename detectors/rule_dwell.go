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
	// StopSpeedKmh: below this speed a truck counts as stopped.
	StopSpeedKmh float64 `yaml:"stop_speed_kmh"`
	// StopRadiusM: a stopped truck that stays within this distance of where it stopped is still
	// stopped (GPS drift while parked is tolerated).
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
type DwellDetector struct{ cfg DwellConfig }

// dwellStop is what dwell remembers of a stopped truck (a moving one has none): where and since
// when it has been stopped, and whether its last fix had the dump body raised outside any site.
type dwellStop struct {
	at     orb.Point // projected metres
	since  time.Time
	lifted bool
}

func (s *dwellStop) empty() bool { return false }

func (s *dwellStop) saved() memoFields {
	f := memoFields{Anchor: s.at, Mark: s.since, Anchored: true}
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
	return &dwellStop{at: f.Anchor, since: f.Mark, lifted: f.Ref == "lifted"}
}

// stopAt starts the truck's stop at cur.
func stopAt(ep *Episode, cur *Observation) *dwellStop {
	s := &dwellStop{at: cur.XY, since: cur.Time}
	ep.memo = s
	return s
}

// Name implements FixRule.
func (r *DwellDetector) Name() Rule { return RuleDwell }

// Judge implements FixRule.
func (r *DwellDetector) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	stop, _ := ep.memo.(*dwellStop)
	if cur.Lifted && !r.nearSite(c, cur.XY) {
		if stop == nil {
			stop = stopAt(ep, cur)
		}
		// Severe at once, on the second such fix in a row: one GPS outlier at a disposal site
		// while unloading is not dumping.
		confirmed := stop.lifted
		stop.lifted = true
		return Verdict{Active: true, Immediate: confirmed, Severity: SeveritySevere, Value: cur.Time.Sub(stop.since).Seconds(), Place: "lifted"}
	}
	moving := cur.SpeedKmh > r.cfg.StopSpeedKmh || (stop != nil && planarDist(stop.at, cur.XY) > r.cfg.StopRadiusM)
	if moving {
		ep.memo = nil // the stop is over
		return Verdict{Clear: true}
	}
	if stop == nil {
		stop = stopAt(ep, cur)
	}
	stop.lifted = false
	if len(cur.Sites) > 0 {
		return Verdict{Clear: true}
	}
	return Verdict{Active: true, Severity: SeverityWarning, Value: cur.Time.Sub(stop.since).Seconds(), Limit: r.cfg.For.Seconds()}
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
	return fmt.Sprintf("stopped %s outside any authorised site (limit %s): suspected illegal dumping",
		(time.Duration(a.Value) * time.Second).String(), (time.Duration(a.Limit) * time.Second).String())
}
