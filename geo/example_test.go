package geo_test

import (
	"fmt"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/geo"
)

func Example() {
	// One projection per city; every shape and every fix goes through it once.
	proj := geo.NewProjection(orb.Point{114.06, 22.60})

	// Two zones drawn in lon/lat (WGS-84), indexed in metres.
	school := orb.Polygon{{{114.050, 22.590}, {114.054, 22.590}, {114.054, 22.594}, {114.050, 22.594}, {114.050, 22.590}}}
	park := orb.Polygon{{{114.070, 22.600}, {114.078, 22.600}, {114.078, 22.606}, {114.070, 22.606}, {114.070, 22.600}}}
	zones := geo.NewAreaIndex([]geo.Area{
		geo.NewArea("school", proj.MultiPolygon(orb.MultiPolygon{school})),
		geo.NewArea("park", proj.MultiPolygon(orb.MultiPolygon{park})),
	})

	// An approved route with a 30 m corridor.
	route := geo.NewCorridor("R7", proj.LineString(orb.LineString{{114.040, 22.595}, {114.080, 22.595}, {114.080, 22.610}}), 30)

	// A fix read off a GCJ-02 map, converted to WGS-84 and projected once.
	fixGCJ := geo.WGS84ToGCJ02(orb.Point{114.052, 22.592})
	fix := proj.Forward(geo.GCJ02ToWGS84(fixGCJ))

	buf := make([]int32, 0, 8) // reused across fixes: no allocation per query
	for _, i := range zones.Containing(fix, buf[:0]) {
		a := zones.Area(i)
		fmt.Printf("in zone %s, %.0f m from its edge\n", a.ID, a.DistanceToEdge(fix))
	}

	// The previous fix was far east; did the truck cross a zone in between?
	prev := proj.Forward(orb.Point{114.074, 22.603})
	for _, i := range zones.Crossing(prev, fix, buf[:0]) {
		fmt.Println("segment touches", zones.Area(i).ID)
	}

	dist, along := route.Locate(fix)
	fmt.Printf("route %s: %.0f m off the centreline, %.0f m along, inside corridor: %v\n",
		route.ID, dist, along, route.Contains(fix))
	fmt.Printf("heading there: %.0f°\n", route.HeadingAt(along))
	// Output:
	// in zone school, 205 m from its edge
	// segment touches school
	// segment touches park
	// route R7: 334 m off the centreline, 1232 m along, inside corridor: false
	// heading there: 90°
}
