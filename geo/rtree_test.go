package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

func randomBounds(rng *rand.Rand, n int) []orb.Bound {
	bs := make([]orb.Bound, n)
	for i := range bs {
		x, y := rng.Float64()*1000, rng.Float64()*1000
		w, h := rng.Float64()*40, rng.Float64()*40
		switch rng.IntN(20) {
		case 0: // a point
			w, h = 0, 0
		case 1: // an empty bound never matches
			bs[i] = orb.MultiPolygon{}.Bound()
			continue
		case 2: // snapped to a coarse grid so that edges coincide with other items and queries
			x, y, w, h = float64(int(x/50)*50), float64(int(y/50)*50), 50, 50
		}
		bs[i] = orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x + w, y + h}}
	}
	return bs
}

func bruteIntersects(bs []orb.Bound, q orb.Bound) []int32 {
	var out []int32
	for i, b := range bs {
		if b.Min[0] <= b.Max[0] && b.Min[1] <= b.Max[1] &&
			b.Min[0] <= q.Max[0] && b.Max[0] >= q.Min[0] && b.Min[1] <= q.Max[1] && b.Max[1] >= q.Min[1] {
			out = append(out, int32(i))
		}
	}
	return out
}

func TestRTreeAgainstBruteForce(t *testing.T) {
	for _, n := range []int{0, 1, 17, 1000, 10000} {
		t.Run(fmt.Sprintf("n=%d", n), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			bs := randomBounds(rng, n)
			tree := NewRTree(bs)
			if tree.Len() != n {
				t.Fatalf("Len() = %d; want %d", tree.Len(), n)
			}
			checkRTreeShape(t, tree)
			var got []int32
			for k := range 2000 {
				var p orb.Point
				switch {
				case n > 0 && k%4 == 0: // exactly on an item's corner
					b := bs[rng.IntN(n)]
					p = orb.Point{b.Max[0], b.Min[1]}
				case k%4 == 1: // on the coarse grid
					p = orb.Point{float64(rng.IntN(21) * 50), float64(rng.IntN(21) * 50)}
				default:
					p = orb.Point{rng.Float64()*1100 - 50, rng.Float64()*1100 - 50}
				}
				got = tree.SearchPoint(p, got[:0])
				if err := sameUpToRounding(bs, orb.Bound{Min: p, Max: p}, got); err != nil {
					t.Fatalf("SearchPoint(%v): %v", p, err)
				}

				x, y := rng.Float64()*1100-50, rng.Float64()*1100-50
				q := orb.Bound{Min: orb.Point{x, y}, Max: orb.Point{x + rng.Float64()*100, y + rng.Float64()*100}}
				if k%5 == 0 {
					q.Max = q.Min // a degenerate box
				}
				got = tree.SearchBound(q, got[:0])
				if err := sameUpToRounding(bs, q, got); err != nil {
					t.Fatalf("SearchBound(%v): %v", q, err)
				}
			}
			// Appending keeps what dst held; an inverted query box matches nothing.
			prefix := []int32{-1, -2}
			if got := tree.SearchBound(orb.Bound{Min: orb.Point{-1e9, -1e9}, Max: orb.Point{1e9, 1e9}}, prefix); len(got) < 2 || got[0] != -1 || got[1] != -2 {
				t.Fatalf("SearchBound dropped dst's contents: %v", got[:min(len(got), 2)])
			}
			if got := tree.SearchBound(orb.MultiPolygon{}.Bound(), nil); len(got) != 0 {
				t.Fatalf("an empty query bound matched %v", got)
			}
		})
	}
}

// sameUpToRounding checks a query's result against brute force: every item whose bound
// intersects q is in got, once, and any other item in got is within the float32 rounding of the
// tree's boxes (a relative 1e-6) of q.
func sameUpToRounding(bs []orb.Bound, q orb.Bound, got []int32) error {
	got = slices.Clone(got)
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != len(got) {
		return fmt.Errorf("an id twice in %v", got)
	}
	for _, id := range bruteIntersects(bs, q) {
		if _, found := slices.BinarySearch(got, id); !found {
			return fmt.Errorf("item %d (%v) missing from %v", id, bs[id], got)
		}
	}
	for _, id := range got {
		b := bs[id]
		slack := 1e-6 * (1 + max(math.Abs(b.Min[0]), math.Abs(b.Max[0]), math.Abs(b.Min[1]), math.Abs(b.Max[1])))
		grown := orb.Bound{Min: orb.Point{b.Min[0] - slack, b.Min[1] - slack}, Max: orb.Point{b.Max[0] + slack, b.Max[1] + slack}}
		if !grown.Intersects(q) {
			return fmt.Errorf("item %d (%v) is not within rounding of the query", id, b)
		}
	}
	return nil
}

