package detectors

import (
	"fmt"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
)

// TestSpeedingBelowLowestLimit: a truck at or below the city's lowest limit is judged without the
// zone lookups, and that gives the verdict the lookups would have, everywhere in the city (on a
// grid over every speed zone and its margin) and at speeds around each limit.
func TestSpeedingBelowLowestLimit(t *testing.T) {
	c := loadTestCity(t)
	r := &Speeding{cfg: SpeedingConfig{}.withDefaults()}
	lowest := c.LowestSpeedLimitKmh()
	if lowest <= 0 || lowest > c.DefaultSpeedLimitKmh {
		t.Fatalf("LowestSpeedLimitKmh = %v (default %v)", lowest, c.DefaultSpeedLimitKmh)
	}
	speeds := []float64{0, lowest / 2, lowest, lowest + 0.1, lowest*(1+r.cfg.Tolerance) + 0.1, c.DefaultSpeedLimitKmh}
	for _, z := range c.Zones {
		if z.Kind == city.ZoneSpeed {
			speeds = append(speeds, z.SpeedLimitKmh, z.SpeedLimitKmh*(1+r.cfg.Tolerance)+0.1)
		}
	}
	b, zones := zonesBound(c, city.ZoneSpeed)
	if zones == 0 {
		t.Fatal("the test city has no speed zone")
	}
	pad := 2 * r.cfg.ZoneMarginM
	b = orb.Bound{Min: orb.Point{b.Min[0] - pad, b.Min[1] - pad}, Max: orb.Point{b.Max[0] + pad, b.Max[1] + pad}}
	// the verdict from the limit where the truck is, as Judge gives it past the shortcut
	full := func(xy orb.Point, kmh float64) Verdict {
		limit, place := r.limit(c, xy)
		v := r.verdict(kmh, limit, place)
		if v.Active {
			v.Basis = "reported"
		}
		return v
	}
	shortcuts, points := 0, 0
	const steps = 60
	for i := 0; i <= steps; i++ {
		for j := 0; j <= steps; j++ {
			xy := orb.Point{b.Min[0] + (b.Max[0]-b.Min[0])*float64(i)/steps, b.Min[1] + (b.Max[1]-b.Min[1])*float64(j)/steps}
			points++
			for _, kmh := range speeds {
				cur := Observation{XY: xy, SpeedKmh: kmh, Reported: true}
				got, want := r.Judge(c, nil, &cur, &Episode{}), full(xy, kmh)
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("at %v, %.1f km/h: Judge = %+v, the limit there gives %+v", xy, kmh, got, want)
				}
				if kmh <= lowest {
					shortcuts++
				}
			}
		}
	}
	t.Logf("%d points × %d speeds, %d judged by the shortcut", points, len(speeds), shortcuts)
}

// TestRestrictedZoneOutsideClosedHours: outside every zone's closed hours RestrictedZone judges
// without the zone tests, and that gives the verdict the tests would have, on a grid over the
// test city's restricted zones and their margin and at times all through a week.
func TestRestrictedZoneOutsideClosedHours(t *testing.T) {
	c := loadTestCity(t)
	r := &RestrictedZone{cfg: RestrictedZoneConfig{}.withDefaults()}
	b, zones := zonesBound(c, city.ZoneRestricted)
	if zones == 0 {
		t.Fatal("the test city has no restricted zone")
	}
	pad := 4 * r.cfg.MarginM
	obs := func(xy orb.Point, at time.Time) *Observation {
		o := &Observation{Time: at, XY: xy, LL: c.Proj.Inverse(xy), SpeedKmh: 30, Vehicle: c.Vehicle("粤B00001")}
		o.Permit = c.ActivePermit("粤B00001", at)
		o.Sites, o.Zones = c.SitesAt(xy, nil), c.ZonesAt(xy, nil)
		return o
	}
	start := time.Date(2026, 11, 29, 0, 0, 0, 0, c.Location) // a Sunday
	shortcut, active := 0, 0
	for m := 0; m < 7*24*60; m += 13 {
		at := start.Add(time.Duration(m) * time.Minute)
		for x := b.Min[0] - pad; x <= b.Max[0]+pad; x += (b.Max[0] - b.Min[0] + 2*pad) / 12 {
			for y := b.Min[1] - pad; y <= b.Max[1]+pad; y += (b.Max[1] - b.Min[1] + 2*pad) / 12 {
				cur := obs(orb.Point{x, y}, at)
				prev := obs(orb.Point{x - 150, y}, at.Add(-20*time.Second))
				for _, p := range []*Observation{nil, prev} {
					got, want := r.Judge(c, p, cur, &Episode{}), r.judge(c, p, cur)
					if got != want {
						t.Fatalf("%s at (%.0f, %.0f), prev %v: Judge = %+v, the zone tests give %+v", at.Format("Mon 15:04"), x, y, p != nil, got, want)
					}
					if !c.AnyZoneClosedAt(at) {
						shortcut++
					}
					if want.Active {
						active++
					}
				}
			}
		}
	}
	if shortcut == 0 || active == 0 {
		t.Errorf("%d verdicts by the shortcut, %d active: the test needs both", shortcut, active)
	}
}

