package geo

import (
	"math"
	"sort"

	"github.com/paulmach/orb"
)

// corridorTreeMinSegs: lines with more segments than this get an RTree over segment bounds.
const corridorTreeMinSegs = 32

// Corridor is an approved route: a centreline in projected metres with a half-width. A
// Corridor must not be modified once built; its methods are safe for concurrent use.
type Corridor struct {
	ID         string
	Line       orb.LineString // projected metres
	HalfWidthM float64

	cum  []float64 // cum[i] is the length of the line from its start to vertex i
	tree *RTree    // over segment bounds (segment i joins vertices i and i+1); nil for short lines
}

// NewCorridor builds the corridor of line (projected metres, retained, not copied) with the
// given half-width in metres.
func NewCorridor(id string, line orb.LineString, halfWidthM float64) *Corridor {
	c := &Corridor{ID: id, Line: line, HalfWidthM: halfWidthM, cum: make([]float64, len(line))}
	for i := 1; i < len(line); i++ {
		c.cum[i] = c.cum[i-1] + math.Hypot(line[i][0]-line[i-1][0], line[i][1]-line[i-1][1])
	}
	if segs := len(line) - 1; segs > corridorTreeMinSegs {
		bounds := make([]orb.Bound, segs)
		for i := range segs {
			a, b := line[i], line[i+1]
			bounds[i] = orb.Bound{
				Min: orb.Point{min(a[0], b[0]), min(a[1], b[1])},
				Max: orb.Point{max(a[0], b[0]), max(a[1], b[1])},
			}
		}
		c.tree = NewRTree(bounds)
	}
	return c
}

// Length returns the length of the centreline in metres.
func (c *Corridor) Length() float64 {
	if len(c.cum) == 0 {
		return 0
	}
	return c.cum[len(c.cum)-1]
}

// Distance returns the distance in metres from p to the centreline (the minimum over its
// segments); +Inf for an empty line. Long lines use the segment RTree; the result equals the
// brute-force minimum exactly.
func (c *Corridor) Distance(p orb.Point) float64 {
	dist, _ := c.Locate(p)
	return dist
}

// Locate returns the distance from p to the centreline and the distance along the line, from
// its start, of the nearest point on it. When several segments are equally near, the first one
// wins. An empty line gives (+Inf, 0).
func (c *Corridor) Locate(p orb.Point) (dist, along float64) {
	dist, seg, t := c.locate(p)
	if seg < 0 {
		return dist, 0
	}
	return dist, c.cum[seg] + t*(c.cum[seg+1]-c.cum[seg])
}

// Nearest returns the distance from p to the centreline, as Distance, and the segment it is
// measured to (-1 for a line without segments): the hint for WithinNear at the next position.
func (c *Corridor) Nearest(p orb.Point) (dist float64, seg int) {
	dist, seg, _ = c.locate(p)
	return dist, seg
}

// locate finds the segment nearest p (the segment tree's search, or every segment of a short
// line), the distance to it and the parameter of its nearest point; seg is -1 for a line without
// segments (the distance to its one point, or +Inf).
func (c *Corridor) locate(p orb.Point) (dist float64, seg int, t float64) {
	var d2 float64
	if c.tree != nil {
		seg, t, d2 = c.nearestTree(p)
	} else {
		seg, t, d2 = c.nearestBrute(p)
	}
	switch {
	case seg >= 0:
		return math.Sqrt(d2), seg, t
	case len(c.Line) == 1:
		return math.Sqrt(sqDist(p, c.Line[0])), -1, 0
	}
	return math.Inf(1), -1, 0
}

// WithinNear reports whether segment seg, or the one after or before it, lies within r of p,
// and which one does. A truck on its route is as a rule on the segment nearest its last fix or
// the next, so this answers it without the tree search; found means Distance(p) <= r exactly
// (the distance to one segment bounds the minimum over all of them, and the square root is
// monotone). Not found says nothing: the caller searches the line (Nearest). A seg out of the
// line's range (another route's hint) finds nothing.
func (c *Corridor) WithinNear(p orb.Point, r float64, seg int) (int, bool) {
	for _, s := range [3]int{seg, seg + 1, seg - 1} {
		if s < 0 || s+1 >= len(c.Line) {
			continue
		}
		if _, d2 := c.segNearest(s, p); math.Sqrt(d2) <= r {
			return s, true
		}
	}
	return -1, false
}

