package detectors

import "github.com/muckwatch/muckwatch/city"

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
		tr.ref, tr.vehicle, tr.permits = nil, nil, nil
	}
}

// lookUp returns the track's registration and permits in c, looking them up when the track's are
// from other reference data.
func (tr *Track) lookUp(c *city.City) (*city.Vehicle, []*city.Permit) {
	if tr.ref != c {
		tr.ref, tr.vehicle, tr.permits = c, c.Vehicle(tr.VehicleID), c.PermitsOf(tr.VehicleID)
	}
	return tr.vehicle, tr.permits
}
