package detectors

import (
	"math"
	"time"

	"github.com/muckwatch/muckwatch/city"
)

// The reference data (the city's sites, zones, routes, registrations and permits) is swapped by
// another goroutine when its files change; vehicle state is kept across a reload. A track looks
// its vehicle's registration and permits up once, not at every fix, and looks them up again in
// the reference data in force once it changes.

// SetCity swaps the reference data. Vehicle state is kept.
func (e *Engine) SetCity(c *city.City) { e.city.Store(c) }

// City returns the reference data in force.
func (e *Engine) City() *city.City { return e.city.Load() }

// followCity notes a reload at the start of a batch: the registrations the tracks looked up in the
// old reference data are forgotten, so that it is not kept alive by trucks that do not report
// again.
func (e *Engine) followCity() {
	c := e.city.Load()
	if c == e.refCity {
		return
	}
	e.refCity = c
	for _, tr := range e.tracks {
		tr.ref, tr.vehicle, tr.permit, tr.route, tr.permitFrom, tr.permitTo = nil, nil, nil, nil, 0, 0
	}
}

// lookUp returns the track's registration in c and its permit valid at t (city.ActiveAmong of its
// permits), looking them up when the track's are from other reference data or t is outside the
// span its permit was found for. A truck's fixes stay within one span for days, so that most
// fixes look at no permit.
func (tr *Track) lookUp(c *city.City, t time.Time) (*city.Vehicle, *city.Permit, *city.Route) {
	if tr.ref != c {
		tr.ref, tr.vehicle, tr.permitFrom, tr.permitTo = c, c.Vehicle(tr.VehicleID), 0, 0
	}
	ns, ok := unixNano(t)
	if ok && tr.permitFrom <= ns && ns < tr.permitTo {
		return tr.vehicle, tr.permit, tr.route
	}
	p, from, to := city.ActiveSpan(c.PermitsOf(tr.VehicleID), t)
	tr.permit, tr.route, tr.permitFrom, tr.permitTo = p, nil, 0, 0
	if p != nil {
		tr.route = c.Route(p.RouteID)
	}
	if ok {
		tr.permitFrom, _ = unixNano(from)
		tr.permitTo, _ = unixNano(to)
	}
	return tr.vehicle, p, tr.route
}

// The times UnixNano represents: a span end beyond them is clamped to math.MinInt64 or
// math.MaxInt64, which keeps every comparison with a time within them as it was.
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// unixNano returns t in Unix nanoseconds, clamped to what an int64 holds; ok is false when it
// was clamped.
func unixNano(t time.Time) (int64, bool) {
	switch {
	case t.Before(minNano):
		return math.MinInt64, false
	case t.After(maxNano):
		return math.MaxInt64, false
	}
	return t.UnixNano(), true
}
