package geo

import (
	"math"
	"testing"

	"github.com/paulmach/orb"
)

var shenzhenOrigin = orb.Point{114.06, 22.6}

func TestProjectionRoundTrip(t *testing.T) {
	p := NewProjection(shenzhenOrigin)
	if p.Origin() != shenzhenOrigin {
		t.Fatalf("Origin() = %v", p.Origin())
	}
	if xy := p.Forward(shenzhenOrigin); xy != (orb.Point{}) {
		t.Fatalf("origin projects to %v", xy)
	}
	for lon := 113.5; lon <= 114.6; lon += 0.05 {
		for lat := 22.2; lat <= 23.0; lat += 0.05 {
			ll := orb.Point{lon, lat}
			back := p.Inverse(p.Forward(ll))
			if math.Abs(back[0]-lon) > 1e-12 || math.Abs(back[1]-lat) > 1e-12 {
				t.Fatalf("round trip of %v gives %v", ll, back)
			}
		}
	}
	xy := p.Forward(orb.Point{114.07, 22.61})
	if xy[0] <= 0 || xy[1] <= 0 {
		t.Fatalf("north-east of the origin projects to %v", xy)
	}
}

func TestProjectionDistances(t *testing.T) {
	p := NewProjection(shenzhenOrigin)
	const r = 30000.0
	// Points 30 km from the origin at 16 bearings, placed on the sphere.
	var ring []orb.Point
	for k := range 16 {
		ring = append(ring, destination(shenzhenOrigin, float64(k)*22.5, r))
	}
	check := func(a, b orb.Point) {
		t.Helper()
		want := DistanceM(a, b)
		xa, xb := p.Forward(a), p.Forward(b)
		got := math.Hypot(xa[0]-xb[0], xa[1]-xb[1])
		if rel := math.Abs(got-want) / want; rel > 0.002 {
			t.Fatalf("%v–%v: projected %.1f m, great circle %.1f m (%.3f%%)", a, b, got, want, rel*100)
		}
	}
	for i, q := range ring {
		check(shenzhenOrigin, q)
		check(q, ring[(i+1)%len(ring)]) // chords between neighbours, ~12 km, 30 km out
		check(q, ring[(i+8)%len(ring)]) // diameters, 60 km
	}
}

// destination returns the point dist metres from p at bearing deg (clockwise from north) on
// the sphere of DistanceM.
func destination(p orb.Point, deg, dist float64) orb.Point {
	lat1, lon1 := p[1]*math.Pi/180, p[0]*math.Pi/180
	brg, ang := deg*math.Pi/180, dist/EarthRadiusM
	lat2 := math.Asin(math.Sin(lat1)*math.Cos(ang) + math.Cos(lat1)*math.Sin(ang)*math.Cos(brg))
	lon2 := lon1 + math.Atan2(math.Sin(brg)*math.Sin(ang)*math.Cos(lat1), math.Cos(ang)-math.Sin(lat1)*math.Sin(lat2))
	return orb.Point{lon2 * 180 / math.Pi, lat2 * 180 / math.Pi}
}

func TestProjectionGeometryCopies(t *testing.T) {
	p := NewProjection(shenzhenOrigin)
	ring := orb.Ring{{114.0, 22.5}, {114.1, 22.5}, {114.1, 22.6}, {114.0, 22.5}}
	mp := orb.MultiPolygon{{ring}}
	orig := orb.Clone(mp).(orb.MultiPolygon)

	got := p.MultiPolygon(mp)
	if !mp.Equal(orig) {
		t.Fatal("MultiPolygon modified its input")
	}
	for i, pt := range ring {
		if got[0][0][i] != p.Forward(pt) {
			t.Fatalf("vertex %d: %v; want %v", i, got[0][0][i], p.Forward(pt))
		}
	}
	pg := p.Polygon(orb.Polygon{ring})
	if !pg.Equal(got[0]) {
		t.Fatal("Polygon and MultiPolygon disagree")
	}
	ls := p.LineString(orb.LineString(ring))
	if &ls[0] == &ring[0] || ls[1] != p.Forward(ring[1]) {
		t.Fatal("LineString did not make a projected copy")
	}
	if p.LineString(nil) != nil || p.Polygon(nil) != nil || p.MultiPolygon(nil) != nil {
		t.Fatal("nil geometry should project to nil")
	}
}
