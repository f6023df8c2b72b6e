package sim

import (
	"math"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/geo"
)

// Long hauls off the city's map (Options.AwayRate). Off the map a truck moves on the ground, in
// WGS-84, at its true speed: the city's plane is only right near its origin, and the ground truth
// must not depend on it (a speed measured in the plane 1,900 km out is 17 % off east–west).

// leave turns t off its route at xy (in the city's plane), on a haul away from the city.
func (s *Simulator) leave(t *truck, xy orb.Point) {
	h := t.away
	origin := s.c.Proj.Forward(s.c.Proj.Origin())
	// away from the city's origin, give or take 30°
	h.bearing = math.Atan2(xy[0]-origin[0], xy[1]-origin[1]) + (s.rng.Float64()-0.5)*math.Pi/3
	h.ll = s.c.Proj.Inverse(xy)
	h.out = (50 + 250*s.rng.Float64()) * 1000
	h.left = h.out
	h.back = s.rng.IntN(2) == 0
	h.speedAt = -1
	if s.rng.IntN(2) == 0 {
		h.speedAt = h.out * 0.5 * s.rng.Float64()
	}
	t.phase = phAway
}

// drive moves t on its haul for dt seconds at now, and keeps the ground truth of what it does
// there: off its route (route_deviation), speeding, its stop (dwell), a trip that reaches no
// disposal site in time (trip_unclosed).
func (s *Simulator) drive(t *truck, now time.Time, dt float64) error {
	h := t.away
	if t.out && !t.timedOut && now.Sub(t.leftSite) > s.o.MaxTrip {
		// The trip is overdue from then until the truck is back on its route: the rule decides at
		// a fix after the deadline (a fix or two after it, as the trip's start was seen a fix
		// or two after the truck got out of its site).
		t.timedOut = true
		s.openEpisode(&h.tripEp, "trip_unclosed", t, t.leftSite.Add(s.o.MaxTrip), "timeout", "long haul off the map: no disposal site in time")
	}
	if now.Before(h.stopTil) {
		t.speed = 0
		return nil
	}
	if !h.stopTil.IsZero() { // its stop is over
		s.closeEpisode(&t.episode, now)
		h.stopTil, h.stopped = time.Time{}, true
		if h.back {
			h.homeward, h.bearing, h.left = true, h.bearing+math.Pi, h.out
		} else {
			h.left = math.Inf(1)
		}
	}
	xy := s.c.Proj.Forward(h.ll)
	limit := s.limitAt(xy)
	target := math.Min(limit*0.85, 55)
	if !h.homeward && h.speedAt >= 0 && h.out-h.left >= h.speedAt {
		h.speedAt = -1
		t.inj, t.injActive, t.injUntil = injSpeeding, true, now.Add(3*time.Minute)
	}
	if t.injActive && t.inj == injSpeeding {
		target = limit * 1.45
		if now.After(t.injUntil) {
			t.inj, t.injActive = injNone, false
		}
	}
	if t.speed < target {
		t.speed = math.Min(target, t.speed+1.5*3.6*dt)
	} else {
		t.speed = math.Max(target, t.speed-2.5*3.6*dt)
	}
	s.trackSpeeding(t, now, limit)
	d := math.Min(t.speed/3.6*dt, h.left)
	h.ll = groundOffset(h.ll, d*math.Sin(h.bearing), d*math.Cos(h.bearing))
	h.left -= d
	off := t.route.Corridor.Distance(s.c.Proj.Forward(h.ll)) > t.route.Corridor.HalfWidthM
	switch {
	case off && h.ep < 0:
		s.openEpisode(&h.ep, "route_deviation", t, now, t.route.ID, "long haul off the city's map")
	case !off && h.ep >= 0:
		s.closeEpisode(&h.ep, now)
	}
	if h.left > 0 {
		return nil
	}
	if h.homeward { // back where it left its route: on with its trip
		s.closeEpisode(&h.ep, now)
		s.closeEpisode(&h.tripEp, now)
		t.away, t.phase, t.offset = nil, phHauling, 0
		return nil
	}
	if !h.stopped { // arrived: a stop at another city's site, which this city's map does not know
		s.closeEpisode(&t.episode, now) // a speeding that was still open ends with the stop
		t.speed = 0
		h.stopTil = now.Add(20*time.Minute + time.Duration(s.rng.Int64N(int64(20*time.Minute))))
		s.openEpisode(&t.episode, "dwell", t, now.Add(s.o.DwellThreshold), "", "stopped off the map, at another city's site")
	}
	return nil
}

// groundOffset moves ll (lon, lat) east and north by metres on the ground, at its own latitude.
func groundOffset(ll orb.Point, east, north float64) orb.Point {
	const rad = math.Pi / 180
	lat := ll[1] + north/(geo.EarthRadiusM*rad)
	lon := ll[0] + east/(geo.EarthRadiusM*rad*math.Cos(ll[1]*rad))
	if lon > 180 {
		lon -= 360
	} else if lon < -180 {
		lon += 360
	}
	return orb.Point{lon, lat}
}
