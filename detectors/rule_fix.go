package detectors

import (
	"fmt"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
)

// RouteDeviationConfig configures route_deviation.
type RouteDeviationConfig struct {
	Disabled bool `yaml:"disabled"`
	// LeaveMarginM is the hysteresis outwards: a truck is off route beyond the corridor's
	// half-width plus this margin (GPS error), ...
	LeaveMarginM float64 `yaml:"leave_margin_m"`
	// ReturnFactor ... and back on route only within ReturnFactor × the half-width.
	ReturnFactor float64 `yaml:"return_factor"`
	Timing       `yaml:",inline"`
}

func (c RouteDeviationConfig) withDefaults() RouteDeviationConfig {
	if c.LeaveMarginM == 0 {
		c.LeaveMarginM = 15
	}
	if c.ReturnFactor == 0 {
		c.ReturnFactor = 0.6
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 2, EscalateAfter: 10 * time.Minute, ClearFor: 90 * time.Second})
	return c
}

func (c RouteDeviationConfig) validate() error {
	if c.ReturnFactor <= 0 || c.ReturnFactor > 1 || c.LeaveMarginM < 0 {
		return fmt.Errorf("return_factor must be within (0, 1] and leave_margin_m not negative, got %g and %g", c.ReturnFactor, c.LeaveMarginM)
	}
	return validateTiming(c.Timing)
}

// RouteDeviation flags a truck on a permit that leaves its approved route's corridor. Inside a
// site (loading, unloading) a truck is never off route.
type RouteDeviation struct{ cfg RouteDeviationConfig }

// Name implements FixRule.
func (r *RouteDeviation) Name() Rule { return RuleRouteDeviation }

// Judge implements FixRule.
func (r *RouteDeviation) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	if cur.Permit == nil || len(cur.Sites) > 0 {
		return Verdict{Clear: true}
	}
	route := cur.route(c)
	if route == nil {
		return Verdict{Clear: true}
	}
	half := route.Corridor.HalfWidthM
	// Back on route, or staying on it, is decided by any segment within the return distance: the
	// segment of the truck's last fix and its neighbours first, the whole line only when they are
	// farther (the same verdict as the nearest segment's: ReturnFactor ≤ 1 keeps that distance
	// below the leaving one).
	hint := int32(0)
	if prev != nil {
		hint = prev.routeSeg
	}
	if seg, ok := route.Corridor.WithinNear(cur.XY, half*r.cfg.ReturnFactor, int(hint)); ok {
		cur.routeSeg = int32(seg)
		return Verdict{Clear: true}
	}
	d, seg := route.Corridor.Nearest(cur.XY)
	cur.routeSeg = int32(max(seg, 0))
	switch {
	case d > half+r.cfg.LeaveMarginM:
		// The test above is in the city's projection, exact on its map; the value reported (and
		// the severity read from it) is the distance on the ground, right however far the truck
		// has driven from the map (the projection is ~2 % off 300 km north of it).
		d = route.Corridor.GroundDistance(c.Proj, cur.LL)
		sev := SeverityWarning
		if d > 5*half {
			sev = SeveritySevere
		}
		return Verdict{Active: true, Severity: sev, Value: d, Limit: half, Place: route.ID}
	case d <= half*r.cfg.ReturnFactor:
		return Verdict{Clear: true}
	}
	return Verdict{} // in the hysteresis band: the episode stays as it is
}

// Describe implements FixRule.
func (r *RouteDeviation) Describe(a *Alert) string {
	return fmt.Sprintf("left approved route %s: up to %.0f m from its centreline (corridor %.0f m) for %s", a.Place, a.Value, a.Limit, episodeSpan(a))
}