// Contains reports whether p lies within the corridor: Distance(p) <= HalfWidthM.
func (c *Corridor) Contains(p orb.Point) bool {
	return c.Distance(p) <= c.HalfWidthM
}

func sqDist(a, b orb.Point) float64 {
	dx, dy := a[0]-b[0], a[1]-b[1]
	return dx*dx + dy*dy
}

// segNearest returns the parameter t in [0, 1] of the point of segment i nearest to p and the
// squared distance to it. Every search path uses this one function, so they agree exactly.
func (c *Corridor) segNearest(i int, p orb.Point) (t, d2 float64) {
	a, b := c.Line[i], c.Line[i+1]
	dx, dy := b[0]-a[0], b[1]-a[1]
	ex, ey := p[0]-a[0], p[1]-a[1]
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = (ex*dx + ey*dy) / l2
		t = min(max(t, 0), 1)
	}
	ex, ey = ex-t*dx, ey-t*dy
	return t, ex*ex + ey*ey
}

// nearestBrute scans every segment; seg is -1 when the line has no segment.
func (c *Corridor) nearestBrute(p orb.Point) (seg int, t, d2 float64) {
	seg, d2 = -1, math.Inf(1)
	for i := 0; i+1 < len(c.Line); i++ {
		if ti, di := c.segNearest(i, p); di < d2 {
			seg, t, d2 = i, ti, di
		}
	}
	return seg, t, d2
}

// nearestState is the best segment found so far by nearestTree.
type nearestState struct {
	seg   int
	t, d2 float64
}

// pruned reports whether a subtree whose box lies boxD2 (squared) from p can be skipped given
// the best squared distance so far. The slack covers rounding in segNearest, so a skipped
// segment can never have computed nearer than the best: pruning is exact.
func pruned(boxD2, bestD2 float64) bool {
	return boxD2 > bestD2*(1+1e-9)+1e-12
}

// nearestTree finds the nearest segment with a branch-and-bound descent of the segment RTree:
// children are visited nearest box first, and a subtree is skipped only when its box is
// farther than the best segment so far. Ties resolve to the lowest segment index, as in
// nearestBrute, so the results are identical.
func (c *Corridor) nearestTree(p orb.Point) (seg int, t, d2 float64) {
	st := nearestState{seg: -1, d2: math.Inf(1)}
	top := len(c.tree.levels) - 1
	c.nearestLevel(top, c.tree.levels[top], p, &st)
	return st.seg, st.t, st.d2
}

// nearestLevel searches the entries es of tree level lvl. Every level holds at most
// rtreeFanout entries per parent, and the top level at most rtreeFanout in all.
func (c *Corridor) nearestLevel(lvl int, es []rnode, p orb.Point, st *nearestState) {
	if lvl == 0 {
		for i := range es {
			e := &es[i]
			if pruned(e.dist2(p[0], p[1]), st.d2) {
				continue
			}
			s := int(e.lo)
			if t, d2 := c.segNearest(s, p); d2 < st.d2 || (d2 == st.d2 && s < st.seg) {
				st.seg, st.t, st.d2 = s, t, d2
			}
		}
		return
	}
	// Order the children by box distance: insertion sort on a fixed array, no allocation.
	var d2s [rtreeFanout]float64
	var idx [rtreeFanout]int
	n := 0
	for i := range es {
		d := es[i].dist2(p[0], p[1])
		j := n
		for j > 0 && d2s[j-1] > d {
			d2s[j], idx[j] = d2s[j-1], idx[j-1]
			j--
		}
		d2s[j], idx[j] = d, i
		n++
	}
	below := c.tree.levels[lvl-1]
	for k := range n {
		if pruned(d2s[k], st.d2) {
			return
		}
		e := &es[idx[k]]
		c.nearestLevel(lvl-1, below[e.lo:e.hi], p, st)
	}
}

// segmentAt returns the segment holding the point at distance along (clamped) and the
// clamped distance; -1 for a line without segments.
func (c *Corridor) segmentAt(along float64) (int, float64) {
	n := len(c.Line)
	if n < 2 {
		return -1, 0
	}
	along = min(max(along, 0), c.Length())
	// The last vertex with cum <= along, limited to the last segment.
	i := sort.SearchFloat64s(c.cum, along)
	if i == n || c.cum[i] > along {
		i--
	}
	return min(max(i, 0), n-2), along
}

