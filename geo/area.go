package geo

import (
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// edgeEpsM is how close, in metres, a point must be to a ring edge to count as on it.
const edgeEpsM = 1e-6

// Area is one polygonal shape in projected metres with its bound cached. Rings may be given
// closed (first point repeated last) or open; either way the closing edge is implied. Within
// each polygon the even-odd rule applies over all its rings, so holes are excluded; the
// polygons of the multipolygon are united.
//
// An Area must not be modified once built; its methods are safe for concurrent use.
type Area struct {
	ID    string
	Poly  orb.MultiPolygon // projected metres; rings closed; holes respected
	Bound orb.Bound
}

// NewArea returns the area of poly (projected metres) with its bound computed. poly is
// retained, not copied.
func NewArea(id string, poly orb.MultiPolygon) Area {
	return Area{ID: id, Poly: poly, Bound: poly.Bound()}
}

func inBound(b *orb.Bound, p orb.Point) bool {
	return p[0] >= b.Min[0] && p[0] <= b.Max[0] && p[1] >= b.Min[1] && p[1] <= b.Max[1]
}

// Contains reports whether p lies in the area: a bound check first, then the exact
// point-in-polygon test. Points on an edge (within a micrometre), hole edges included, count
// as inside.
func (a *Area) Contains(p orb.Point) bool {
	if !inBound(&a.Bound, p) {
		return false
	}
	for _, pg := range a.Poly {
		if polygonContains(pg, p) {
			return true
		}
	}
	return false
}

// polygonContains applies the even-odd rule over all rings of pg, with points on an edge
// inside.
func polygonContains(pg orb.Polygon, p orb.Point) bool {
	px, py := p[0], p[1]
	in := false
	for _, r := range pg {
		n := len(r)
		if n == 0 {
			continue
		}
		a := r[n-1]
		for _, b := range r {
			// Most edges lie wholly above or below the point's horizontal (with the edge
			// tolerance): they can neither be crossed by the ray nor hold the point.
			if (a[1] > py+edgeEpsM && b[1] > py+edgeEpsM) || (a[1] < py-edgeEpsM && b[1] < py-edgeEpsM) {
				a = b
				continue
			}
			// On-edge test, only for edges whose box (widened by the tolerance) holds p.
			if px >= min(a[0], b[0])-edgeEpsM && px <= max(a[0], b[0])+edgeEpsM &&
				segDist2(p, a, b) <= edgeEpsM*edgeEpsM {
				return true
			}
			if (a[1] > py) != (b[1] > py) {
				x := a[0] + (py-a[1])*(b[0]-a[0])/(b[1]-a[1])
				if px < x {
					in = !in
				}
			}
			a = b
		}
	}
	return in
}

// segDist2 returns the squared distance from p to the segment a-b.
func segDist2(p, a, b orb.Point) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	ex, ey := p[0]-a[0], p[1]-a[1]
	l2 := dx*dx + dy*dy
	if l2 > 0 {
		t := (ex*dx + ey*dy) / l2
		if t >= 1 {
			ex, ey = p[0]-b[0], p[1]-b[1]
		} else if t > 0 {
			ex, ey = ex-t*dx, ey-t*dy
		}
	}
	return ex*ex + ey*ey
}

// DistanceToEdge returns the distance in metres from p to the nearest edge of any ring, holes
// included, whether p is inside or outside; +Inf for an area without rings. Detectors use it
// for hysteresis at borders.
func (a *Area) DistanceToEdge(p orb.Point) float64 {
	best := math.Inf(1)
	for _, pg := range a.Poly {
		for _, r := range pg {
			n := len(r)
			if n == 0 {
				continue
			}
			prev := r[n-1]
			for _, q := range r {
				if d := segDist2(p, prev, q); d < best {
					best = d
				}
				prev = q
			}
		}
	}
	return math.Sqrt(best)
}

// IntersectsSegment reports whether the segment p-q touches the area: an endpoint is inside
// (edges included) or the segment meets any ring edge. This catches an area crossed between
// two sparse fixes that both lie outside it.
func (a *Area) IntersectsSegment(p, q orb.Point) bool {
	sb := rbox{min(p[0], q[0]), min(p[1], q[1]), max(p[0], q[0]), max(p[1], q[1])}
	ab := boxOf(a.Bound)
	if !sb.intersects(&ab) {
		return false
	}
	if a.Contains(p) || a.Contains(q) {
		return true
	}
	// Both endpoints are outside: the segment touches the area only by meeting an edge.
	for _, pg := range a.Poly {
		for _, r := range pg {
			n := len(r)
			if n == 0 {
				continue
			}
			c := r[n-1]
			for _, d := range r {
				if max(c[0], d[0]) >= sb.minX && min(c[0], d[0]) <= sb.maxX &&
					max(c[1], d[1]) >= sb.minY && min(c[1], d[1]) <= sb.maxY &&
					segmentsIntersect(p, q, c, d) {
					return true
				}
				c = d
			}
		}
	}
	return false
}

