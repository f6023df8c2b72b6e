package sim

import (
	"math"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/geo"
)

// How both simulators put a vehicle on its route: which route it drives, and where it is and
// which way it heads at a distance along it.

// permittedRoute returns vehicle plate's permit in force at t (nil if none) and the route it
// drives: that permit's, else that of its first permit (expired, and driven all the same), nil if
// it holds no permit.
func permittedRoute(c *city.City, plate string, t time.Time) (*city.Permit, *city.Route) {
	if p := c.ActivePermit(plate, t); p != nil {
		return p, c.Route(p.RouteID)
	}
	if ps := c.PermitsOf(plate); len(ps) > 0 {
		return nil, c.Route(ps[0].RouteID)
	}
	return nil, nil
}

// routePoint returns the point along metres along corridor c, offset metres to the right of the
// route's direction (from its start to its end), in projected metres.
func routePoint(c *geo.Corridor, along, offset float64) orb.Point {
	p := c.PointAt(along)
	if offset != 0 {
		h := c.HeadingAt(along) * math.Pi / 180
		// right of the direction of travel: heading + 90°
		p[0] += math.Cos(h) * offset
		p[1] -= math.Sin(h) * offset
	}
	return p
}

// travelHeading returns the heading, in degrees clockwise from north, of a vehicle along metres
// along corridor c: the route's direction, or its reverse if the vehicle is on its way back.
func travelHeading(c *geo.Corridor, along float64, back bool) float64 {
	h := c.HeadingAt(along)
	if back {
		h = math.Mod(h+180, 360)
	}
	return h
}

// shuttle folds d, metres driven from a route's start back and forth along a route of length l,
// into the distance along the route and whether the vehicle is on its way back.
func shuttle(d, l float64) (along float64, back bool) {
	if l <= 0 {
		return 0, false
	}
	along = math.Mod(d, 2*l)
	if along < 0 {
		along += 2 * l
	}
	if along > l {
		return 2*l - along, true
	}
	return along, false
}
