package city

import (
	"fmt"
	"math"

	"github.com/paulmach/orb"
)

// checkCoord rejects coordinates that are not finite or outside lon -180..180, lat -90..90.
func checkCoord(p orb.Point) error {
	lon, lat := p[0], p[1]
	if math.IsNaN(lon) || math.IsNaN(lat) || math.IsInf(lon, 0) || math.IsInf(lat, 0) {
		return fmt.Errorf("coordinate %s is not finite", fmtPoint(p))
	}
	if lon < -180 || lon > 180 || lat < -90 || lat > 90 {
		hint := ""
		if math.Abs(lon) <= 90 && math.Abs(lat) <= 180 {
			hint = " (lat and lon swapped? GeoJSON is [lon, lat])"
		}
		return fmt.Errorf("coordinate %s out of range: lon must be -180..180, lat -90..90%s", fmtPoint(p), hint)
	}
	return nil
}

func fmtPoint(p orb.Point) string {
	return fmt.Sprintf("[%s, %s]", fmtFloat(p[0]), fmtFloat(p[1]))
}

func fmtFloat(f float64) string {
	return fmt.Sprintf("%.7g", f)
}

// checkRing validates one polygon ring: at least 4 points, closed, coordinates in range, at
// least 3 distinct vertices and no self-intersection (an O(n²) segment check).
func checkRing(ring orb.Ring) error {
	if len(ring) < 4 {
		return fmt.Errorf("has %d points, a ring needs at least 4 (the first repeated as the last)", len(ring))
	}
	for i, p := range ring {
		if err := checkCoord(p); err != nil {
			return fmt.Errorf("point %d: %v", i, err)
		}
	}
	if ring[0] != ring[len(ring)-1] {
		return fmt.Errorf("is not closed: first point %s differs from last %s", fmtPoint(ring[0]), fmtPoint(ring[len(ring)-1]))
	}
	// Vertices without consecutive duplicates; v[0] is repeated at the end.
	v := make([]orb.Point, 0, len(ring))
	idx := make([]int, 0, len(ring)) // index in ring of each kept vertex
	for i, p := range ring {
		if len(v) > 0 && v[len(v)-1] == p {
			continue
		}
		v = append(v, p)
		idx = append(idx, i)
	}
	m := len(v) - 1 // number of edges
	if m < 3 {
		return fmt.Errorf("has fewer than 3 distinct points")
	}
	// Edge i runs v[i] -> v[i+1].
	for i := 0; i < m; i++ {
		a, b := v[i], v[i+1]
		minX, maxX := math.Min(a[0], b[0]), math.Max(a[0], b[0])
		minY, maxY := math.Min(a[1], b[1]), math.Max(a[1], b[1])
		for j := i + 1; j < m; j++ {
			c, d := v[j], v[j+1]
			if math.Max(c[0], d[0]) < minX || math.Min(c[0], d[0]) > maxX ||
				math.Max(c[1], d[1]) < minY || math.Min(c[1], d[1]) > maxY {
				continue
			}
			adjacentNext := j == i+1
			adjacentWrap := i == 0 && j == m-1
			bad := false
			switch {
			case adjacentNext: // share b == c; bad if d folds back along a-b
				bad = orient(a, b, d) == 0 && dot(a, b, d) > 0
			case adjacentWrap: // share a == d; bad if c folds back along a-b
				bad = orient(a, b, c) == 0 && dot(b, a, c) > 0
			default:
				bad = segmentsIntersect(a, b, c, d)
			}
			if bad {
				return fmt.Errorf("crosses itself: edge from point %d %s to %s and edge from point %d %s to %s intersect",
					idx[i], fmtPoint(a), fmtPoint(b), idx[j], fmtPoint(c), fmtPoint(d))
			}
		}
	}
	return nil
}

// orient is the sign of the cross product (b-a) x (c-a): >0 left turn, <0 right, 0 collinear.
func orient(a, b, c orb.Point) int {
	v := (b[0]-a[0])*(c[1]-a[1]) - (b[1]-a[1])*(c[0]-a[0])
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// dot is (a-p)·(c-p): positive when a and c lie on the same side of p.
func dot(a, p, c orb.Point) float64 {
	return (a[0]-p[0])*(c[0]-p[0]) + (a[1]-p[1])*(c[1]-p[1])
}

func onSegment(a, b, p orb.Point) bool {
	return math.Min(a[0], b[0]) <= p[0] && p[0] <= math.Max(a[0], b[0]) &&
		math.Min(a[1], b[1]) <= p[1] && p[1] <= math.Max(a[1], b[1])
}

// segmentsIntersect reports whether the closed segments a-b and c-d share any point.
func segmentsIntersect(a, b, c, d orb.Point) bool {
	o1, o2 := orient(a, b, c), orient(a, b, d)
	o3, o4 := orient(c, d, a), orient(c, d, b)
	if o1*o2 < 0 && o3*o4 < 0 {
		return true
	}
	return (o1 == 0 && onSegment(a, b, c)) || (o2 == 0 && onSegment(a, b, d)) ||
		(o3 == 0 && onSegment(c, d, a)) || (o4 == 0 && onSegment(c, d, b))
}