// SpeedingConfig configures speeding.
type SpeedingConfig struct {
	Disabled bool `yaml:"disabled"`
	// Tolerance: a truck is speeding above limit × (1 + Tolerance); the episode ends once it is at
	// or below the limit again.
	Tolerance float64 `yaml:"tolerance"`
	// SevereFactor: above limit × SevereFactor the alert is severe.
	SevereFactor float64 `yaml:"severe_factor"`
	// ZoneMarginM: a speed zone's limit applies this far inside its border, so GPS error on a road
	// along the border does not put a truck under the wrong limit.
	ZoneMarginM float64 `yaml:"zone_margin_m"`
	Timing      `yaml:",inline"`
}

func (c SpeedingConfig) withDefaults() SpeedingConfig {
	if c.ZoneMarginM == 0 {
		c.ZoneMarginM = 25
	}
	if c.Tolerance == 0 {
		c.Tolerance = 0.10
	}
	if c.SevereFactor == 0 {
		c.SevereFactor = 1.5
	}
	// held for 10 s and two fixes: never one pair of fixes, never one second of noise
	c.Timing = defaultTiming(c.Timing, Timing{For: 10 * time.Second, MinFixes: 2, ClearFor: time.Minute})
	return c
}

func (c SpeedingConfig) validate() error {
	if c.Tolerance < 0 || c.Tolerance > 1 {
		return fmt.Errorf("tolerance must be within [0, 1], got %g", c.Tolerance)
	}
	if c.SevereFactor <= 1+c.Tolerance {
		return fmt.Errorf("severe_factor must exceed 1 + tolerance, got %g", c.SevereFactor)
	}
	return validateTiming(c.Timing)
}

// Speeding flags sustained speed above the lowest limit of the speed zones a truck is in (an
// expressway zone may allow more than the default), or the city's muck-truck default outside them.
type Speeding struct{ cfg SpeedingConfig }

// Name implements FixRule.
func (r *Speeding) Name() Rule { return RuleSpeeding }

// Judge implements FixRule.
func (r *Speeding) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	if cur.SpeedKmh <= c.LowestSpeedLimitKmh() {
		// within every limit of the city, so within the one where it is (limit's lookups and
		// exact tests are most of this rule's cost, and most fixes are slower than that)
		return Verdict{Clear: true}
	}
	if !cur.SpeedKnown() {
		return Verdict{} // no speed reported, none derived yet (a window after a jump or a restart)
	}
	limit, place := r.limit(c, cur.XY)
	sparse := cur.Derived && prev != nil && cur.Time.Sub(prev.Time) >= sparseFixes
	if cur.Derived && !sparse && cur.SpeedKmh > limit && cur.SpeedFrom != (orb.Point{}) {
		// A derived speed is the average since the start of its window (20–30 s back at 5 s):
		// judged against the highest limit along it, so that a truck slowing down as it leaves a
		// faster zone is not read as speeding in the slower one for the window's length. (From
		// sparse fixes the window reaches a minute back, too long to hold a truck to the limit
		// it left; those are confirmed by a third fix instead, below.) A speed within the limit
		// here is within a higher one too: the second zone lookup is only for a faster fix.
		if l, p := r.limit(c, c.Proj.Forward(cur.SpeedFrom)); l > limit {
			limit, place = l, p
		}
	}
	if sparse && ep.state == StatePending {
		// Confirming a pending episode from sparse fixes (below): the truck, speeding, may read
		// slower for a turn taken between two fixes, a chord cutting its corner; so may the
		// fix after two ahead of it by one offset, the displacement over the whole window too.
		// The episode goes on while the fix or the whole window is above the limit, at the
		// speed it had.
		if kmh := max(cur.SpeedKmh, cur.SpanKmh); kmh > limit*(1-2*r.cfg.Tolerance) {
			kmh = max(kmh, prev.SpeedKmh)
			if v := r.verdict(kmh, limit, place); v.Active {
				v.Basis, v.MoreFixes = cur.speedBasis(), 1
				return v
			}
		}
	}
	v := r.verdict(cur.SpeedKmh, limit, place)
	if v.Active {
		v.Basis = cur.speedBasis()
		if sparse {
			// From sparse fixes, two in a row can be ahead of the truck by one offset (a GPS
			// error that persists, a re-acquisition without a gap): both read fast, the next
			// reads slow, and slower than the limit over the whole window. A third fix is
			// needed, judged as above.
			v.MoreFixes = 1
		}
	}
	return v
}

