package geo

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/paulmach/orb"
)

// bent runs 100 m east, then 100 m north.
var bent = orb.LineString{{0, 0}, {100, 0}, {100, 100}}

func TestCorridorLocate(t *testing.T) {
	c := NewCorridor("r1", bent, 15)
	if c.Length() != 200 || c.ID != "r1" || c.HalfWidthM != 15 {
		t.Fatalf("corridor %q: length %v, half-width %v", c.ID, c.Length(), c.HalfWidthM)
	}
	f := func(p orb.Point, wantDist, wantAlong float64, inside bool) {
		t.Helper()
		dist, along := c.Locate(p)
		if math.Abs(dist-wantDist) > 1e-9 || math.Abs(along-wantAlong) > 1e-9 {
			t.Fatalf("Locate(%v) = %v, %v; want %v, %v", p, dist, along, wantDist, wantAlong)
		}
		if d := c.Distance(p); d != dist {
			t.Fatalf("Distance(%v) = %v; Locate gave %v", p, d, dist)
		}
		if got := c.Contains(p); got != inside {
			t.Fatalf("Contains(%v) = %v; want %v", p, got, inside)
		}
	}
	f(orb.Point{50, 10}, 10, 50, true)
	f(orb.Point{50, -15}, 15, 50, true) // exactly on the corridor's border
	f(orb.Point{110, 50}, 10, 150, true)
	f(orb.Point{70, -30}, 30, 70, false)
	f(orb.Point{70, 40}, 30, 140, false)
	f(orb.Point{100, 0}, 0, 100, true)
	f(orb.Point{-30, 40}, 50, 0, false)                // beyond the start
	f(orb.Point{100, 130}, 30, 200, false)             // beyond the end
	f(orb.Point{120, -20}, math.Sqrt(800), 100, false) // outside the bend: the vertex
	f(orb.Point{90, 10}, 10, 90, true)                 // inside the bend, equally near both: the first wins
}

func TestCorridorDegenerate(t *testing.T) {
	empty := NewCorridor("empty", nil, 10)
	if d, a := empty.Locate(orb.Point{1, 1}); !math.IsInf(d, 1) || a != 0 || empty.Contains(orb.Point{}) {
		t.Fatalf("empty line: Locate = %v, %v", d, a)
	}
	if empty.Length() != 0 || empty.PointAt(5) != (orb.Point{}) || empty.HeadingAt(5) != 0 {
		t.Fatal("empty line: Length, PointAt or HeadingAt")
	}

	one := NewCorridor("one", orb.LineString{{3, 4}}, 10)
	if d, a := one.Locate(orb.Point{0, 0}); d != 5 || a != 0 {
		t.Fatalf("single point: Locate = %v, %v", d, a)
	}
	if one.PointAt(7) != (orb.Point{3, 4}) || one.HeadingAt(0) != 0 {
		t.Fatal("single point: PointAt or HeadingAt")
	}

	// Repeated vertices make zero-length segments.
	dup := NewCorridor("dup", orb.LineString{{0, 0}, {0, 0}, {10, 0}, {10, 0}}, 1)
	if dup.Length() != 10 {
		t.Fatalf("Length = %v", dup.Length())
	}
	if d, a := dup.Locate(orb.Point{5, 5}); d != 5 || a != 5 {
		t.Fatalf("Locate = %v, %v", d, a)
	}
	for _, along := range []float64{-1, 0, 5, 10, 11} {
		if h := dup.HeadingAt(along); h != 90 {
			t.Fatalf("HeadingAt(%v) = %v; want 90", along, h)
		}
	}
	if p := dup.PointAt(5); p != (orb.Point{5, 0}) {
		t.Fatalf("PointAt(5) = %v", p)
	}
}

