package geo

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

func square(x0, y0, x1, y1 float64) orb.Ring {
	return orb.Ring{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}}
}

// Shapes shared by the tests: a 100 m square with a 20 m square hole, a U (concave), and a
// multipolygon of two squares.
var (
	holed = NewArea("holed", orb.MultiPolygon{{square(0, 0, 100, 100), square(40, 40, 60, 60)}})
	uArea = NewArea("u", orb.MultiPolygon{{{{0, 0}, {30, 0}, {30, 30}, {20, 30}, {20, 10}, {10, 10}, {10, 30}, {0, 30}, {0, 0}}}})
	pair  = NewArea("pair", orb.MultiPolygon{{square(0, 0, 10, 10)}, {square(20, 0, 30, 10)}})
)

func TestNewAreaBound(t *testing.T) {
	if want := (orb.Bound{Min: orb.Point{0, 0}, Max: orb.Point{30, 10}}); pair.Bound != want {
		t.Fatalf("Bound = %v; want %v", pair.Bound, want)
	}
	if pair.ID != "pair" {
		t.Fatalf("ID = %q", pair.ID)
	}
	empty := NewArea("empty", nil)
	if empty.Contains(orb.Point{0, 0}) || empty.IntersectsSegment(orb.Point{-5, -5}, orb.Point{5, 5}) {
		t.Fatal("an empty area contains nothing")
	}
	if d := empty.DistanceToEdge(orb.Point{}); !math.IsInf(d, 1) {
		t.Fatalf("DistanceToEdge of an empty area = %v", d)
	}
}

func TestAreaContains(t *testing.T) {
	f := func(a *Area, p orb.Point, want bool) {
		t.Helper()
		if got := a.Contains(p); got != want {
			t.Fatalf("%s.Contains(%v) = %v; want %v", a.ID, p, got, want)
		}
	}
	// With a hole.
	f(&holed, orb.Point{10, 10}, true)
	f(&holed, orb.Point{50, 50}, false) // in the hole
	f(&holed, orb.Point{39.9, 50}, true)
	f(&holed, orb.Point{101, 50}, false)
	f(&holed, orb.Point{-0.001, 50}, false)
	// On edges and vertices, the hole's included.
	f(&holed, orb.Point{0, 50}, true)
	f(&holed, orb.Point{100, 100}, true)
	f(&holed, orb.Point{37.5, 0}, true)
	f(&holed, orb.Point{40, 50}, true)
	f(&holed, orb.Point{60, 60}, true)
	// Concave: the notch of the U is outside.
	f(&uArea, orb.Point{15, 20}, false)
	f(&uArea, orb.Point{15, 30}, false) // on the notch's open side, not an edge
	f(&uArea, orb.Point{15, 10}, true)  // on the notch's floor
	f(&uArea, orb.Point{5, 20}, true)
	f(&uArea, orb.Point{25, 29}, true)
	f(&uArea, orb.Point{15, 5}, true)
	f(&uArea, orb.Point{20, 20}, true) // on the notch's wall
	// Multipolygon: either part, not the gap.
	f(&pair, orb.Point{5, 5}, true)
	f(&pair, orb.Point{25, 5}, true)
	f(&pair, orb.Point{15, 5}, false)
	// Open rings (closing edge implied) behave like closed ones.
	open := NewArea("open", orb.MultiPolygon{{{{0, 0}, {10, 0}, {10, 10}, {0, 10}}}})
	f(&open, orb.Point{5, 5}, true)
	f(&open, orb.Point{0, 5}, true)
	f(&open, orb.Point{-1, 5}, false)
}

func TestAreaDistanceToEdge(t *testing.T) {
	f := func(a *Area, p orb.Point, want float64) {
		t.Helper()
		if got := a.DistanceToEdge(p); math.Abs(got-want) > 1e-9 {
			t.Fatalf("%s.DistanceToEdge(%v) = %v; want %v", a.ID, p, got, want)
		}
	}
	f(&holed, orb.Point{10, 50}, 10)
	f(&holed, orb.Point{45, 50}, 5) // inside the hole: its edge counts
	f(&holed, orb.Point{30, 50}, 10)
	f(&holed, orb.Point{150, 50}, 50)
	f(&holed, orb.Point{110, 110}, math.Sqrt(200))
	f(&holed, orb.Point{0, 70}, 0)
	f(&uArea, orb.Point{15, 25}, 5)
	f(&pair, orb.Point{15, 5}, 5)
}

