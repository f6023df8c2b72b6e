package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
)

// benchCity scatters n areas of 200–500 m across (irregular polygons of 8–24 vertices) over a
// 60×40 km city centred on the origin, and returns query points: half anywhere in the city,
// half close to an area (as trucks at sites are).
func benchCity(n int) ([]Area, []orb.Point) { return benchCityScaled(n, 1) }

// benchCityScaled is benchCity over a city scale times as wide and as high.
func benchCityScaled(n int, scale float64) ([]Area, []orb.Point) {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	areas := make([]Area, n)
	w, h := 60000*scale, 40000*scale
	for i := range areas {
		c := orb.Point{rng.Float64()*w - w/2, rng.Float64()*h - h/2}
		areas[i] = starArea(rng, fmt.Sprintf("a%d", i), c, 100+rng.Float64()*150, 8+rng.IntN(17))
	}
	pts := make([]orb.Point, 4096)
	for i := range pts {
		if i%2 == 0 {
			pts[i] = orb.Point{rng.Float64()*w - w/2, rng.Float64()*h - h/2}
		} else {
			b := areas[rng.IntN(n)].Bound
			pts[i] = orb.Point{
				b.Min[0] - 50 + rng.Float64()*(b.Max[0]-b.Min[0]+100),
				b.Min[1] - 50 + rng.Float64()*(b.Max[1]-b.Min[1]+100),
			}
		}
	}
	return areas, pts
}

func BenchmarkAreaIndexContaining(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("areas=%d", n), func(b *testing.B) {
			areas, pts := benchCity(n)
			x := NewAreaIndex(areas)
			dst := make([]int32, 0, 64)
			hits := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				dst = x.Containing(pts[i%len(pts)], dst[:0])
				hits += len(dst)
			}
			_ = hits
		})
	}
}

// BenchmarkAreaIndexGrowingCity is the lookup cost as a city (or a nation of cities) grows from
// 100 to 10,000 zones and sites at the same density (1,000 over 60×40 km): one grid cell and the
// exact tests of its few candidates, the same at every size but for the cache misses of a larger
// grid (the R-tree's descent it replaced grew with log n: 100 → 394 ns).
func BenchmarkAreaIndexGrowingCity(b *testing.B) {
	for _, n := range []int{100, 300, 1000, 3000, 10000} {
		b.Run(fmt.Sprintf("areas=%d", n), func(b *testing.B) {
			areas, pts := benchCityScaled(n, math.Sqrt(float64(n)/1000))
			x := NewAreaIndex(areas)
			dst := make([]int32, 0, 64)
			hits := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				dst = x.Containing(pts[i%len(pts)], dst[:0])
				hits += len(dst)
			}
			b.ReportMetric(float64(hits)/float64(b.N), "hits/op")
		})
	}
}

func BenchmarkAreaIndexCrossing(b *testing.B) {
	areas, pts := benchCity(1000)
	x := NewAreaIndex(areas)
	dst := make([]int32, 0, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := pts[i%len(pts)]
		dst = x.Crossing(p, orb.Point{p[0] + 300, p[1] + 200}, dst[:0]) // ~30 s at 40 km/h
	}
}

func BenchmarkCorridorDistance(b *testing.B) {
	for _, n := range []int{200, 2000} {
		b.Run(fmt.Sprintf("vertices=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(uint64(n), 9))
			c := NewCorridor("route", randomRoute(rng, n), 30)
			// Mostly trucks on or near the route, some off it.
			pts := make([]orb.Point, 4096)
			for i := range pts {
				q := c.PointAt(rng.Float64() * c.Length())
				s := 20.0
				if i%8 == 0 {
					s = 2000
				}
				pts[i] = orb.Point{q[0] + rng.NormFloat64()*s, q[1] + rng.NormFloat64()*s}
			}
			sum := 0.0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				sum += c.Distance(pts[i%len(pts)])
			}
			_ = sum
		})
	}
}

// BenchmarkCorridorWithinNear: a truck driving along its route, each fix first tried against
// the segment of the one before (as route deviation does), the line searched only when that
// fails.
func BenchmarkCorridorWithinNear(b *testing.B) {
	for _, n := range []int{200, 2000} {
		b.Run(fmt.Sprintf("vertices=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(uint64(n), 9))
			c := NewCorridor("route", randomRoute(rng, n), 30)
			pts := make([]orb.Point, 4096)
			for i := range pts {
				q := c.PointAt(float64(i) / float64(len(pts)) * c.Length())
				pts[i] = orb.Point{q[0] + rng.NormFloat64()*8, q[1] + rng.NormFloat64()*8}
			}
			hint := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				p := pts[i%len(pts)]
				if s, ok := c.WithinNear(p, 18, hint); ok {
					hint = s
					continue
				}
				_, hint = c.Nearest(p)
			}
		})
	}
}

func BenchmarkGCJ02ToWGS84(b *testing.B) {
	p := orb.Point{114.06301399856547, 22.54038281422246}
	var sink orb.Point
	b.ReportAllocs()
	for i := range b.N {
		q := p
		q[0] += float64(i%1000) * 1e-5
		sink = GCJ02ToWGS84(q)
	}
	_ = sink
}

func BenchmarkProjectionForward(b *testing.B) {
	proj := NewProjection(orb.Point{114.06, 22.6})
	p := orb.Point{114.0579, 22.5431}
	var sink orb.Point
	b.ReportAllocs()
	for i := range b.N {
		q := p
		q[1] += float64(i%1000) * 1e-5
		sink = proj.Forward(q)
	}
	if math.IsNaN(sink[0]) {
		b.Fatal("NaN")
	}
}