// sparseFixes: fixes this far apart or more are sparse for a derived speed (its window is 20 s).
const sparseFixes = 10 * time.Second

// verdict judges a speed against the limit where the truck is (place: the speed zone's id).
func (r *Speeding) verdict(kmh, limit float64, place string) Verdict {
	switch {
	case kmh > limit*(1+r.cfg.Tolerance):
		sev := SeverityWarning
		if kmh > limit*r.cfg.SevereFactor {
			sev = SeveritySevere
		}
		return Verdict{Active: true, Severity: sev, Value: kmh, Limit: limit, Place: place}
	case kmh <= limit:
		return Verdict{Clear: true}
	}
	return Verdict{}
}

// limit is the speed limit where the truck may be, given GPS error: at its true position the limit
// is the lowest of the speed zones containing it, or the city default outside them. Zones whose
// border is within the margin may or may not contain it; the truck gets the benefit of the doubt,
// the highest limit of the positions it may be at.
func (r *Speeding) limit(c *city.City, xy orb.Point) (float64, string) {
	var buf [16]int32
	near := c.ZonesNear(xy, r.cfg.ZoneMarginM, buf[:0])
	certain, certainID := -1.0, "" // lowest limit of the zones it is surely in
	for _, i := range near {
		z := c.ZoneAt(i)
		if z.Kind == city.ZoneSpeed && z.Area.Contains(xy) && z.Area.DistanceToEdge(xy) >= r.cfg.ZoneMarginM && (certain < 0 || z.SpeedLimitKmh < certain) {
			certain, certainID = z.SpeedLimitKmh, z.ID
		}
	}
	best, bestID := certain, certainID
	if certain < 0 { // it may be outside every zone
		best, bestID = c.DefaultSpeedLimitKmh, ""
	}
	for _, i := range near { // or inside one of the uncertain ones
		z := c.ZoneAt(i)
		if z.Kind != city.ZoneSpeed {
			continue
		}
		l := z.SpeedLimitKmh
		if certain >= 0 && certain < l {
			l = certain
		}
		if l > best {
			best, bestID = l, z.ID
		}
	}
	return best, bestID
}

// Describe implements FixRule.
func (r *Speeding) Describe(a *Alert) string {
	where := "on a road with the city's muck-truck limit"
	if a.Place != "" {
		where = "in speed zone " + a.Place
	}
	return fmt.Sprintf("speeding: up to %.0f km/h %s of %.0f km/h for %s (%s)", a.Value, where, a.Limit, episodeSpan(a), speedSource(a))
}

// speedSource says how a speeding alert's speed was measured: the basis of its last verdict, or,
// for an alert restored from a checkpoint and not judged since, what its evidence said.
func speedSource(a *Alert) string {
	basis := a.basis
	if basis == "" && strings.Contains(a.Evidence, srcDerived) {
		basis = "derived"
	}
	if basis == "derived" {
		return srcDerived
	}
	return srcReported
}

const (
	srcReported = "speed reported by the terminal"
	srcDerived  = "speed derived from positions over 20 s or more"
)

// episodeSpan is how long an alert's episode has lasted: to its end once resolved, else to its
// last change.
func episodeSpan(a *Alert) time.Duration {
	end := a.Updated
	if !a.End.IsZero() {
		end = a.End
	}
	return end.Sub(a.Start).Round(time.Second)
}

// RestrictedZoneConfig configures restricted_zone.
type RestrictedZoneConfig struct {
	Disabled bool `yaml:"disabled"`
	// MarginM: a fix counts as inside only this far within the zone's border, so GPS error on a
	// road along the border is no violation.
	MarginM float64 `yaml:"margin_m"`
	// MaxGap: two consecutive fixes at most this far apart whose straight path runs through the
	// zone (deeper than the margin) count as a crossing even when neither fix is inside.
	MaxGap time.Duration `yaml:"max_gap"`
	Timing `yaml:",inline"`
}