// orient returns the sign of the cross product (b-a)×(c-a): >0 when a, b, c turn left.
func orient(a, b, c orb.Point) float64 {
	return (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
}

// onSegment reports whether c, known collinear with a-b, lies within the box of a-b.
func onSegment(a, b, c orb.Point) bool {
	return c[0] >= min(a[0], b[0]) && c[0] <= max(a[0], b[0]) &&
		c[1] >= min(a[1], b[1]) && c[1] <= max(a[1], b[1])
}

// segmentsIntersect reports whether the closed segments p1-p2 and p3-p4 share a point.
func segmentsIntersect(p1, p2, p3, p4 orb.Point) bool {
	d1 := orient(p3, p4, p1)
	d2 := orient(p3, p4, p2)
	d3 := orient(p1, p2, p3)
	d4 := orient(p1, p2, p4)
	if ((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0)) {
		return true
	}
	return (d1 == 0 && onSegment(p3, p4, p1)) ||
		(d2 == 0 && onSegment(p3, p4, p2)) ||
		(d3 == 0 && onSegment(p1, p2, p3)) ||
		(d4 == 0 && onSegment(p1, p2, p4))
}

// AreaIndex holds areas behind an RTree over their bounds and, for the point queries every fix
// makes, a grid of cells (grid.go): queries take candidates from one or the other and run the
// exact test on those only. Indices are positions in the slice given to NewAreaIndex. An AreaIndex never modifies its areas and is safe for concurrent use.
type AreaIndex struct {
	areas []Area
	tree  *RTree
	grid  *areaGrid // for Containing; nil when no area has a point
}

// NewAreaIndex indexes areas. The slice is copied (the polygons are shared, not copied).
func NewAreaIndex(areas []Area) *AreaIndex {
	x := &AreaIndex{areas: slices.Clone(areas)}
	bounds := make([]orb.Bound, len(areas))
	for i := range areas {
		bounds[i] = areas[i].Bound
	}
	x.tree = NewRTree(bounds)
	x.grid = newAreaGrid(x.areas)
	return x
}

// Len returns the number of indexed areas.
func (x *AreaIndex) Len() int { return len(x.areas) }

// Area returns the area at index i. It must not be modified.
func (x *AreaIndex) Area(i int32) *Area { return &x.areas[i] }

// Containing appends to dst, in ascending order, the indices of the areas containing p
// (Area.Contains). It does not allocate when dst has enough capacity.
func (x *AreaIndex) Containing(p orb.Point, dst []int32) []int32 {
	if x.grid == nil {
		return dst
	}
	return x.grid.containing(x.areas, p, dst)
}

// containingByTree is Containing through the tree, for the tests of the grid.
func (x *AreaIndex) containingByTree(p orb.Point, dst []int32) []int32 {
	start := len(dst)
	dst = x.tree.SearchPoint(p, dst)
	return x.keep(dst, start, func(a *Area) bool { return a.Contains(p) })
}

// Crossing appends to dst, in ascending order, the indices of the areas the segment p-q
// touches (Area.IntersectsSegment). It does not allocate when dst has enough capacity.
func (x *AreaIndex) Crossing(p, q orb.Point, dst []int32) []int32 {
	start := len(dst)
	b := orb.Bound{Min: orb.Point{min(p[0], q[0]), min(p[1], q[1])}, Max: orb.Point{max(p[0], q[0]), max(p[1], q[1])}}
	dst = x.tree.SearchBound(b, dst)
	return x.keep(dst, start, func(a *Area) bool { return a.IntersectsSegment(p, q) })
}

// Near appends to dst, in ascending order, the indices of the areas that contain p or whose
// border is within r of it: the areas a point measured with error r could really be in.
func (x *AreaIndex) Near(p orb.Point, r float64, dst []int32) []int32 {
	return x.NearWhere(p, r, dst, nil)
}

// NearWhere is Near for the areas where says yes to (all, when where is nil): a cheap test on
// the area's index (its kind, its hours) that spares the exact distance test the areas it
// rules out.
func (x *AreaIndex) NearWhere(p orb.Point, r float64, dst []int32, where func(i int32) bool) []int32 {
	start := len(dst)
	b := orb.Bound{Min: orb.Point{p[0] - r, p[1] - r}, Max: orb.Point{p[0] + r, p[1] + r}}
	dst = x.tree.SearchBound(b, dst)
	if where != nil {
		n := start
		for _, id := range dst[start:] {
			if where(id) {
				dst[n] = id
				n++
			}
		}
		dst = dst[:n]
	}
	return x.keep(dst, start, func(a *Area) bool { return a.Contains(p) || a.DistanceToEdge(p) <= r })
}

// keep filters the candidates dst[start:] in place by the exact test and sorts them.
func (x *AreaIndex) keep(dst []int32, start int, exact func(*Area) bool) []int32 {
	n := start
	for _, id := range dst[start:] {
		if exact(&x.areas[id]) {
			dst[n] = id
			n++
		}
	}
	dst = dst[:n]
	slices.Sort(dst[start:])
	return dst
}
