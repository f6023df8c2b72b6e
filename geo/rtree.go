package geo

import (
	"cmp"
	"math"
	"slices"

	"github.com/paulmach/orb"
)

// rtreeFanout is the maximum number of children per RTree node.
const rtreeFanout = 16

// rbox is an axis-aligned box. A box with a NaN coordinate matches nothing.
type rbox struct {
	minX, minY, maxX, maxY float64
}

// intersects reports whether b and q overlap, edges included.
func (b *rbox) intersects(q *rbox) bool {
	return b.minX <= q.maxX && b.maxX >= q.minX && b.minY <= q.maxY && b.maxY >= q.minY
}

// dist2 returns the squared distance from (x, y) to the box (0 inside it).
func (b *rbox) dist2(x, y float64) float64 {
	var dx, dy float64
	if x < b.minX {
		dx = b.minX - x
	} else if x > b.maxX {
		dx = x - b.maxX
	}
	if y < b.minY {
		dy = b.minY - y
	} else if y > b.maxY {
		dy = y - b.maxY
	}
	return dx*dx + dy*dy
}

// valid reports whether the box can contain anything.
func (b *rbox) valid() bool { return b.minX <= b.maxX && b.minY <= b.maxY }

func boxOf(b orb.Bound) rbox {
	return rbox{minX: b.Min[0], minY: b.Min[1], maxX: b.Max[0], maxY: b.Max[1]}
}

// rnode is an entry of one tree level: on level 0 an item (lo is its id), above it a node
// whose children are the entries lo..hi-1 of the level below. Its box is kept in float32,
// rounded outward, so that it always contains the float64 box it stands for: a query may find
// a candidate a few micrometres farther than its own box (the exact tests follow), never miss
// one, and an entry takes 24 bytes instead of 40.
type rnode struct {
	minX, minY, maxX, maxY float32
	lo, hi                 int32
}

// nodeOf returns the entry for box b, its coordinates rounded outward to float32.
func nodeOf(b rbox, lo, hi int32) rnode {
	return rnode{minX: down32(b.minX), minY: down32(b.minY), maxX: up32(b.maxX), maxY: up32(b.maxY), lo: lo, hi: hi}
}