// zonesBound returns the bound of the city's zones of a kind, and how many there are.
func zonesBound(c *city.City, kind city.ZoneKind) (orb.Bound, int) {
	var b orb.Bound
	n := 0
	for _, z := range c.Zones {
		if z.Kind != kind {
			continue
		}
		if n == 0 {
			b = z.Area.Bound
		}
		b = b.Union(z.Area.Bound)
		n++
	}
	return b, n
}

// TestRouteDeviationHintedVerdict: route deviation looks first at the segment of the truck's last
// fix (Observation.routeSeg) and searches the route only when that is not near enough; the
// verdict is the one the nearest segment's distance gives, whatever the hint, on a grid across
// every permitted route of the test city out to beyond its leave distance.
func TestRouteDeviationHintedVerdict(t *testing.T) {
	c := loadTestCity(t)
	r := &RouteDeviation{cfg: RouteDeviationConfig{}.withDefaults()}
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	checked, hinted := 0, 0
	seen := map[string]bool{} // one vehicle per route: the grid covers its route
	for _, v := range c.Vehicles {
		p := c.ActivePermit(v.Plate, at)
		if p == nil {
			continue
		}
		route := c.Route(p.RouteID)
		if route == nil || seen[route.ID] {
			continue
		}
		seen[route.ID] = true
		cor, half := route.Corridor, route.Corridor.HalfWidthM
		// the verdict as the nearest segment gives it
		want := func(xy orb.Point) Verdict {
			d := cor.Distance(xy)
			switch {
			case d > half+r.cfg.LeaveMarginM:
				return Verdict{Active: true}
			case d <= half*r.cfg.ReturnFactor:
				return Verdict{Clear: true}
			}
			return Verdict{}
		}
		pad := 6 * half
		b := route.Corridor.Line.Bound()
		hints := []int32{0, 1, int32(len(cor.Line) / 2), int32(len(cor.Line) - 2), int32(len(cor.Line) + 5)}
		for x := b.Min[0] - pad; x <= b.Max[0]+pad; x += half / 3 {
			for y := b.Min[1] - pad; y <= b.Max[1]+pad; y += half / 3 {
				xy := orb.Point{x, y}
				w := want(xy)
				_, nearest := cor.Nearest(xy)
				for _, h := range append(hints, int32(nearest), int32(nearest)+1, int32(nearest)-1) {
					prev := Observation{routeSeg: h}
					cur := Observation{Time: at, XY: xy, LL: c.Proj.Inverse(xy), Permit: p, Vehicle: v}
					got := r.Judge(c, &prev, &cur, nil)
					if got.Active != w.Active || got.Clear != w.Clear {
						t.Fatalf("%s on %s at %v with hint %d: verdict active %v clear %v, want active %v clear %v",
							v.Plate, route.ID, xy, h, got.Active, got.Clear, w.Active, w.Clear)
					}
					if _, ok := cor.WithinNear(xy, half*r.cfg.ReturnFactor, int(h)); ok {
						hinted++
					}
					checked++
				}
			}
		}
	}
	if checked == 0 || hinted == 0 {
		t.Fatalf("checked %d verdicts, %d of them from the hint: the test city has no permitted route at %v?", checked, hinted, at)
	}
}
