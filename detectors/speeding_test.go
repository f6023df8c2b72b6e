package detectors

import (
	"fmt"
	"testing"

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
	var b orb.Bound
	zones := 0
	for _, z := range c.Zones {
		if z.Kind != city.ZoneSpeed {
			continue
		}
		if zones == 0 {
			b = z.Area.Bound
		}
		b = b.Union(z.Area.Bound)
		zones++
		speeds = append(speeds, z.SpeedLimitKmh, z.SpeedLimitKmh*(1+r.cfg.Tolerance)+0.1)
	}
	if zones == 0 {
		t.Fatal("the test city has no speed zone")
	}
	pad := 2 * r.cfg.ZoneMarginM
	b = orb.Bound{Min: orb.Point{b.Min[0] - pad, b.Min[1] - pad}, Max: orb.Point{b.Max[0] + pad, b.Max[1] + pad}}
	// the verdict from the limit where the truck is, as Judge gives it past the shortcut
	full := func(xy orb.Point, kmh float64) Verdict {
		limit, place := r.limit(c, xy)
		return r.verdict(kmh, limit, place)
	}
	shortcuts, points := 0, 0
	const steps = 60
	for i := 0; i <= steps; i++ {
		for j := 0; j <= steps; j++ {
			xy := orb.Point{b.Min[0] + (b.Max[0]-b.Min[0])*float64(i)/steps, b.Min[1] + (b.Max[1]-b.Min[1])*float64(j)/steps}
			points++
			for _, kmh := range speeds {
				cur := Observation{XY: xy, SpeedKmh: kmh}
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