func TestAreaIntersectsSegment(t *testing.T) {
	f := func(a *Area, p, q orb.Point, want bool) {
		t.Helper()
		if got := a.IntersectsSegment(p, q); got != want {
			t.Fatalf("%s.IntersectsSegment(%v, %v) = %v; want %v", a.ID, p, q, got, want)
		}
		if got := a.IntersectsSegment(q, p); got != want {
			t.Fatalf("%s.IntersectsSegment(%v, %v) = %v; want %v (reversed)", a.ID, q, p, got, want)
		}
	}
	// Two sparse fixes both outside, the segment between them cutting the top-left corner.
	f(&holed, orb.Point{-10, 80}, orb.Point{30, 120}, true)
	// Passing by the same corner without touching it, though the boxes overlap.
	f(&holed, orb.Point{-10, 105}, orb.Point{5, 120}, false)
	f(&holed, orb.Point{90, -50}, orb.Point{150, 10}, false)
	// Grazing exactly the corner vertex, and running along an edge.
	f(&holed, orb.Point{-10, 110}, orb.Point{10, 90}, true)
	f(&holed, orb.Point{-10, 0}, orb.Point{-1, 0}, false)
	f(&holed, orb.Point{-10, 0}, orb.Point{0, 0}, true)
	f(&holed, orb.Point{110, 0}, orb.Point{120, 0}, false)
	// Straight through, one end inside, both ends inside.
	f(&holed, orb.Point{-50, 20}, orb.Point{150, 20}, true)
	f(&holed, orb.Point{-50, 20}, orb.Point{10, 20}, true)
	f(&holed, orb.Point{10, 10}, orb.Point{20, 20}, true)
	// Wholly within the hole, and from the hole out across the area.
	f(&holed, orb.Point{45, 45}, orb.Point{55, 55}, false)
	f(&holed, orb.Point{50, 50}, orb.Point{150, 50}, true)
	// Within the U's notch, touching nothing; then from the notch into the right arm.
	f(&uArea, orb.Point{12, 20}, orb.Point{18, 20}, false)
	f(&uArea, orb.Point{12, 20}, orb.Point{25, 20}, true)
	// Through the gap of the pair, and across it.
	f(&pair, orb.Point{15, -5}, orb.Point{15, 15}, false)
	f(&pair, orb.Point{-5, 5}, orb.Point{35, 5}, true)
	// A degenerate segment is a point.
	f(&pair, orb.Point{5, 5}, orb.Point{5, 5}, true)
	f(&pair, orb.Point{15, 5}, orb.Point{15, 5}, false)
}

// starArea returns a star-shaped polygon of k vertices around c with radii in [r/2, r].
func starArea(rng *rand.Rand, id string, c orb.Point, r float64, k int) Area {
	ring := make(orb.Ring, 0, k+1)
	for i := range k {
		a := 2 * math.Pi * float64(i) / float64(k)
		rr := r * (0.5 + 0.5*rng.Float64())
		ring = append(ring, orb.Point{c[0] + rr*math.Cos(a), c[1] + rr*math.Sin(a)})
	}
	ring = append(ring, ring[0])
	return NewArea(id, orb.MultiPolygon{{ring}})
}

func TestAreaIndexAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var areas []Area
	for i := range 500 {
		c := orb.Point{rng.Float64() * 5000, rng.Float64() * 5000}
		areas = append(areas, starArea(rng, string(rune('a'+i%26)), c, 50+rng.Float64()*400, 5+rng.IntN(20)))
	}
	areas = append(areas, holed, uArea, pair, NewArea("empty", nil))
	orig := make([]Area, len(areas))
	for i, a := range areas {
		orig[i] = Area{ID: a.ID, Poly: a.Poly.Clone(), Bound: a.Bound}
	}
	x := NewAreaIndex(areas)
	if x.Len() != len(areas) {
		t.Fatalf("Len() = %d", x.Len())
	}
	for i := range areas {
		if x.Area(int32(i)).ID != areas[i].ID {
			t.Fatalf("Area(%d) is %q", i, x.Area(int32(i)).ID)
		}
	}
	var got []int32
	for range 5000 {
		p := orb.Point{rng.Float64()*5200 - 100, rng.Float64()*5200 - 100}
		if rng.IntN(10) == 0 {
			p = orb.Point{rng.Float64()*40 - 5, rng.Float64()*110 - 5}
		}
		var want []int32
		for i := range areas {
			if areas[i].Contains(p) {
				want = append(want, int32(i))
			}
		}
		got = x.Containing(p, got[:0])
		if !slices.Equal(got, want) {
			t.Fatalf("Containing(%v) = %v; want %v", p, got, want)
		}

		q := orb.Point{p[0] + rng.Float64()*600 - 300, p[1] + rng.Float64()*600 - 300}
		want = want[:0]
		for i := range areas {
			if areas[i].IntersectsSegment(p, q) {
				want = append(want, int32(i))
			}
		}
		got = x.Crossing(p, q, got[:0])
		if !slices.Equal(got, want) {
			t.Fatalf("Crossing(%v, %v) = %v; want %v", p, q, got, want)
		}
	}
	if !reflect.DeepEqual(areas, orig) {
		t.Fatal("the index modified its areas")
	}
	// Results are appended after what dst holds.
	got = x.Containing(orb.Point{5, 5}, []int32{-7})
	if len(got) < 2 || got[0] != -7 {
		t.Fatalf("Containing dropped dst's contents: %v", got)
	}
}

func TestAreaIndexQueriesDoNotAllocate(t *testing.T) {
	x := NewAreaIndex([]Area{holed, uArea, pair})
	dst := make([]int32, 0, 16)
	p, q := orb.Point{5, 5}, orb.Point{150, 50}
	if n := testing.AllocsPerRun(100, func() { dst = x.Containing(p, dst[:0]) }); n != 0 {
		t.Fatalf("Containing: %v allocs/op", n)
	}
	if n := testing.AllocsPerRun(100, func() { dst = x.Crossing(p, q, dst[:0]) }); n != 0 {
		t.Fatalf("Crossing: %v allocs/op", n)
	}
	if !slices.Equal(dst, []int32{0, 1, 2}) {
		t.Fatalf("Crossing = %v", dst)
	}
}
