package detectors

import (
	"math"
	"testing"
	"unsafe"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/geo"
)

// groundDist is the distance on the ground anywhere on Earth, not only near the city's origin:
// within 0.05 % of the great circle (geo.DistanceM) for the distances the kinematics compare.
func TestGroundDist(t *testing.T) {
	f := func(name string, a orb.Point, east, north float64) {
		t.Helper()
		// b is east and north metres from a, by the great circle's local scale
		const m = 180 / (math.Pi * geo.EarthRadiusM)
		b := orb.Point{a[0] + east*m/math.Cos(a[1]*math.Pi/180), a[1] + north*m}
		want := geo.DistanceM(a, b)
		if got := groundDist(a, b); math.Abs(got-want) > 5e-4*want+0.01 {
			t.Errorf("%s: groundDist %.3f m, great circle %.3f m", name, got, want)
		}
	}
	f("Shenzhen, 14 m of noise", orb.Point{114.06, 22.54}, 10, 10)
	f("Shenzhen, a 200 m snap", orb.Point{114.06, 22.54}, -120, 160)
	f("Harbin, 1,900 km north of the city's origin", orb.Point{126.63, 45.75}, 300, -400)
	f("Tromsø", orb.Point{18.96, 69.65}, 2000, 500)
	f("south of the equator", orb.Point{-46.63, -23.55}, 700, 700)
	f("across the antimeridian", orb.Point{179.9995, -16.5}, 200, 0)
	f("30 km", orb.Point{114.06, 22.54}, 30000, 0)
}

// cosLat's table agrees with math.Cos at every latitude.
func TestCosLat(t *testing.T) {
	for lat := -90.0; lat <= 90; lat += 0.0137 {
		if got, want := cosLat(lat), math.Cos(lat*math.Pi/180); math.Abs(got-want) > 1e-8 {
			t.Fatalf("cosLat(%g) = %.12f, math.Cos %.12f", lat, got, want)
		}
	}
}

// TestTrackSize: a Track fits the allocator's 896-byte size class, as every tracked vehicle has
// one (100,000 of them: a field that takes it to the next class, 1,024 bytes, costs 12.8 MB, and
// the class after that 25.6 MB, of live heap).
func TestTrackSize(t *testing.T) {
	if size := unsafe.Sizeof(Track{}); size > 896 {
		t.Errorf("a Track is %d bytes, more than the 896-byte size class", size)
	}
}
