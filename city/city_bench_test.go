package city_test

// The city's lookups benchmarked on the shipped sample city and on a generated one ten times its
// size (an external test: the generator is the simulator's, and sim imports city).

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/sim"
)

// sampleDir is the shipped sample city, relative to this package.
var sampleDir = filepath.Join("..", "configs", "cities", "shenzhen")

func benchCity(b *testing.B, large bool) *city.City {
	b.Helper()
	if !large {
		c, err := city.Load(sampleDir)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	dir := b.TempDir()
	o := sim.SampleCityOptions{ConstructionSites: 500, DisposalSites: 100, Routes: 10000, RestrictedZones: 600, SpeedZones: 400, Vehicles: 1000}
	if err := sim.GenerateSampleCity(dir, o); err != nil {
		b.Fatal(err)
	}
	c, err := city.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkZonesAtDistrictAt is the per-fix lookup of the detectors: the zones and the
// district at a position, half of them on routes and half anywhere in the city.
func BenchmarkZonesAtDistrictAt(b *testing.B) {
	for _, large := range []bool{false, true} {
		name := "sample"
		if large {
			name = "1000zones"
		}
		b.Run(name, func(b *testing.B) {
			c := benchCity(b, large)
			rng := rand.New(rand.NewPCG(1, 2))
			pts := make([]orb.Point, 4096)
			for i := range pts {
				if i%2 == 0 {
					r := c.Routes[rng.IntN(len(c.Routes))]
					pts[i] = r.Corridor.PointAt(rng.Float64() * r.Corridor.Length())
				} else {
					pts[i] = c.Proj.Forward(orb.Point{113.85 + 0.5*rng.Float64(), 22.50 + 0.28*rng.Float64()})
				}
			}
			buf := make([]int32, 0, 16)
			hits := 0
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				p := pts[i&4095]
				i++
				buf = c.ZonesAt(p, buf[:0])
				hits += len(buf)
				if c.DistrictAt(p) != nil {
					hits++
				}
			}
			if hits == 0 {
				b.Fatal("no hits")
			}
		})
	}
}

func BenchmarkLoadSample(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := city.Load(sampleDir); err != nil {
			b.Fatal(err)
		}
	}
}
