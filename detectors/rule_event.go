package detectors

import (
	"fmt"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// OverloadConfig configures overload.
type OverloadConfig struct {
	Disabled bool `yaml:"disabled"`
	// Tolerance: a load above limit × (1 + Tolerance) is an overload. The limit is the lower of
	// the vehicle's rated load and the permit's max load.
	Tolerance float64 `yaml:"tolerance"`
	// SevereFactor: above limit × SevereFactor it is severe.
	SevereFactor float64 `yaml:"severe_factor"`
	Timing       `yaml:",inline"`
}

func (c OverloadConfig) withDefaults() OverloadConfig {
	if c.Tolerance == 0 {
		c.Tolerance = 0.05
	}
	if c.SevereFactor == 0 {
		c.SevereFactor = 1.3
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 1, Window: 2 * time.Hour})
	return c
}

func (c OverloadConfig) validate() error {
	if c.Tolerance < 0 || c.SevereFactor <= 1+c.Tolerance {
		return fmt.Errorf("need tolerance >= 0 and severe_factor > 1 + tolerance, got %g and %g", c.Tolerance, c.SevereFactor)
	}
	return validateTiming(c.Timing)
}

// Overload flags a weighed or sensed load above the truck's limit.
type Overload struct{ cfg OverloadConfig }

// Name implements EventRule.
func (r *Overload) Name() Rule { return RuleOverload }

// JudgeEvent implements EventRule.
func (r *Overload) JudgeEvent(c *city.City, tr *Track, ev *record.Event) Verdict {
	if !ev.HasLoad || (ev.Kind != record.KindWeigh && ev.Kind != record.KindGateExit) {
		return Verdict{}
	}
	limit := 0.0
	if v := c.Vehicle(ev.VehicleID); v != nil {
		limit = v.RatedLoadKg
	}
	if p := c.ActivePermit(ev.VehicleID, ev.Time); p != nil && p.MaxLoadKg > 0 && (limit == 0 || p.MaxLoadKg < limit) {
		limit = p.MaxLoadKg
	}
	if limit <= 0 {
		return Verdict{}
	}
	if ev.LoadKg <= limit*(1+r.cfg.Tolerance) {
		return Verdict{Clear: true} // a legal weighing (the next load) ends an overload episode
	}
	sev := SeverityWarning
	if ev.LoadKg > limit*r.cfg.SevereFactor {
		sev = SeveritySevere
	}
	return Verdict{Active: true, Severity: sev, Value: ev.LoadKg, Limit: limit, Place: ev.SiteID}
}

// Describe implements EventRule.
func (r *Overload) Describe(a *Alert) string {
	return fmt.Sprintf("overloaded: %.0f kg weighed against a limit of %.0f kg (+%.0f%%)", a.Value, a.Limit, (a.Value/a.Limit-1)*100)
}

// CameraConfig configures a rule fed by camera events (cover_open, spillage).
type CameraConfig struct {
	Disabled bool `yaml:"disabled"`
	// MinConfidence: camera events below this confidence are ignored.
	MinConfidence float64 `yaml:"min_confidence"`
	Timing        `yaml:",inline"`
}

func (c CameraConfig) withDefaults() CameraConfig {
	if c.MinConfidence == 0 {
		c.MinConfidence = 0.7
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 1, Window: 30 * time.Minute})
	return c
}

func (c CameraConfig) validate() error {
	if c.MinConfidence < 0 || c.MinConfidence > 1 {
		return fmt.Errorf("min_confidence must be within [0, 1], got %g", c.MinConfidence)
	}
	return validateTiming(c.Timing)
}

// CameraRule flags camera evidence: an uncovered load (cover_open, 未密闭) or spillage (撒漏).
// Sightings by several cameras within the window are one episode.
type CameraRule struct {
	rule Rule
	cfg  CameraConfig
}

// Name implements EventRule.
func (r *CameraRule) Name() Rule { return r.rule }

