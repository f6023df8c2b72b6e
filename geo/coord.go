// Package geo owns muckwatch's geometry and is a leaf: it imports nothing of the project.
// It provides the WGS-84 ⇄ GCJ-02 conversions and great-circle distance on lon/lat points
// (orb.Point{lon, lat}), a local equirectangular Projection to planar metres
// (orb.Point{x, y}, x east, y north, relative to a city origin), a static STR-packed RTree,
// polygonal Areas with an AreaIndex (candidates by bound from the tree, exact point-in-polygon
// and segment tests on the candidates only), and route Corridors (a centreline with a
// half-width).
//
// Detectors project each fix once and do all further geometry in metres. Every value built
// here is immutable after construction and safe for concurrent use; the package holds no
// mutable package-level state, and the hot-path queries do not allocate when given a
// destination slice with enough capacity.
package geo

import (
	"math"

	"github.com/paulmach/orb"
)

// EarthRadiusM is the mean Earth radius (IUGG R1) used by DistanceM and Projection.
const EarthRadiusM = 6371008.8

// Krasovsky 1940 ellipsoid parameters of the public GCJ-02 transformation.
const (
	gcjA  = 6378245.0
	gcjEE = 0.00669342162296594323
)

// Bounding box used by the standard "out of China" test of GCJ-02 implementations.
const (
	chinaMinLon = 72.004
	chinaMaxLon = 137.8347
	chinaMinLat = 0.8293
	chinaMaxLat = 55.8271
)

// OutOfChina reports whether the lon/lat point lies outside the box where GCJ-02 applies an
// offset (the standard bounding-box test). Outside it, GCJ-02 equals WGS-84.
func OutOfChina(p orb.Point) bool {
	lon, lat := p[0], p[1]
	return !(lon >= chinaMinLon && lon <= chinaMaxLon && lat >= chinaMinLat && lat <= chinaMaxLat)
}

// gcjOffset returns the GCJ-02 offset in degrees (dLon, dLat) at the WGS-84 point lon, lat.
func gcjOffset(lon, lat float64) (dLon, dLat float64) {
	x, y := lon-105.0, lat-35.0
	sx := math.Sqrt(math.Abs(x))
	common := (20.0*math.Sin(6.0*x*math.Pi) + 20.0*math.Sin(2.0*x*math.Pi)) * 2.0 / 3.0

	tLat := -100.0 + 2.0*x + 3.0*y + 0.2*y*y + 0.1*x*y + 0.2*sx
	tLat += common
	tLat += (20.0*math.Sin(y*math.Pi) + 40.0*math.Sin(y/3.0*math.Pi)) * 2.0 / 3.0
	tLat += (160.0*math.Sin(y/12.0*math.Pi) + 320.0*math.Sin(y*math.Pi/30.0)) * 2.0 / 3.0

	tLon := 300.0 + x + 2.0*y + 0.1*x*x + 0.1*x*y + 0.1*sx
	tLon += common
	tLon += (20.0*math.Sin(x*math.Pi) + 40.0*math.Sin(x/3.0*math.Pi)) * 2.0 / 3.0
	tLon += (150.0*math.Sin(x/12.0*math.Pi) + 300.0*math.Sin(x/30.0*math.Pi)) * 2.0 / 3.0

	radLat := lat / 180.0 * math.Pi
	magic := math.Sin(radLat)
	magic = 1 - gcjEE*magic*magic
	sqrtMagic := math.Sqrt(magic)
	dLat = (tLat * 180.0) / ((gcjA * (1 - gcjEE)) / (magic * sqrtMagic) * math.Pi)
	dLon = (tLon * 180.0) / (gcjA / sqrtMagic * math.Cos(radLat) * math.Pi)
	return dLon, dLat
}

// WGS84ToGCJ02 converts a WGS-84 lon/lat point to GCJ-02 (the "Mars" coordinates of Chinese
// web maps). Points outside China are returned unchanged.
func WGS84ToGCJ02(p orb.Point) orb.Point {
	if OutOfChina(p) {
		return p
	}
	dLon, dLat := gcjOffset(p[0], p[1])
	return orb.Point{p[0] + dLon, p[1] + dLat}
}

// gcjInverseTol is the convergence threshold of GCJ02ToWGS84 in degrees (~1 mm).
const gcjInverseTol = 1e-8

// gcjInverseMaxIter bounds the fixed-point iteration; it converges in 3–5 steps in practice.
const gcjInverseMaxIter = 30

// GCJ02ToWGS84 converts a GCJ-02 lon/lat point back to WGS-84 by fixed-point iteration on
// the forward transformation, so that WGS84ToGCJ02(GCJ02ToWGS84(p)) ≈ p to about a millimetre;
// the round-trip error is far below 0.5 m everywhere inside China. Points outside China are
// returned unchanged.
func GCJ02ToWGS84(p orb.Point) orb.Point {
	if OutOfChina(p) {
		return p
	}
	w := p
	for range gcjInverseMaxIter {
		g := WGS84ToGCJ02(w)
		dx, dy := g[0]-p[0], g[1]-p[1]
		w[0] -= dx
		w[1] -= dy
		if math.Abs(dx) < gcjInverseTol && math.Abs(dy) < gcjInverseTol {
			break
		}
	}
	return w
}

// DistanceM returns the great-circle distance in metres between two lon/lat points
// (haversine on a sphere of radius EarthRadiusM).
func DistanceM(a, b orb.Point) float64 {
	lat1 := a[1] * math.Pi / 180
	lat2 := b[1] * math.Pi / 180
	sinDLat := math.Sin((lat2 - lat1) / 2)
	sinDLon := math.Sin((b[0] - a[0]) * math.Pi / 180 / 2)
	h := sinDLat*sinDLat + math.Cos(lat1)*math.Cos(lat2)*sinDLon*sinDLon
	if h > 1 {
		h = 1
	}
	return 2 * EarthRadiusM * math.Asin(math.Sqrt(h))
}