// The tree keeps its boxes in float32, rounded outward: in a city's projected metres (here
// 10⁵ from the origin, where a float32 step is 8 mm) a query never misses an item, and finds
// no item farther than that rounding.
func TestRTreeFloat32Boxes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	bs := randomBounds(rng, 3000)
	for i := range bs {
		if bs[i].Min[0] <= bs[i].Max[0] { // not the empty bound
			bs[i] = orb.Bound{Min: orb.Point{bs[i].Min[0] + 1e5, bs[i].Min[1] - 1e5}, Max: orb.Point{bs[i].Max[0] + 1e5, bs[i].Max[1] - 1e5}}
		}
	}
	tree := NewRTree(bs)
	checkRTreeShape(t, tree)
	var got []int32
	for k := range 5000 {
		b := bs[rng.IntN(len(bs))]
		// on an item's corners and edges, and a hair outside them, where rounding decides
		p := orb.Point{b.Max[0] + float64(k%3-1)*1e-4, b.Min[1] + float64(k%5-2)*1e-4}
		got = tree.SearchPoint(p, got[:0])
		if err := sameUpToRounding(bs, orb.Bound{Min: p, Max: p}, got); err != nil {
			t.Fatalf("SearchPoint(%v): %v", p, err)
		}
		q := orb.Bound{Min: p, Max: orb.Point{p[0] + rng.Float64()*30, p[1] + rng.Float64()*30}}
		got = tree.SearchBound(q, got[:0])
		if err := sameUpToRounding(bs, q, got); err != nil {
			t.Fatalf("SearchBound(%v): %v", q, err)
		}
	}
}

// checkRTreeShape verifies the packing: every node has 1..fanout children, the root level at
// most fanout entries, and every node's box covers its children's.
func checkRTreeShape(t *testing.T, tree *RTree) {
	t.Helper()
	if len(tree.levels) == 0 {
		return
	}
	if top := tree.levels[len(tree.levels)-1]; len(top) > rtreeFanout {
		t.Fatalf("root level has %d entries", len(top))
	}
	seen := make([]bool, tree.Len())
	for _, e := range tree.levels[0] {
		seen[e.lo] = true
	}
	if slices.Contains(seen, false) {
		t.Fatal("some item is missing from the leaves")
	}
	for lvl := 1; lvl < len(tree.levels); lvl++ {
		covered := 0
		for _, e := range tree.levels[lvl] {
			if k := e.hi - e.lo; k < 1 || k > rtreeFanout {
				t.Fatalf("level %d: node with %d children", lvl, k)
			}
			covered += int(e.hi - e.lo)
			for _, c := range tree.levels[lvl-1][e.lo:e.hi] {
				if c.valid() && (c.minX < e.minX || c.maxX > e.maxX || c.minY < e.minY || c.maxY > e.maxY) {
					t.Fatalf("level %d: node %v does not cover child %v", lvl, e, c)
				}
			}
		}
		if covered != len(tree.levels[lvl-1]) {
			t.Fatalf("level %d covers %d of %d children", lvl, covered, len(tree.levels[lvl-1]))
		}
	}
}

func TestRTreeQueriesDoNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tree := NewRTree(randomBounds(rng, 10000))
	dst := make([]int32, 0, 4096)
	p := orb.Point{500, 500}
	q := orb.Bound{Min: orb.Point{450, 450}, Max: orb.Point{560, 540}}
	if n := testing.AllocsPerRun(100, func() { dst = tree.SearchPoint(p, dst[:0]) }); n != 0 {
		t.Fatalf("SearchPoint: %v allocs/op", n)
	}
	if n := testing.AllocsPerRun(100, func() { dst = tree.SearchBound(q, dst[:0]) }); n != 0 {
		t.Fatalf("SearchBound: %v allocs/op", n)
	}
	if len(dst) == 0 {
		t.Fatal("the query box should match something")
	}
}