func TestCorridorPointAtHeadingAt(t *testing.T) {
	c := NewCorridor("r1", bent, 15)
	f := func(along float64, want orb.Point, wantHeading float64) {
		t.Helper()
		if got := c.PointAt(along); math.Abs(got[0]-want[0]) > 1e-9 || math.Abs(got[1]-want[1]) > 1e-9 {
			t.Fatalf("PointAt(%v) = %v; want %v", along, got, want)
		}
		if got := c.HeadingAt(along); math.Abs(got-wantHeading) > 1e-9 {
			t.Fatalf("HeadingAt(%v) = %v; want %v", along, got, wantHeading)
		}
	}
	f(-5, orb.Point{0, 0}, 90)
	f(0, orb.Point{0, 0}, 90)
	f(50, orb.Point{50, 0}, 90)
	f(100, orb.Point{100, 0}, 0) // at a vertex the outgoing segment counts
	f(150, orb.Point{100, 50}, 0)
	f(200, orb.Point{100, 100}, 0)
	f(1e9, orb.Point{100, 100}, 0)

	back := NewCorridor("back", orb.LineString{{0, 0}, {-10, -10}, {-10, 0}, {-20, 0}}, 5)
	g := func(along, wantHeading float64) {
		t.Helper()
		if got := back.HeadingAt(along); math.Abs(got-wantHeading) > 1e-9 {
			t.Fatalf("HeadingAt(%v) = %v; want %v", along, got, wantHeading)
		}
	}
	g(1, 225)
	g(math.Sqrt(200)+1, 0)
	g(math.Sqrt(200)+11, 270)

	// PointAt and Locate are inverse on the line.
	for along := 0.0; along <= 200; along += 7.25 {
		if d, a := c.Locate(c.PointAt(along)); d > 1e-9 || math.Abs(a-along) > 1e-9 {
			t.Fatalf("Locate(PointAt(%v)) = %v, %v", along, d, a)
		}
	}
}

// randomRoute is a random walk of n vertices with steps of 20–80 m and a wandering heading,
// doubling back now and then so that distant parts of the line come close.
func randomRoute(rng *rand.Rand, n int) orb.LineString {
	line := make(orb.LineString, 0, n)
	p, h := orb.Point{}, rng.Float64()*2*math.Pi
	for range n {
		line = append(line, p)
		h += rng.NormFloat64() * 0.4
		if rng.IntN(50) == 0 {
			h += math.Pi
		}
		step := 20 + rng.Float64()*60
		p = orb.Point{p[0] + step*math.Sin(h), p[1] + step*math.Cos(h)}
	}
	return line
}

func TestCorridorLongLineEqualsBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	line := randomRoute(rng, 1001) // 1000 segments
	c := NewCorridor("long", line, 30)
	if c.tree == nil {
		t.Fatal("a 1000-segment line should have a segment index")
	}
	b := line.Bound()
	for k := range 20000 {
		var p orb.Point
		switch k % 4 {
		case 0: // near the line
			q := c.PointAt(rng.Float64() * c.Length())
			p = orb.Point{q[0] + rng.NormFloat64()*40, q[1] + rng.NormFloat64()*40}
		case 1: // exactly on a vertex
			p = line[rng.IntN(len(line))]
		default: // anywhere, up to 10 km beyond the line's bound
			p = orb.Point{
				b.Min[0] - 10000 + rng.Float64()*(b.Max[0]-b.Min[0]+20000),
				b.Min[1] - 10000 + rng.Float64()*(b.Max[1]-b.Min[1]+20000),
			}
		}
		dist, along := c.Locate(p)
		seg, tt, d2 := c.nearestBrute(p)
		wantDist, wantAlong := math.Sqrt(d2), c.cum[seg]+tt*(c.cum[seg+1]-c.cum[seg])
		if dist != wantDist || along != wantAlong {
			t.Fatalf("Locate(%v) = %v, %v; brute force %v, %v", p, dist, along, wantDist, wantAlong)
		}
		if d := c.Distance(p); d != wantDist {
			t.Fatalf("Distance(%v) = %v; brute force %v", p, d, wantDist)
		}
		// And against a plain, independent computation.
		ref := math.Inf(1)
		for i := 0; i+1 < len(line); i++ {
			ref = min(ref, refSegDist(p, line[i], line[i+1]))
		}
		if math.Abs(dist-ref) > 1e-6 {
			t.Fatalf("Distance(%v) = %v; reference %v", p, dist, ref)
		}
	}
}

