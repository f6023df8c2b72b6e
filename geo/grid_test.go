package geo

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/paulmach/orb"
)

// TestAreaGridMatchesTree asks the grid and the tree the same points where a grid could go
// wrong: on and beside the areas' vertices and edges (closer than the grid's margin and than the
// on-edge tolerance, and farther), on the cells' corners and borders, at the areas' bounds and
// outside them, over areas small against a cell and areas many cells wide that overlap, with
// holes, several polygons and a degenerate ring.
func TestAreaGridMatchesTree(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := map[string][]Area{
		"shapes": {holed, uArea, pair, NewArea("empty", nil), NewArea("dot", orb.MultiPolygon{{{{50, 50}}}})},
		"small":  nil,
		"large":  nil,
	}
	for i := range 300 { // a few cells each
		c := orb.Point{rng.Float64() * 20000, rng.Float64() * 20000}
		cases["small"] = append(cases["small"], starArea(rng, fmt.Sprint("s", i), c, 20+rng.Float64()*300, 3+rng.IntN(30)))
	}
	for i := range 200 { // many cells each, overlapping: the large city's zones
		c := orb.Point{rng.Float64() * 20000, rng.Float64() * 20000}
		cases["large"] = append(cases["large"], starArea(rng, fmt.Sprint("l", i), c, 500+rng.Float64()*3000, 3+rng.IntN(60)))
	}
	cases["large"] = append(cases["large"], NewArea("holed", orb.MultiPolygon{{square(0, 0, 20000, 20000), square(5000, 5000, 15000, 15000)}}))
	offsets := []float64{0, 1e-9, 5e-7, 2e-6, 1e-3, gridMargin / 2, gridMargin, 2 * gridMargin, 1, 37}

	for name, areas := range cases {
		t.Run(name, func(t *testing.T) {
			x := NewAreaIndex(areas)
			var pts []orb.Point
			near := func(p orb.Point) {
				for _, d := range offsets {
					for _, s := range [][2]float64{{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {-1, -1}} {
						pts = append(pts, orb.Point{p[0] + s[0]*d, p[1] + s[1]*d})
					}
				}
			}
			for _, a := range areas {
				for _, pg := range a.Poly {
					for _, r := range pg {
						for k, v := range r {
							near(v)
							w := r[(k+1)%len(r)]
							near(orb.Point{(v[0] + w[0]) / 2, (v[1] + w[1]) / 2})
							near(orb.Point{v[0] + (w[0]-v[0])*rng.Float64(), v[1] + (w[1]-v[1])*rng.Float64()})
						}
					}
				}
				near(a.Bound.Min)
				near(a.Bound.Max)
			}
			if g := x.grid; g != nil {
				for range 2000 {
					ix, iy := rng.IntN(g.nx+1), rng.IntN(g.ny+1)
					near(orb.Point{g.minX + float64(ix)*g.cell, g.minY + float64(iy)*g.cell})
				}
				b := g.bound
				for range 20000 {
					pts = append(pts, orb.Point{b.Min[0] - 100 + rng.Float64()*(b.Max[0]-b.Min[0]+200), b.Min[1] - 100 + rng.Float64()*(b.Max[1]-b.Min[1]+200)})
				}
			}
			pts = append(pts, orb.Point{math.NaN(), 5}, orb.Point{5, math.Inf(1)}, orb.Point{-1e12, 1e12})
			var got, want []int32
			for _, p := range pts {
				got = x.Containing(p, got[:0])
				want = x.containingByTree(p, want[:0])
				if !slices.Equal(got, want) {
					t.Fatalf("Containing(%v) = %v by the grid, %v by the tree (of %d points)", p, got, want, len(pts))
				}
			}
			t.Logf("%d areas, %d points", len(areas), len(pts))
		})
	}
}

// TestAreaGridSize: the grid stays a small multiple of the areas it holds.
func TestAreaGridSize(t *testing.T) {
	for _, n := range []int{1, 18, 1000, 10000} {
		areas, _ := benchCity(n)
		g := newAreaGrid(areas)
		cells := g.nx * g.ny
		if cells > 2*gridCellsPerArea*n+2*(g.nx+g.ny) {
			t.Errorf("%d areas: %d×%d cells", n, g.nx, g.ny)
		}
		if len(g.ids) > 8*cells+4*n {
			t.Errorf("%d areas: %d entries in %d cells", n, len(g.ids), cells)
		}
		t.Logf("%d areas: %d×%d cells of %.0f m, %d entries", n, g.nx, g.ny, g.cell, len(g.ids))
	}
}

// TestAreaGridEdgeBesideCell: an edge a fraction of a micrometre outside a cell still holds
// (counts as on it) the points of the cell beside it, so that cell must test the area exactly:
// here a hole's edge, with the cell beside it otherwise all in the hole.
func TestAreaGridEdgeBesideCell(t *testing.T) {
	g := NewAreaIndex([]Area{NewArea("big", orb.MultiPolygon{{square(0, 0, 4000, 4000)}})}).grid
	border := g.minX + 2*g.cell // between the second and the third column of cells
	for _, d := range []float64{-4e-7, 0, 4e-7} {
		holed := NewArea("holed", orb.MultiPolygon{{square(0, 0, 4000, 4000), square(border+d, 100, border+1.5*g.cell, 3900)}})
		x := NewAreaIndex([]Area{holed})
		if x.grid.cell != g.cell || x.grid.minX != g.minX {
			t.Fatalf("the grid moved: cell %v at %v, want %v at %v", x.grid.cell, x.grid.minX, g.cell, g.minX)
		}
		for _, px := range []float64{border - 9e-7, border - 1e-7, border, border + 1e-7, border + 9e-7, border + 2e-6} {
			p := orb.Point{px, 2000}
			if got, want := x.Containing(p, nil), x.containingByTree(p, nil); !slices.Equal(got, want) {
				t.Errorf("hole's edge at border%+g: Containing(%v) = %v by the grid, %v by the tree", d, p, got, want)
			}
		}
	}
}