// PointAt returns the point of the centreline at distance along from its start, clamped to
// the line; the zero point for an empty line. Simulators drive trucks with it.
func (c *Corridor) PointAt(along float64) orb.Point {
	i, along := c.segmentAt(along)
	if i < 0 {
		if len(c.Line) == 1 {
			return c.Line[0]
		}
		return orb.Point{}
	}
	a, b := c.Line[i], c.Line[i+1]
	l := c.cum[i+1] - c.cum[i]
	if l <= 0 {
		return a
	}
	t := min(max((along-c.cum[i])/l, 0), 1)
	return orb.Point{a[0] + t*(b[0]-a[0]), a[1] + t*(b[1]-a[1])}
}

// HeadingAt returns the direction of travel, in degrees clockwise from north in [0, 360), of
// the centreline at distance along from its start (clamped). At a vertex the outgoing segment
// counts (the last segment at the end); zero-length segments are skipped. A line without any
// length gives 0.
func (c *Corridor) HeadingAt(along float64) float64 {
	i, _ := c.segmentAt(along)
	if i < 0 {
		return 0
	}
	for j := i; j+1 < len(c.Line); j++ {
		if c.cum[j+1] > c.cum[j] {
			return heading(c.Line[j], c.Line[j+1])
		}
	}
	for j := i - 1; j >= 0; j-- {
		if c.cum[j+1] > c.cum[j] {
			return heading(c.Line[j], c.Line[j+1])
		}
	}
	return 0
}

// heading returns the bearing from a to b in projected metres, degrees clockwise from north.
func heading(a, b orb.Point) float64 {
	h := math.Atan2(b[0]-a[0], b[1]-a[1]) * 180 / math.Pi
	if h < 0 {
		h += 360
	}
	if h >= 360 {
		h -= 360
	}
	return h
}

// GroundDistance returns the distance in metres on the ground from the lon/lat point ll to the
// centreline, whose projected vertices proj maps back to lon/lat (proj must be the projection
// the line was built in). Distance works in the projection, which is exact near its origin
// but drifts east–west away from it (~2 % 300 km north of a city at 22.6°N); GroundDistance
// is right anywhere: each segment is measured on the local scale of its middle and the point
// (metres per degree of longitude at their mean latitude), and the distance to the nearest
// point so found is the great circle's. It costs a cosine per segment: use it for values
// reported, not for every test. An empty line gives +Inf.
func (c *Corridor) GroundDistance(proj Projection, ll orb.Point) float64 {
	const rad = math.Pi / 180
	switch len(c.Line) {
	case 0:
		return math.Inf(1)
	case 1:
		return DistanceM(ll, proj.Inverse(c.Line[0]))
	}
	best, bestD2 := orb.Point{}, math.Inf(1)
	a := proj.Inverse(c.Line[0])
	for i := 1; i < len(c.Line); i++ {
		b := proj.Inverse(c.Line[i])
		k := math.Cos(((a[1]+b[1])/2 + ll[1]) / 2 * rad)
		ax, ay := lonDelta(ll[0], a[0])*k, a[1]-ll[1]
		bx, by := lonDelta(ll[0], b[0])*k, b[1]-ll[1]
		dx, dy := bx-ax, by-ay
		var t float64
		if l2 := dx*dx + dy*dy; l2 > 0 {
			t = min(max(-(ax*dx+ay*dy)/l2, 0), 1)
		}
		if ex, ey := ax+t*dx, ay+t*dy; ex*ex+ey*ey < bestD2 {
			bestD2 = ex*ex + ey*ey
			best = orb.Point{a[0] + t*lonDelta(a[0], b[0]), a[1] + t*(b[1]-a[1])}
		}
		a = b
	}
	return DistanceM(ll, best)
}

// lonDelta returns the difference of longitude to − from in degrees, within [-180, 180].
func lonDelta(from, to float64) float64 {
	d := to - from
	if d > 180 {
		d -= 360
	} else if d < -180 {
		d += 360
	}
	return d
}