// TestCorridorWithinNearAgreesWithDistance: whatever the hint, WithinNear finds a segment only
// when Distance(p) <= r, the one it names is within r, and Nearest's segment is the one whose
// distance Distance is; a truck walked along the line with the last hint is found near it.
func TestCorridorWithinNearAgreesWithDistance(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{2, 10, 1001} { // brute force and the segment tree
		line := randomRoute(rng, n)
		c := NewCorridor("r", line, 30)
		hint, found := 0, 0
		for k := range 20000 {
			q := c.PointAt(float64(k) / 20000 * c.Length()) // along the line, as a truck drives
			s := 15.0
			if k%5 == 0 {
				s = 60 // some fixes off it
			}
			p := orb.Point{q[0] + rng.NormFloat64()*s, q[1] + rng.NormFloat64()*s}
			r := 18.0
			if k%7 == 0 {
				hint = rng.IntN(len(line)+4) - 2 // any hint, out of range too
			}
			d := c.Distance(p)
			seg, ok := c.WithinNear(p, r, hint)
			if ok {
				found++
				if d > r {
					t.Fatalf("%d vertices: WithinNear(%v, %v, %d) found segment %d, but Distance is %v", n, p, r, hint, seg, d)
				}
				if _, d2 := c.segNearest(seg, p); math.Sqrt(d2) > r {
					t.Fatalf("%d vertices: WithinNear named segment %d at %v > %v", n, seg, math.Sqrt(d2), r)
				}
				hint = seg
				continue
			}
			nd, nseg := c.Nearest(p)
			if nd != d {
				t.Fatalf("%d vertices: Nearest(%v) = %v, Distance %v", n, p, nd, d)
			}
			if _, d2 := c.segNearest(nseg, p); math.Sqrt(d2) != d {
				t.Fatalf("%d vertices: Nearest's segment %d is %v away, not %v", n, nseg, math.Sqrt(d2), d)
			}
			hint = nseg
		}
		if found < 10000 {
			t.Errorf("%d vertices: the last segment's hint found the truck near in %d of 20000 fixes, want most", n, found)
		}
	}
}

// refSegDist is the textbook point-to-segment distance.
func refSegDist(p, a, b orb.Point) float64 {
	l2 := sqDist(a, b)
	if l2 == 0 {
		return math.Sqrt(sqDist(p, a))
	}
	t := ((p[0]-a[0])*(b[0]-a[0]) + (p[1]-a[1])*(b[1]-a[1])) / l2
	t = math.Max(0, math.Min(1, t))
	return math.Hypot(p[0]-(a[0]+t*(b[0]-a[0])), p[1]-(a[1]+t*(b[1]-a[1])))
}

func TestCorridorQueriesDoNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	c := NewCorridor("long", randomRoute(rng, 2000), 30)
	p := c.PointAt(1234)
	p[0] += 25
	var sink float64
	if n := testing.AllocsPerRun(100, func() {
		d, a := c.Locate(p)
		sink += d + a + c.Distance(p) + c.HeadingAt(a)
		if c.Contains(p) {
			sink++
		}
	}); n != 0 {
		t.Fatalf("%v allocs/op", n)
	}
	_ = sink
}

// groundTruthDist is the great-circle distance from ll to the lon/lat line, its minimum over
// points every ~1 m along each segment: slow, obviously right.
func groundTruthDist(line orb.LineString, ll orb.Point) float64 {
	best := math.Inf(1)
	for i := 1; i < len(line); i++ {
		a, b := line[i-1], line[i]
		n := int(DistanceM(a, b)) + 1
		for j := 0; j <= n; j++ {
			k := float64(j) / float64(n)
			best = min(best, DistanceM(ll, orb.Point{a[0] + k*(b[0]-a[0]), a[1] + k*(b[1]-a[1])}))
		}
	}
	return best
}

func TestCorridorGroundDistanceFarFromOrigin(t *testing.T) {
	proj := NewProjection(orb.Point{114.0, 22.6})
	// a route of the city, bending across ~25 km of it
	ll := orb.LineString{{113.90, 22.55}, {113.98, 22.58}, {114.05, 22.62}, {114.10, 22.70}, {114.12, 22.75}}
	c := NewCorridor("r", proj.LineString(ll), 50)
	for _, tc := range []struct {
		name string
		at   orb.Point
	}{
		{"on the map, ~270 m off", orb.Point{114.02, 22.6057}},
		{"50 km north-east", orb.Point{114.40, 22.95}},
		{"120 km east", orb.Point{115.30, 22.70}},
		{"300 km north-west", orb.Point{112.0, 25.1}},
		{"300 km north-east", orb.Point{116.2, 24.9}},
		{"200 km south-west", orb.Point{112.3, 21.4}},
		{"1,900 km north-east (Harbin)", orb.Point{126.63, 45.75}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := groundTruthDist(ll, tc.at)
			got := c.GroundDistance(proj, tc.at)
			if math.Abs(got-want) > 0.001*want+1 {
				t.Fatalf("GroundDistance = %.1f m; the great circle gives %.1f m (projected %.1f m)", got, want, c.Distance(proj.Forward(tc.at)))
			}
		})
	}
	if d := NewCorridor("empty", nil, 50).GroundDistance(proj, orb.Point{114, 22.6}); !math.IsInf(d, 1) {
		t.Fatalf("empty line: %v, want +Inf", d)
	}
}