// down32 and up32 round x to the float32 at or below, at or above it (NaN stays NaN).
func down32(x float64) float32 {
	f := float32(x)
	if float64(f) > x {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

func up32(x float64) float32 {
	f := float32(x)
	if float64(f) < x {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

// intersects reports whether the entry's box and q overlap, edges included.
func (n *rnode) intersects(q *rbox) bool {
	return float64(n.minX) <= q.maxX && float64(n.maxX) >= q.minX && float64(n.minY) <= q.maxY && float64(n.maxY) >= q.minY
}

// dist2 returns the squared distance from (x, y) to the entry's box (0 inside it).
func (n *rnode) dist2(x, y float64) float64 {
	b := rbox{float64(n.minX), float64(n.minY), float64(n.maxX), float64(n.maxY)}
	return b.dist2(x, y)
}

// valid reports whether the entry's box can contain anything.
func (n *rnode) valid() bool { return n.minX <= n.maxX && n.minY <= n.maxY }

// RTree is a static R-tree over item bounds, bulk-loaded with Sort-Tile-Recursive packing
// (fan-out 16) and stored level by level in flat slices, its boxes in float32 rounded outward.
// Item ids are the indices into the bounds slice given to NewRTree. Queries append matching ids
// to dst and do not allocate when dst has enough capacity; the order of the ids is unspecified.
//
// An RTree is immutable and safe for concurrent use.
type RTree struct {
	n      int
	levels [][]rnode // levels[0] are the items; the last level holds the root entries
}

// NewRTree builds the tree over bounds; bounds is not retained. Empty or inverted bounds
// (such as orb's empty bound) are kept as ids but never match a query.
func NewRTree(bounds []orb.Bound) *RTree {
	t := &RTree{n: len(bounds)}
	if len(bounds) == 0 {
		return t
	}
	items := make([]rnode, len(bounds))
	for i, b := range bounds {
		box := boxOf(b)
		if !box.valid() {
			// An inverted box could still overlap a query box spanning it; NaN never does.
			nan := math.NaN()
			box = rbox{nan, nan, nan, nan}
		}
		items[i] = nodeOf(box, int32(i), int32(i))
	}
	strSort(items)
	t.levels = append(t.levels, items)
	for cur := items; len(cur) > rtreeFanout; {
		parents := make([]rnode, 0, (len(cur)+rtreeFanout-1)/rtreeFanout)
		for lo := 0; lo < len(cur); lo += rtreeFanout {
			hi := min(lo+rtreeFanout, len(cur))
			parents = append(parents, parentOf(cur[lo:hi], int32(lo), int32(hi)))
		}
		// Sorting the parents moves whole entries, child ranges included, so the level
		// below stays valid.
		strSort(parents)
		t.levels = append(t.levels, parents)
		cur = parents
	}
	return t
}

// parentOf returns the node covering children, which are the entries lo..hi-1 of their level.
// Children that match nothing do not widen it.
func parentOf(children []rnode, lo, hi int32) rnode {
	inf := float32(math.Inf(1))
	n := rnode{minX: inf, minY: inf, maxX: -inf, maxY: -inf, lo: lo, hi: hi}
	for i := range children {
		c := &children[i]
		if !c.valid() {
			continue
		}
		n.minX = min(n.minX, c.minX)
		n.minY = min(n.minY, c.minY)
		n.maxX = max(n.maxX, c.maxX)
		n.maxY = max(n.maxY, c.maxY)
	}
	return n
}

// strSort orders entries for Sort-Tile-Recursive packing: sorted by centre x into
// ⌈√P⌉ vertical slices of whole nodes (P = number of nodes to fill), each slice sorted by
// centre y, so that consecutive runs of rtreeFanout entries form compact nodes.
func strSort(es []rnode) {
	if len(es) <= rtreeFanout {
		return
	}
	slices.SortFunc(es, func(a, b rnode) int {
		return cmp.Compare(float64(a.minX)+float64(a.maxX), float64(b.minX)+float64(b.maxX))
	})
	nodes := (len(es) + rtreeFanout - 1) / rtreeFanout
	slicesN := int(math.Ceil(math.Sqrt(float64(nodes))))
	per := ((nodes + slicesN - 1) / slicesN) * rtreeFanout
	for lo := 0; lo < len(es); lo += per {
		s := es[lo:min(lo+per, len(es))]
		slices.SortFunc(s, func(a, b rnode) int {
			return cmp.Compare(float64(a.minY)+float64(a.maxY), float64(b.minY)+float64(b.maxY))
		})
	}
}

// Len returns the number of items the tree was built over.
func (t *RTree) Len() int { return t.n }

// SearchPoint appends to dst the ids of the items whose bound contains p, edges included, and
// perhaps of items whose bound misses p by less than the float32 rounding of the tree's boxes
// (a relative 6e-8): candidates for an exact test.
func (t *RTree) SearchPoint(p orb.Point, dst []int32) []int32 {
	q := rbox{p[0], p[1], p[0], p[1]}
	return t.search(&q, dst)
}

// SearchBound appends to dst the ids of the items whose bound intersects b, edges included, and
// perhaps of items that miss it by less than the float32 rounding of the tree's boxes.
func (t *RTree) SearchBound(b orb.Bound, dst []int32) []int32 {
	q := boxOf(b)
	return t.search(&q, dst)
}

func (t *RTree) search(q *rbox, dst []int32) []int32 {
	if len(t.levels) == 0 || !q.valid() {
		return dst
	}
	top := len(t.levels) - 1
	return t.searchLevel(top, t.levels[top], q, dst)
}

// searchLevel appends the ids under the entries es of level lvl that intersect q.
func (t *RTree) searchLevel(lvl int, es []rnode, q *rbox, dst []int32) []int32 {
	for i := range es {
		e := &es[i]
		if !e.intersects(q) {
			continue
		}
		if lvl == 0 {
			dst = append(dst, e.lo)
		} else {
			dst = t.searchLevel(lvl-1, t.levels[lvl-1][e.lo:e.hi], q, dst)
		}
	}
	return dst
}