func (c RestrictedZoneConfig) withDefaults() RestrictedZoneConfig {
	if c.MarginM == 0 {
		c.MarginM = 25
	}
	if c.MaxGap == 0 {
		c.MaxGap = 2 * time.Minute
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 1, EscalateAfter: 5 * time.Minute, ClearFor: 30 * time.Second})
	return c
}

func (c RestrictedZoneConfig) validate() error {
	if c.MarginM < 0 || c.MaxGap < 0 {
		return fmt.Errorf("margin_m and max_gap must not be negative, got %g and %s", c.MarginM, c.MaxGap)
	}
	return validateTiming(c.Timing)
}

// RestrictedZone flags a truck inside a restricted zone during the zone's closed hours.
type RestrictedZone struct{ cfg RestrictedZoneConfig }

// Name implements FixRule.
func (r *RestrictedZone) Name() Rule { return RuleRestrictedZone }

// Judge implements FixRule.
func (r *RestrictedZone) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	if len(cur.Sites) > 0 {
		return Verdict{Clear: true} // inside an authorised site, off the road
	}
	// Outside every zone's closed hours, at this fix and at the one before, nothing below can
	// find a closed zone: most of the day, in most cities.
	if !c.AnyZoneClosedAt(cur.Time) && (prev == nil || !c.AnyZoneClosedAt(prev.Time)) {
		return Verdict{Clear: true}
	}
	return r.judge(c, prev, cur)
}

// judge is Judge past its shortcuts: the zone tests themselves.
func (r *RestrictedZone) judge(c *city.City, prev, cur *Observation) Verdict {
	shallow := false // inside a closed zone, but within the margin of its border
	for _, i := range cur.Zones {
		z := c.ZoneAt(i)
		if z.Kind != city.ZoneRestricted || !z.ClosedAt(cur.Time, c.Location) {
			continue
		}
		if z.Area.DistanceToEdge(cur.XY) >= r.cfg.MarginM {
			return Verdict{Active: true, Severity: SeverityWarning, Place: z.ID, Value: cur.SpeedKmh}
		}
		shallow = true
	}
	if prev != nil && cur.Time.Sub(prev.Time) <= r.cfg.MaxGap {
		var buf [8]int32
		for _, i := range c.ZonesCrossed(prev.XY, cur.XY, buf[:0]) {
			z := c.ZoneAt(i)
			closed := z.ClosedAt(cur.Time, c.Location) || z.ClosedAt(prev.Time, c.Location)
			if z.Kind == city.ZoneRestricted && closed && r.crossesDeep(z, prev.XY, cur.XY) {
				return Verdict{Active: true, Severity: SeverityWarning, Place: z.ID, Value: cur.SpeedKmh}
			}
		}
		if z := r.alongRoute(c, prev, cur); z != nil {
			return Verdict{Active: true, Severity: SeverityWarning, Place: z.ID, Value: cur.SpeedKmh}
		}
	}
	if shallow {
		return Verdict{} // hysteresis: an episode goes on until the truck is out of the zone
	}
	return Verdict{Clear: true}
}

// crossesDeep reports whether the straight path a-b runs deeper than the margin into zone z,
// sampling it every 10 m (only paths that the index says touch the zone get here).
func (r *RestrictedZone) crossesDeep(z *city.Zone, a, b orb.Point) bool {
	n := int(planarDist(a, b)/10) + 1
	for k := 1; k < n; k++ {
		t := float64(k) / float64(n)
		p := orb.Point{a[0] + (b[0]-a[0])*t, a[1] + (b[1]-a[1])*t}
		if z.Area.Contains(p) && z.Area.DistanceToEdge(p) >= r.cfg.MarginM {
			return true
		}
	}
	return false
}

