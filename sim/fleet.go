package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/geo"
)

// Fleet is a light fleet for load, beside the Simulator's detailed day: every vehicle of a city
// drives its permitted route back and forth at a steady speed, as a function of device time alone,
// so that any fix at any time is consistent with the one before it (no GPS jumps), and two
// processes that build the same fleet (same city, same seed) drive the same vehicles in the same
// places. It has no trips, sites, events nor ground truth: what it keeps is a few numbers per
// vehicle, and it writes a fix into the caller's buffer without allocating, so that a hundred
// thousand fixes a second cost little. Some vehicles speed (FleetOptions.SpeederEvery), for
// alerts to measure.
//
// A Fleet is not safe for concurrent use.
type Fleet struct {
	plates  []string
	keys    [][]byte
	route   []int32   // index into corr
	along0  []float64 // metres driven from the route's start (back and forth) at the origin
	kmh     []float64 // normal speed
	onset   []int64   // Unix ms from which the vehicle speeds at fastKmh (math.MaxInt64: never; math.MinInt64: always)
	last    []int64   // device time of each vehicle's last fix, Unix ms
	corr    []*geo.Corridor
	proj    geo.Projection
	fastKmh float64
	every   int
	t0      int64 // the device-time origin, Unix ms
	rng     *rand.Rand
}

// FleetOptions configure a Fleet.
type FleetOptions struct {
	Seed uint64
	// At is when the vehicles' permits are looked up: each vehicle drives the route of its permit
	// in force then, else of an expired one, else one of the city's routes.
	At time.Time
	// SpeederEvery: vehicle i speeds at FastKmh throughout if i%SpeederEvery == 0, and from a
	// later moment (SpeedLater) if i%SpeederEvery == SpeederEvery/2; 0: no vehicle speeds.
	SpeederEvery int
	FastKmh      float64
}

// NewFleet returns a fleet of c's registered vehicles, in the city's order, at device-time
// origin o.At (SetOrigin moves it).
func NewFleet(c *city.City, o FleetOptions) (*Fleet, error) {
	switch {
	case len(c.Routes) == 0:
		return nil, errors.New("cannot drive a fleet: the city has no routes")
	case len(c.Vehicles) == 0:
		return nil, errors.New("cannot drive a fleet: the city has no vehicles")
	}
	n := len(c.Vehicles)
	f := &Fleet{plates: make([]string, n), keys: make([][]byte, n), route: make([]int32, n), along0: make([]float64, n),
		kmh: make([]float64, n), onset: make([]int64, n), last: make([]int64, n), proj: c.Proj,
		fastKmh: o.FastKmh, every: o.SpeederEvery, t0: o.At.UnixMilli(), rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0xbe7c))}
	byID := map[string]int32{}
	for i, v := range c.Vehicles {
		_, rt := permittedRoute(c, v.Plate, o.At)
		if rt == nil {
			rt = c.Routes[i%len(c.Routes)]
		}
		k, ok := byID[rt.ID]
		if !ok {
			k = int32(len(f.corr))
			byID[rt.ID] = k
			f.corr = append(f.corr, rt.Corridor)
		}
		f.plates[i], f.keys[i], f.route[i] = v.Plate, []byte(v.Plate), k
		f.along0[i] = f.rng.Float64() * 2 * rt.Corridor.Length()
		f.kmh[i] = 22 + 8*f.rng.Float64() // below every limit (30 km/h zones) with room for the tolerance
		f.onset[i] = math.MaxInt64
		if f.every > 0 && i%f.every == 0 {
			f.onset[i] = math.MinInt64
		}
	}
	return f, nil
}

// Len returns the number of vehicles.
func (f *Fleet) Len() int { return len(f.plates) }

// Plates returns the vehicles' plates, in the fleet's order; the caller must not modify them.
func (f *Fleet) Plates() []string { return f.plates }

// Key returns vehicle i's plate as bytes, the key of its records; the caller must not modify it.
func (f *Fleet) Key(i int) []byte { return f.keys[i] }

// SetOrigin sets the device time the vehicles' positions count from.
func (f *Fleet) SetOrigin(t0 time.Time) { f.t0 = t0.UnixMilli() }

// Origin returns the device time the vehicles' positions count from.
func (f *Fleet) Origin() time.Time { return time.UnixMilli(f.t0) }

// SpeedLater makes the vehicles halfway between two speeders (i%SpeederEvery == SpeederEvery/2)
// start speeding at a random device time within spread from Unix ms from.
func (f *Fleet) SpeedLater(from int64, spread time.Duration) {
	if f.every == 0 {
		return
	}
	for i := range f.plates {
		if i%f.every == f.every/2 {
			f.onset[i] = from + time.Duration(f.rng.Float64()*float64(spread)).Milliseconds()
		}
	}
}

// ResumeAt makes every vehicle's next fix at device time t (Unix ms) or later.
func (f *Fleet) ResumeAt(t int64) {
	for i := range f.last {
		f.last[i] = t - 1
	}
}

// LastFix returns the latest device time (Unix ms) of any vehicle's fix so far.
func (f *Fleet) LastFix() int64 { return slices.Max(f.last) }

// Next returns the device time of vehicle i's next fix at t (Unix ms) or later: strictly after
// its last, so that no two of its fixes share a time.
func (f *Fleet) Next(i int, t int64) int64 {
	t = max(t, f.last[i]+1)
	f.last[i] = t
	return t
}

// AppendFix appends vehicle i's fix at device time t (Unix ms) to b, with 3 m of GPS noise, as
// its terminal sends it.
func (f *Fleet) AppendFix(b []byte, i int, t int64) []byte {
	xy, heading, kmh := f.at(i, t)
	xy[0] += f.rng.NormFloat64() * 3
	xy[1] += f.rng.NormFloat64() * 3
	return appendFix(b, f.plates[i], t, f.proj.Inverse(xy), kmh, heading, false)
}

// at returns where vehicle i is at Unix ms t, in projected metres, its heading and its speed.
func (f *Fleet) at(i int, t int64) (xy orb.Point, heading, kmh float64) {
	c := f.corr[f.route[i]]
	secs := float64(t-f.t0) / 1000
	d := f.along0[i]
	switch on := f.onset[i]; {
	case on == math.MinInt64:
		d += f.fastKmh / 3.6 * secs
		kmh = f.fastKmh
	case t >= on:
		onSecs := float64(on-f.t0) / 1000
		d += f.kmh[i]/3.6*onSecs + f.fastKmh/3.6*(secs-onSecs)
		kmh = f.fastKmh
	default:
		d += f.kmh[i] / 3.6 * secs
		kmh = f.kmh[i]
	}
	along, back := shuttle(d, c.Length())
	return routePoint(c, along, 0), travelHeading(c, along, back), kmh
}
