package detectors

import (
	"fmt"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// A rule is one small type behind FixRule (judged at every GPS fix) or EventRule (at every camera
// or sensor event), with a config section of its own, registered below (registerRules) and
// nowhere else. It judges one observation at a time; the engine's episodes (episode.go) turn its
// verdicts into alerts.

// Observation is what the engine knows about a vehicle at one fix. It is computed once per fix
// (spatial lookups included) and shared by every rule. Slices alias engine scratch space and are
// valid only during the call that receives them.
type Observation struct {
	Time     time.Time
	LL       orb.Point // lon/lat, WGS-84
	XY       orb.Point // projected metres
	SpeedKmh float64   // from the terminal, else derived over the speed window; capped at max_speed_kmh
	Reported bool      // SpeedKmh came from the terminal
	Derived  bool      // SpeedKmh was derived from positions (neither: unknown, 0)
	// routeSeg: the segment of the permit's route found nearest (or near enough) by route
	// deviation, where it looks first at the next fix (geo.Corridor.WithinNear); only a hint,
	// in the padding after the flags, not checkpointed
	routeSeg int32
	// SpeedFrom: where a derived speed's window starts (lon/lat of the oldest fix it spans); the
	// truck's speed is an average from there, under the limits along the way. SpanKmh is that
	// average over the whole window (capped as SpeedKmh), whatever the fixes in between say.
	SpeedFrom orb.Point
	SpanKmh   float64
	// AfterGap: the fix came after a gap in the track's reporting (a loss of the fix), more than
	// twice the interval before it: what changed in between happened at an unknown moment
	AfterGap bool
	// Still: the vehicle has stayed within stop_radius_m of one place for still_for, since
	// StillSince (track.go: kinematics).
	Still      bool
	StillSince time.Time
	StayAt     orb.Point // the centre of the track's current stay (lon/lat)
	Lifted     bool
	ACC        bool
	Vehicle    *city.Vehicle // nil for an unregistered plate
	Permit     *city.Permit  // the permit valid now, nil if none
	// Route: the permit's approved route, found with it (the engine's observations; one made
	// without it has route deviation look the route up by the permit's RouteID)
	Route *city.Route
	Sites []int32 // indices of sites containing XY
	Zones []int32 // indices of zones containing XY
}

// route returns the permit's approved route: the one the engine found with the permit, once a
// validity span, so that a fix does not read the permit (a cache miss a fix at 100,000 trucks);
// for an observation made without it, the permit's looked up in c. nil without either.
func (o *Observation) route(c *city.City) *city.Route {
	if o.Route != nil || o.Permit == nil {
		return o.Route
	}
	return c.Route(o.Permit.RouteID)
}

// Verdict is a rule's judgement of one observation.
type Verdict struct {
	Active   bool     // the violation condition holds now
	Clear    bool     // the condition is clearly over (hysteresis: !Active && !Clear keeps the episode as it is)
	Severity Severity // severity if it fires now
	Value    float64  // measured value
	Limit    float64  // limit it was judged against
	Place    string   // zone, site or route id
	// Immediate fires at once, without waiting for the rule's For and MinFixes.
	Immediate bool
	// MoreFixes: the episode needs this many fixes beyond the rule's MinFixes to open (a
	// speed derived from sparse fixes: two in a row can share one offset).
	MoreFixes int
	// Since is when a time-driven episode started (TimeRule verdicts only).
	Since time.Time
	// Instant: the finding is a single moment; the alert opens and resolves at once.
	Instant bool
	// At is where the finding is (lon/lat), when it is not where the vehicle is now: the site a
	// trip decision names. Zero: where the episode started.
	At orb.Point
	// Basis says how Value was measured when it can be told ("reported", "derived"); it is kept
	// in the alert's evidence.
	Basis string
}

// SpeedKnown reports whether o has a speed, reported or derived.
func (o *Observation) SpeedKnown() bool { return o.Reported || o.Derived }

// speedBasis names how o's speed was measured.
func (o *Observation) speedBasis() string {
	if o.Reported {
		return "reported"
	}
	return "derived"
}

// FixRule judges a vehicle at each GPS fix. prev is the previous accepted observation (nil at
// the first fix of a vehicle); ep is this rule's episode for the vehicle, in which the rule may
// keep a memo of its own (episode.go: memo; dwell's dwellStop, trip_unclosed's tripLog).
type FixRule interface {
	Name() Rule
	Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict
	Describe(a *Alert) string
}

// TimeRule is implemented by a FixRule whose episodes may also open as event time passes without
// fixes (a silent terminal, a decision that waited for the other topics to catch up). Due is
// called with the watermark; an Active verdict's Since is when the episode started, and decided
// says whether it changed the rule's memo (took a decision that waited for the watermark).
type TimeRule interface {
	Due(c *city.City, tr *Track, ep *Episode, watermark time.Time) (v Verdict, decided bool)
	// NextDue is the earliest watermark at which Due may decide something for this track (zero:
	// none until its next observation), so that Tick visits only the tracks that are due.
	NextDue(tr *Track, ep *Episode) time.Time
}

// EventObserver is implemented by a FixRule whose state also learns from events (a disposal site's
// gate camera seeing a truck enter closes its trip even when its terminal was silent there).
type EventObserver interface {
	ObserveEvent(c *city.City, ev *record.Event, ep *Episode)
}

// EventRule judges a vehicle at each camera or sensor event.
type EventRule interface {
	Name() Rule
	JudgeEvent(c *city.City, tr *Track, ev *record.Event) Verdict
	Describe(a *Alert) string
}

// Timing is how an episode turns verdicts into an alert.
type Timing struct {
	// For is how long the condition must hold before the alert fires (0: at once).
	For time.Duration `yaml:"for"`
	// MinFixes is how many consecutive observations must show the condition before it fires.
	MinFixes int `yaml:"min_fixes"`
	// EscalateAfter escalates a firing alert to severe after this long (0: never).
	EscalateAfter time.Duration `yaml:"escalate_after"`
	// Window keeps an event rule's episode open this long after its last evidence; repeats within it
	// update the alert instead of opening another.
	Window time.Duration `yaml:"window"`
	// ClearFor keeps a firing alert open until the condition has not been seen for this long (event
	// time since its last observation), so a truck that touches its route mid-detour, or dips
	// under a limit for a fix, stays one episode; the alert's end is the first clear observation
	// (0: resolve at once).
	ClearFor time.Duration `yaml:"clear_for"`
}

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
