package detectors

import (
	"fmt"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// RulesConfig has one section per rule. Every field has a documented default (see
// configs/muckwatch.yaml).
type RulesConfig struct {
	RouteDeviation RouteDeviationConfig `yaml:"route_deviation"`
	Speeding       SpeedingConfig       `yaml:"speeding"`
	RestrictedZone RestrictedZoneConfig `yaml:"restricted_zone"`
	Dwell          DwellConfig          `yaml:"dwell"`
	Unlicensed     UnlicensedConfig     `yaml:"unlicensed"`
	Overload       OverloadConfig       `yaml:"overload"`
	CoverOpen      CameraConfig         `yaml:"cover_open"`
	Spillage       CameraConfig         `yaml:"spillage"`
	SiteExitRisk   SiteExitRiskConfig   `yaml:"site_exit_risk"`
	SignalLost     SignalLostConfig     `yaml:"signal_lost"`
	TripUnclosed   TripUnclosedConfig   `yaml:"trip_unclosed"`
}

func (c RulesConfig) withDefaults() RulesConfig {
	c.RouteDeviation = c.RouteDeviation.withDefaults()
	c.Speeding = c.Speeding.withDefaults()
	c.RestrictedZone = c.RestrictedZone.withDefaults()
	c.Dwell = c.Dwell.withDefaults()
	c.Unlicensed = c.Unlicensed.withDefaults()
	c.Overload = c.Overload.withDefaults()
	c.CoverOpen = c.CoverOpen.withDefaults()
	c.Spillage = c.Spillage.withDefaults()
	c.SiteExitRisk = c.SiteExitRisk.withDefaults()
	c.SignalLost = c.SignalLost.withDefaults()
	c.TripUnclosed = c.TripUnclosed.withDefaults()
	return c
}

func (c RulesConfig) validate() error {
	checks := []struct {
		name string
		err  error
	}{
		{"route_deviation", c.RouteDeviation.validate()},
		{"speeding", c.Speeding.validate()},
		{"restricted_zone", c.RestrictedZone.validate()},
		{"dwell", c.Dwell.validate()},
		{"unlicensed", c.Unlicensed.validate()},
		{"overload", c.Overload.validate()},
		{"cover_open", c.CoverOpen.validate()},
		{"spillage", c.Spillage.validate()},
		{"site_exit_risk", c.SiteExitRisk.validate()},
		{"signal_lost", c.SignalLost.validate()},
		{"trip_unclosed", c.TripUnclosed.validate()},
	}
	for _, ch := range checks {
		if ch.err != nil {
			return fmt.Errorf("detectors.rules.%s: %w", ch.name, ch.err)
		}
	}
	return nil
}

// registerRules is the one place rules are registered. A disabled rule is not registered.
func registerRules(c RulesConfig) ([]fixEntry, []eventEntry) {
	var fixes []fixEntry
	var events []eventEntry
	addFix := func(enabled bool, r FixRule, t Timing) {
		if enabled {
			fixes = append(fixes, fixEntry{rule: r, timing: t, phase: PhaseIn})
		}
	}
	addEvent := func(enabled bool, r EventRule, t Timing, phase func(*city.City, *record.Event) Phase) {
		if enabled {
			events = append(events, eventEntry{rule: r, timing: t, phase: phase})
		}
	}
	addFix(!c.RouteDeviation.Disabled, &RouteDeviation{cfg: c.RouteDeviation}, c.RouteDeviation.Timing)
	addFix(!c.Speeding.Disabled, &Speeding{cfg: c.Speeding}, c.Speeding.Timing)
	addFix(!c.RestrictedZone.Disabled, &RestrictedZone{cfg: c.RestrictedZone}, c.RestrictedZone.Timing)
	addFix(!c.Dwell.Disabled, &DwellDetector{cfg: c.Dwell}, c.Dwell.Timing)
	addFix(!c.Unlicensed.Disabled, &Unlicensed{cfg: c.Unlicensed}, c.Unlicensed.Timing)
	addFix(!c.SignalLost.Disabled, &SignalLost{cfg: c.SignalLost}, c.SignalLost.Timing)
	addFix(!c.TripUnclosed.Disabled, &TripUnclosed{cfg: c.TripUnclosed}, c.TripUnclosed.Timing)
	addEvent(!c.Overload.Disabled, &Overload{cfg: c.Overload}, c.Overload.Timing, phaseAtSite)
	addEvent(!c.CoverOpen.Disabled, &CameraRule{rule: RuleCoverOpen, cfg: c.CoverOpen}, c.CoverOpen.Timing, phaseAtSite)
	addEvent(!c.Spillage.Disabled, &CameraRule{rule: RuleSpillage, cfg: c.Spillage}, c.Spillage.Timing, phaseAtSite)
	addEvent(!c.SiteExitRisk.Disabled, &SiteExitRisk{cfg: c.SiteExitRisk}, c.SiteExitRisk.Timing, func(*city.City, *record.Event) Phase { return PhasePre })
	return fixes, events
}

// phaseAtSite is pre-event for evidence gathered at a construction site's gate (the truck is not
// on the road yet) and in-event elsewhere.
func phaseAtSite(c *city.City, ev *record.Event) Phase {
	if s := c.Site(ev.SiteID); s != nil && s.Kind == city.SiteConstruction {
		return PhasePre
	}
	return PhaseIn
}

func validateTiming(t Timing) error {
	switch {
	case t.For < 0 || t.EscalateAfter < 0 || t.Window < 0 || t.ClearFor < 0:
		return fmt.Errorf("durations must not be negative (for %s, escalate_after %s, window %s, clear_for %s)", t.For, t.EscalateAfter, t.Window, t.ClearFor)
	case t.ClearFor > time.Hour:
		return fmt.Errorf("clear_for must be at most 1h, got %s", t.ClearFor)
	case t.MinFixes < 1:
		return fmt.Errorf("min_fixes must be at least 1, got %d", t.MinFixes)
	case t.For > 24*time.Hour:
		return fmt.Errorf("for must be at most 24h, got %s", t.For)
	}
	return nil
}

func defaultTiming(t, d Timing) Timing {
	if t.For == 0 {
		t.For = d.For
	}
	if t.MinFixes == 0 {
		t.MinFixes = d.MinFixes
	}
	if t.EscalateAfter == 0 {
		t.EscalateAfter = d.EscalateAfter
	}
	if t.Window == 0 {
		t.Window = d.Window
	}
	if t.ClearFor == 0 {
		t.ClearFor = d.ClearFor
	}
	return t
}
