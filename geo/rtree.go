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
// whose children are the entries lo..hi-1 of the level below.
type rnode struct {
	rbox
	lo, hi int32
}

// RTree is a static R-tree over item bounds, bulk-loaded with Sort-Tile-Recursive packing
// (fan-out 16) and stored level by level in flat slices. Item ids are the indices into the
// bounds slice given to NewRTree. Queries append matching ids to dst and do not allocate when
// dst has enough capacity; the order of the ids is unspecified.
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
		items[i] = rnode{rbox: boxOf(b), lo: int32(i), hi: int32(i)}
		if !items[i].valid() {
			// An inverted box could still overlap a query box spanning it; NaN never does.
			nan := math.NaN()
			items[i].rbox = rbox{nan, nan, nan, nan}
		}
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
	n := rnode{rbox: rbox{math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)}, lo: lo, hi: hi}
	for i := range children {
		c := &children[i].rbox
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
	slices.SortFunc(es, func(a, b rnode) int { return cmp.Compare(a.minX+a.maxX, b.minX+b.maxX) })
	nodes := (len(es) + rtreeFanout - 1) / rtreeFanout
	slicesN := int(math.Ceil(math.Sqrt(float64(nodes))))
	per := ((nodes + slicesN - 1) / slicesN) * rtreeFanout
	for lo := 0; lo < len(es); lo += per {
		s := es[lo:min(lo+per, len(es))]
		slices.SortFunc(s, func(a, b rnode) int { return cmp.Compare(a.minY+a.maxY, b.minY+b.maxY) })
	}
}

// Len returns the number of items the tree was built over.
func (t *RTree) Len() int { return t.n }

// SearchPoint appends to dst the ids of the items whose bound contains p, edges included.
func (t *RTree) SearchPoint(p orb.Point, dst []int32) []int32 {
	q := rbox{p[0], p[1], p[0], p[1]}
	return t.search(&q, dst)
}

// SearchBound appends to dst the ids of the items whose bound intersects b, edges included.
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