// JudgeEvent implements EventRule.
func (r *CameraRule) JudgeEvent(c *city.City, tr *Track, ev *record.Event) Verdict {
	if float64(ev.Confidence) < r.cfg.MinConfidence {
		return Verdict{}
	}
	hit := false
	switch r.rule {
	case RuleCoverOpen:
		hit = ev.Kind == record.KindCoverOpen || (ev.HasCover && !ev.CoverClosed && (ev.Kind == record.KindGateExit || ev.Kind == record.KindPlateCapture))
	case RuleSpillage:
		hit = ev.Kind == record.KindSpillage
	}
	if !hit {
		return Verdict{}
	}
	sev := SeverityWarning
	if r.rule == RuleSpillage {
		sev = SeveritySevere
	}
	return Verdict{Active: true, Severity: sev, Value: float64(ev.Confidence), Limit: r.cfg.MinConfidence, Place: ev.Source}
}

// Describe implements EventRule.
func (r *CameraRule) Describe(a *Alert) string {
	if r.rule == RuleSpillage {
		return fmt.Sprintf("spillage (撒漏) seen by camera %s (confidence %.2f)", a.Place, a.Value)
	}
	return fmt.Sprintf("load not covered (未密闭) seen by camera %s (confidence %.2f)", a.Place, a.Value)
}

// SiteExitRiskConfig configures site_exit_risk.
type SiteExitRiskConfig struct {
	Disabled bool `yaml:"disabled"`
	// Threshold: an exit scoring at least this (0–100) is alerted before the truck reaches the road.
	Threshold float64 `yaml:"threshold"`
	Timing    `yaml:",inline"`
}

func (c SiteExitRiskConfig) withDefaults() SiteExitRiskConfig {
	if c.Threshold == 0 {
		c.Threshold = 50
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 1, Window: 10 * time.Minute})
	return c
}

func (c SiteExitRiskConfig) validate() error {
	if c.Threshold <= 0 || c.Threshold > 100 {
		return fmt.Errorf("threshold must be within (0, 100], got %g", c.Threshold)
	}
	return validateTiming(c.Timing)
}

// SiteExitRisk assesses every truck leaving a construction site (gate_exit) before it reaches the
// road: no valid permit, a permit for other sites, an open cover, an overload.
type SiteExitRisk struct{ cfg SiteExitRiskConfig }

// Name implements EventRule.
func (r *SiteExitRisk) Name() Rule { return RuleSiteExitRisk }

// JudgeEvent implements EventRule.
func (r *SiteExitRisk) JudgeEvent(c *city.City, tr *Track, ev *record.Event) Verdict {
	if ev.Kind != record.KindGateExit {
		return Verdict{}
	}
	site := c.Site(ev.SiteID)
	if site != nil && site.Kind != city.SiteConstruction {
		return Verdict{}
	}
	score := 0.0
	p := c.ActivePermit(ev.VehicleID, ev.Time)
	switch {
	case c.Vehicle(ev.VehicleID) == nil:
		score += 60
	case p == nil:
		score += 50
	case site != nil && p.FromSite != site.ID:
		score += 40
	}
	if ev.HasCover && !ev.CoverClosed {
		score += 30
	}
	if ev.HasLoad {
		limit := 0.0
		if v := c.Vehicle(ev.VehicleID); v != nil {
			limit = v.RatedLoadKg
		}
		if p != nil && p.MaxLoadKg > 0 && (limit == 0 || p.MaxLoadKg < limit) {
			limit = p.MaxLoadKg
		}
		if limit > 0 && ev.LoadKg > limit {
			score += 30
		}
	}
	if score > 100 {
		score = 100
	}
	if score < r.cfg.Threshold {
		return Verdict{}
	}
	sev := SeverityWarning
	if score >= 80 {
		sev = SeveritySevere
	}
	return Verdict{Active: true, Severity: sev, Value: score, Limit: r.cfg.Threshold, Place: ev.SiteID}
}

// Describe implements EventRule.
func (r *SiteExitRisk) Describe(a *Alert) string {
	return fmt.Sprintf("high-risk exit from site %s: risk %.0f/100 (threshold %.0f)", a.Place, a.Value, a.Limit)
}
