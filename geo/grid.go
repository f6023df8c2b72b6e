package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// areaGrid answers AreaIndex.Containing without the tree: a uniform grid over the areas' bounds
// lists, for each cell, the areas that may contain a point of it, each marked whole when the
// cell lies entirely inside the area (no exact test needed). A fix finds its zones by one cell
// and a few tests instead of a tree descent: with 1,000 zones (muckbench --city large) the
// descent was two thirds of the ~1 µs a fix spent finding them.
//
// A cell's list is exact in what it leaves out: an area is left out of a cell only when none of
// its edges comes within gridMargin of the cell and the cell's centre is outside it, so that the
// whole cell is (a region no edge crosses is all inside or all outside, and no point of it is on
// an edge). It is marked whole on the same condition with the centre inside.
type areaGrid struct {
	bound      orb.Bound // of every area: Area.Contains is false outside an area's bound
	minX, minY float64
	cell       float64 // side of a cell, metres
	nx, ny     int
	// starts[c]..starts[c+1] are cell c's entries in ids (c = iy*nx + ix), in ascending area
	// order; an entry is an area index, with gridWhole set when the cell is wholly inside it
	starts []int32
	ids    []int32
}

const (
	gridWhole = int32(-1 << 31) // the top bit of an entry: the cell is wholly inside the area
	// gridMargin widens each cell and each edge's box when they are compared: far more than the
	// rounding of a point's cell (nanometres at a city's coordinates) and than the micrometre
	// within which a point counts as on an edge.
	gridMargin = 0.01
	// gridCellsPerArea is how many cells the grid has per area: enough that a cell holds few
	// candidates, few enough that the grid stays a small part of a city's memory
	gridCellsPerArea = 16
	gridMaxCells     = 1 << 20
)

// newAreaGrid builds the grid of areas; nil when no area has a point.
func newAreaGrid(areas []Area) *areaGrid {
	var b orb.Bound
	found := false
	for i := range areas {
		if !hasPoints(&areas[i]) {
			continue
		}
		if !found {
			b, found = areas[i].Bound, true
			continue
		}
		b = b.Union(areas[i].Bound)
	}
	if !found {
		return nil
	}
	w, h := b.Max[0]-b.Min[0], b.Max[1]-b.Min[1]
	cells := float64(min(gridMaxCells, max(1, gridCellsPerArea*len(areas))))
	side := math.Sqrt(max(w*h, 1) / cells)
	side = max(side, w/cells, h/cells, 1) // a long thin city: no more cells than asked along it
	g := &areaGrid{bound: b, minX: b.Min[0], minY: b.Min[1], cell: side,
		nx: max(1, int(math.Ceil(w/side))), ny: max(1, int(math.Ceil(h/side)))}

	type entry struct{ cell, id int32 }
	var entries []entry
	var near []bool // of the cells of one area's bound: an edge comes near
	for id := range areas {
		a := &areas[id]
		if !hasPoints(a) {
			continue
		}
		x0, y0 := g.cellOf(a.Bound.Min[0]-gridMargin, a.Bound.Min[1]-gridMargin)
		x1, y1 := g.cellOf(a.Bound.Max[0]+gridMargin, a.Bound.Max[1]+gridMargin)
		bw := x1 - x0 + 1
		near = append(near[:0], make([]bool, bw*(y1-y0+1))...)
		for _, pg := range a.Poly {
			for _, r := range pg {
				if len(r) == 0 {
					continue
				}
				p := r[len(r)-1]
				for _, q := range r {
					ex0, ey0 := g.cellOf(min(p[0], q[0])-gridMargin, min(p[1], q[1])-gridMargin)
					ex1, ey1 := g.cellOf(max(p[0], q[0])+gridMargin, max(p[1], q[1])+gridMargin)
					for iy := max(ey0, y0); iy <= min(ey1, y1); iy++ {
						for ix := max(ex0, x0); ix <= min(ex1, x1); ix++ {
							near[(iy-y0)*bw+ix-x0] = true
						}
					}
					p = q
				}
			}
		}
		for iy := y0; iy <= y1; iy++ {
			for ix := x0; ix <= x1; ix++ {
				e := entry{cell: int32(iy*g.nx + ix), id: int32(id)}
				if !near[(iy-y0)*bw+ix-x0] {
					centre := orb.Point{g.minX + (float64(ix)+0.5)*g.cell, g.minY + (float64(iy)+0.5)*g.cell}
					if !a.Contains(centre) {
						continue
					}
					e.id |= gridWhole
				}
				entries = append(entries, e)
			}
		}
	}
	// counting sort by cell; areas were taken in ascending order, so each cell's stay so
	g.starts = make([]int32, g.nx*g.ny+1)
	for _, e := range entries {
		g.starts[e.cell+1]++
	}
	for c := 1; c < len(g.starts); c++ {
		g.starts[c] += g.starts[c-1]
	}
	g.ids = make([]int32, len(entries))
	next := append([]int32(nil), g.starts[:len(g.starts)-1]...)
	for _, e := range entries {
		g.ids[next[e.cell]] = e.id
		next[e.cell]++
	}
	return g
}

func hasPoints(a *Area) bool {
	for _, pg := range a.Poly {
		for _, r := range pg {
			if len(r) > 0 {
				return true
			}
		}
	}
	return false
}

// cellOf returns the cell of (x, y), clamped to the grid.
func (g *areaGrid) cellOf(x, y float64) (ix, iy int) {
	ix = int(math.Floor((x - g.minX) / g.cell))
	iy = int(math.Floor((y - g.minY) / g.cell))
	return min(max(ix, 0), g.nx-1), min(max(iy, 0), g.ny-1)
}

// containing appends to dst, in ascending order, the indices of the areas containing p.
func (g *areaGrid) containing(areas []Area, p orb.Point, dst []int32) []int32 {
	if !inBound(&g.bound, p) { // NaN is outside too
		return dst
	}
	ix, iy := g.cellOf(p[0], p[1])
	c := iy*g.nx + ix
	for _, e := range g.ids[g.starts[c]:g.starts[c+1]] {
		if e < 0 {
			dst = append(dst, e&^gridWhole)
		} else if areas[e].Contains(p) {
			dst = append(dst, e)
		}
	}
	return dst
}