// alongRoute catches a zone cut between two sparse fixes of a truck following its approved route:
// the road bends, so the truck's path is the route between the two fixes, not the straight chord.
// It runs only when both fixes are on the route and a closed restricted zone is near.
func (r *RestrictedZone) alongRoute(c *city.City, prev, cur *Observation) *city.Zone {
	if cur.Permit == nil {
		return nil
	}
	route := cur.route(c)
	if route == nil {
		return nil
	}
	mid := orb.Point{(prev.XY[0] + cur.XY[0]) / 2, (prev.XY[1] + cur.XY[1]) / 2}
	var buf [64]int32 // candidates from the index, before the tests: a dense city has dozens
	closed := c.ZonesNearWhere(mid, planarDist(prev.XY, cur.XY)/2+300, buf[:0], func(i int32) bool {
		z := c.ZoneAt(i)
		return z.Kind == city.ZoneRestricted && (z.ClosedAt(cur.Time, c.Location) || z.ClosedAt(prev.Time, c.Location))
	})
	if len(closed) == 0 {
		return nil
	}
	d1, a1 := route.Corridor.Locate(prev.XY)
	d2, a2 := route.Corridor.Locate(cur.XY)
	if d1 > route.Corridor.HalfWidthM || d2 > route.Corridor.HalfWidthM {
		return nil
	}
	if a1 > a2 {
		a1, a2 = a2, a1
	}
	for a := a1; a <= a2; a += 10 {
		p := route.Corridor.PointAt(a)
		for _, i := range closed {
			if z := c.ZoneAt(i); z.Area.Contains(p) && z.Area.DistanceToEdge(p) >= r.cfg.MarginM {
				return z
			}
		}
	}
	return nil
}

// Describe implements FixRule.
func (r *RestrictedZone) Describe(a *Alert) string {
	return fmt.Sprintf("inside restricted zone %s during its closed hours", a.Place)
}

// UnlicensedConfig configures unlicensed.
type UnlicensedConfig struct {
	Disabled bool `yaml:"disabled"`
	// MovingSpeedKmh: a truck above this speed is moving.
	MovingSpeedKmh float64 `yaml:"moving_speed_kmh"`
	Timing         `yaml:",inline"`
}

func (c UnlicensedConfig) withDefaults() UnlicensedConfig {
	if c.MovingSpeedKmh == 0 {
		c.MovingSpeedKmh = 10
	}
	c.Timing = defaultTiming(c.Timing, Timing{MinFixes: 2, EscalateAfter: 15 * time.Minute})
	return c
}

func (c UnlicensedConfig) validate() error {
	if c.MovingSpeedKmh <= 0 {
		return fmt.Errorf("moving_speed_kmh must be positive, got %g", c.MovingSpeedKmh)
	}
	return validateTiming(c.Timing)
}

// Unlicensed flags a truck moving with no permit valid now; an unregistered plate on the move is
// severe.
type Unlicensed struct{ cfg UnlicensedConfig }

// Name implements FixRule.
func (r *Unlicensed) Name() Rule { return RuleUnlicensed }

// Judge implements FixRule.
func (r *Unlicensed) Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict {
	if cur.Permit != nil {
		return Verdict{Clear: true}
	}
	if (cur.Still && !cur.Reported) || !cur.SpeedKnown() || cur.SpeedKmh <= r.cfg.MovingSpeedKmh {
		return Verdict{} // a stopped truck (or one whose speed is unknown) neither starts nor ends an episode
	}
	sev, place := SeverityWarning, "no_valid_permit"
	if cur.Vehicle == nil {
		sev, place = SeveritySevere, "unregistered"
	}
	return Verdict{Active: true, Severity: sev, Value: cur.SpeedKmh, Place: place}
}

// Describe implements FixRule.
func (r *Unlicensed) Describe(a *Alert) string {
	if a.Place == "unregistered" {
		return "unregistered truck moving (no vehicle record, no permit)"
	}
	return "moving with no muck-transport permit (准运证) valid now"
}
