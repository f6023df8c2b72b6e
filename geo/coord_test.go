package geo

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
)

func TestWGS84ToGCJ02Known(t *testing.T) {
	f := func(wgs, wantGCJ orb.Point, minOffsetM, maxOffsetM float64) {
		t.Helper()
		got := WGS84ToGCJ02(wgs)
		if math.Abs(got[0]-wantGCJ[0]) > 1e-9 || math.Abs(got[1]-wantGCJ[1]) > 1e-9 {
			t.Fatalf("WGS84ToGCJ02(%v) = %.14f, %.14f; want %v", wgs, got[0], got[1], wantGCJ)
		}
		if off := DistanceM(wgs, got); off < minOffsetM || off > maxOffsetM {
			t.Fatalf("offset of %v is %.1f m; want %.0f..%.0f m", wgs, off, minOffsetM, maxOffsetM)
		}
	}
	// Beijing, Tiananmen: the pair every GCJ-02 implementation quotes.
	f(orb.Point{116.404, 39.915}, orb.Point{116.41024449916938, 39.91640428150164}, 500, 600)
	// Shenzhen, Futian: about 0.0051° east and 0.0027° south, some 600 m.
	f(orb.Point{114.0579, 22.5431}, orb.Point{114.06301399856547, 22.54038281422246}, 500, 650)
}

func TestGCJ02RoundTripChina(t *testing.T) {
	n := 0
	for lon := 73.5; lon <= 135.0; lon += 0.75 {
		for lat := 18.0; lat <= 53.5; lat += 0.75 {
			w := orb.Point{lon, lat}
			g := WGS84ToGCJ02(w)
			if off := DistanceM(w, g); off < 1 || off > 1500 {
				t.Fatalf("offset at %v is %.1f m", w, off)
			}
			if d := DistanceM(GCJ02ToWGS84(g), w); d > 0.5 {
				t.Fatalf("WGS→GCJ→WGS at %v is off by %.3f m", w, d)
			}
			// And the other way: a point read off a GCJ-02 map.
			if d := DistanceM(WGS84ToGCJ02(GCJ02ToWGS84(w)), w); d > 0.5 {
				t.Fatalf("GCJ→WGS→GCJ at %v is off by %.3f m", w, d)
			}
			n++
		}
	}
	if n < 1000 {
		t.Fatalf("only %d grid points", n)
	}
}

func TestGCJ02OutOfChina(t *testing.T) {
	f := func(p orb.Point, out bool) {
		t.Helper()
		if got := OutOfChina(p); got != out {
			t.Fatalf("OutOfChina(%v) = %v; want %v", p, got, out)
		}
		if out {
			if g := WGS84ToGCJ02(p); g != p {
				t.Fatalf("WGS84ToGCJ02(%v) = %v; want unchanged", p, g)
			}
			if w := GCJ02ToWGS84(p); w != p {
				t.Fatalf("GCJ02ToWGS84(%v) = %v; want unchanged", p, w)
			}
		}
	}
	f(orb.Point{114.0579, 22.5431}, false) // Shenzhen
	f(orb.Point{87.6, 43.8}, false)        // Ürümqi
	f(orb.Point{2.35, 48.85}, true)        // Paris
	f(orb.Point{-122.42, 37.77}, true)     // San Francisco
	f(orb.Point{139.69, 35.69}, true)      // Tokyo, east of the box
	f(orb.Point{151.21, -33.87}, true)     // Sydney
	f(orb.Point{114.0, 0.5}, true)         // south of the box
	f(orb.Point{100.0, 56.0}, true)        // north of the box
}

func TestDistanceM(t *testing.T) {
	f := func(a, b orb.Point, want, tol float64) {
		t.Helper()
		got := DistanceM(a, b)
		if math.Abs(got-want) > tol {
			t.Fatalf("DistanceM(%v, %v) = %.3f; want %.3f ± %g", a, b, got, want, tol)
		}
		if back := DistanceM(b, a); back != got {
			t.Fatalf("DistanceM is not symmetric: %v vs %v", got, back)
		}
	}
	degM := EarthRadiusM * math.Pi / 180
	f(orb.Point{114, 22.5}, orb.Point{114, 22.5}, 0, 0)
	f(orb.Point{0, 0}, orb.Point{1, 0}, degM, 1e-6)
	f(orb.Point{114, 22}, orb.Point{114, 23}, degM, 1e-6)
	f(orb.Point{0, 0}, orb.Point{180, 0}, math.Pi*EarthRadiusM, 1e-6)
	f(orb.Point{0, 90}, orb.Point{0, -90}, math.Pi*EarthRadiusM, 1e-6)
	// Along a parallel at 60°N a degree of longitude is half as long (the arc is a bit shorter).
	f(orb.Point{10, 60}, orb.Point{10.001, 60}, degM*0.001/2, 1e-3)
}
