// Package sim is the city simulator: it drives a fleet of muck trucks over a city's approved
// routes — loading at construction sites, hauling, unloading at disposal sites, returning — and
// reports them as the wire contract's GPS fixes and camera/sensor events, with violations injected
// on purpose. It writes the ground truth of every violation episode it caused, so detection can be
// measured against it. It is deterministic for a seed, and knows nothing of Kafka: records go to
// an Emitter.
//
// It also generates sample cities for it to drive in (GenerateSampleCity): the one shipped in
// configs/cities/shenzhen, and larger ones for benchmarks.
package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
)

// Record is one wire record for a topic.
type Record struct {
	Topic string // "gps", "events" or "officers": the caller maps these to topic names
	Key   string
	Value []byte
	Time  time.Time // device time
}

// Emitter receives the simulator's records in time order.
type Emitter interface {
	Emit(r Record) error
}

// EmitterFunc adapts a function to Emitter.
type EmitterFunc func(r Record) error

// Emit calls f.
func (f EmitterFunc) Emit(r Record) error { return f(r) }

// Episode is one violation the simulator caused: the ground truth.
type Episode struct {
	Rule      string    `json:"rule"`
	VehicleID string    `json:"vehicle_id"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"` // zero if still going at the end of the run
	Place     string    `json:"place,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// Options configures a run.
type Options struct {
	Seed     uint64
	Start    time.Time     // simulated time of the first record
	Duration time.Duration // simulated time span
	// Interval is how often a terminal reports (10–30 s in normal mode, 1 s when alarmed).
	Interval time.Duration
	// Vehicles limits the fleet to the first N registered vehicles (0: all).
	Vehicles int
	// Unregistered adds this many trucks with plates the city does not know.
	Unregistered int
	// Officers is how many enforcement officers report positions.
	Officers int
	// ViolationRate is the probability that a trip carries one injected violation.
	ViolationRate float64
	// NoiseM is the standard deviation of GPS position noise in metres.
	NoiseM float64
	// JumpRate, OutOfOrderRate and DuplicateRate are the shares of fixes that jump far off
	// (300 m to 3 km), are sent after the next fix, or are sent twice.
	JumpRate, OutOfOrderRate, DuplicateRate float64
	// BrushRate is the share of trips that run along the edge of their corridor for a while without
	// leaving it (a test of false alarms).
	BrushRate float64
	// The street's GPS (real recorded traces, not only a simulator's):
	// NoSpeed sends fixes without speed_kmh: the detectors derive speed from positions.
	NoSpeed bool
	// IntervalSpread makes reporting irregular: each interval is Interval plus up to this much
	// more (1–5 s feeds: Interval 1s, IntervalSpread 4s).
	IntervalSpread time.Duration
	// SnapRate is the share of fixes after which the terminal loses its fix for 5–30 s; the first
	// fix after it is a re-acquisition snap 100–250 m off the truck's position.
	SnapRate float64
	// ParkedJitterRate is the share of a parked truck's fixes (at a site or stopped on the road)
	// that jitter 20–50 m off, as a parked receiver does; parked trucks also drift slowly.
	ParkedJitterRate float64
	// AwayRate is the share of licensed trips that leave the city's map on a long haul: the
	// truck turns off its route on the way out and drives 50–300 km away from the city, stops
	// there 20–40 min (another city's site, unknown to this one's map: a dwell), then comes back
	// to where it left its route and carries on (half of them), or drives on further out (the
	// others). Half of the hauls speed for 3 minutes on the way out. It moves in WGS-84 at its
	// true ground speed, so that far from the city's origin the ground truth is still right.
	AwayRate float64
	// DwellThreshold, SpeedTolerance, ZoneMarginM, SignalLostAfter, MaxTrip and LeaveMarginM
	// (trip_unclosed's) mirror the detectors' settings, so that ground-truth episodes start where
	// a violation by the rules' definition starts.
	DwellThreshold  time.Duration
	SpeedTolerance  float64
	ZoneMarginM     float64
	SignalLostAfter time.Duration
	MaxTrip         time.Duration
	LeaveMarginM    float64
	// Clock paces the run: nil runs as fast as the emitter takes records.
	Clock Pacer
}

// Pacer paces a run against wall time: Wait blocks until simulated time t may be emitted.
type Pacer interface {
	Wait(t time.Time) error
}

func (o Options) withDefaults() Options {
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.Duration == 0 {
		o.Duration = time.Hour
	}
	if o.Start.IsZero() {
		o.Start = time.Now().Add(-o.Duration).Truncate(time.Second)
	}
	if o.ViolationRate == 0 {
		o.ViolationRate = 0.25
	}
	if o.DwellThreshold == 0 {
		o.DwellThreshold = 10 * time.Minute
	}
	if o.SpeedTolerance == 0 {
		o.SpeedTolerance = 0.10
	}
	if o.ZoneMarginM == 0 {
		o.ZoneMarginM = 25
	}
	if o.SignalLostAfter == 0 {
		o.SignalLostAfter = 5 * time.Minute
	}
	if o.MaxTrip == 0 {
		o.MaxTrip = 3 * time.Hour
	}
	if o.LeaveMarginM == 0 {
		o.LeaveMarginM = 100
	}
	return o
}

// Result summarises a run.
type Result struct {
	Fixes, Events, OfficerPositions int
	Duplicates                      int // fixes sent twice on purpose (counted once in Fixes)
	Truth                           []Episode
	// Horizon is the last time an episode can start and be observed before the run's end (two
	// intervals before it): Truth leaves out later starts, and Observable later alerts.
	Horizon time.Time
}

// violation kinds a trip can carry
type injection int

const (
	injNone injection = iota
	injSpeeding
	injDeviation
	injDwell
	injDumping
	injOverload
	injCoverOpen
	injSpillage
	injZone
	injSignalLost
	injUnclosed
	numInjections
)

type phase int

const (
	phLoading phase = iota
	phHauling
	phUnloading
	phReturning
	phStopped // injected stop on the road (dwell / dumping)
	phAway    // off the city's map on a long haul (away)
)

type truck struct {
	plate     string
	vehicle   *city.Vehicle
	permit    *city.Permit
	route     *city.Route
	licensed  bool
	phase     phase
	until     time.Time // end of a timed phase
	along     float64
	speed     float64 // km/h
	offset    float64 // metres to the right of the route (detours)
	lifted    bool
	reportAt  time.Time
	inj       injection
	injAt     float64 // along-distance where the injection starts
	injUntil  time.Time
	injActive bool
	episode   int // index into truth of the open injected episode, -1 if none
	zoneEp    int // open restricted-zone episode, -1
	zoneID    string
	unlicEp   int
	driftX    float64
	driftY    float64
	trip      int
	resume    phase
	held      *Record   // an out-of-order fix waiting for the next one
	lastSent  time.Time // device time of the last fix sent
	silentTil time.Time // no fixes until then (signal lost)
	gapTil    time.Time // no fix until then (a short loss of the GPS fix), then a snap
	snap      bool      // the next fix is a re-acquisition snap
	silentEp  int       // open signal_lost episode, -1
	unclosed  bool      // turned back to the construction site with the load
	brushAt   float64   // along-distance where a corridor-edge brush starts, 0 if none
	brushTil  time.Time
	leftSite  time.Time // when the trip got clearly out of its construction site (hauls only)
	out       bool      // leftSite is set
	timedOut  bool      // the trip's trip_unclosed timeout is in the ground truth
	away      *haul     // the trip's long haul off the map, nil if none
}

// haul is a trip's long haul off the city's map (Options.AwayRate).
type haul struct {
	at       float64   // along-distance where the truck leaves its route
	ll       orb.Point // where the truck is (lon, lat) once off its route
	bearing  float64   // radians clockwise from north
	out      float64   // metres of the way out, to its stop
	left     float64   // metres left on this leg
	speedAt  float64   // metres into the way out where it speeds for 3 minutes, -1 if not
	back     bool      // it comes back after its stop (else it drives on)
	homeward bool      // on its way back
	stopped  bool      // its stop is over
	stopTil  time.Time // stopped until then
	ep       int       // its open route_deviation episode, -1
	tripEp   int       // its overdue trip (trip_unclosed), -1
}

type officer struct {
	id       string
	pos      orb.Point // projected metres
	reportAt time.Time
}

// Simulator runs a fleet over a city.
type Simulator struct {
	c        *city.City
	o        Options
	rng      *rand.Rand
	trucks   []*truck
	officers []*officer
	truth    []Episode
	res      Result
	buf      []byte
	seq      int
}

// New returns a simulator over c.
func New(c *city.City, o Options) (*Simulator, error) {
	o = o.withDefaults()
	if o.Interval < time.Second {
		return nil, fmt.Errorf("cannot simulate: interval %s is shorter than 1s", o.Interval)
	}
	s := &Simulator{c: c, o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
	n := 0
	for _, v := range c.Vehicles {
		if o.Vehicles > 0 && n >= o.Vehicles {
			break
		}
		t := &truck{plate: v.Plate, vehicle: v, episode: -1, zoneEp: -1, unlicEp: -1, silentEp: -1}
		// Trucks without a valid permit: the ones with an old permit keep driving its route
		// (unlicensed transport); the ones with none stay parked at home.
		t.permit, t.route = permittedRoute(c, v.Plate, o.Start)
		t.licensed = t.permit != nil
		if t.route == nil {
			continue
		}
		s.trucks = append(s.trucks, t)
		n++
	}
	for i := 0; i < o.Unregistered && len(c.Routes) > 0; i++ {
		t := &truck{plate: fmt.Sprintf("粤Z%05d", 90000+i), episode: -1, zoneEp: -1, unlicEp: -1, silentEp: -1}
		t.route = c.Routes[s.rng.IntN(len(c.Routes))]
		s.trucks = append(s.trucks, t)
	}
	if len(s.trucks) == 0 {
		return nil, errors.New("cannot simulate: the city has no vehicle with a permit on a known route")
	}
	for _, t := range s.trucks {
		// Trucks start at different points of their cycle.
		t.reportAt = o.Start.Add(time.Duration(s.rng.Int64N(int64(o.Interval))))
		t.phase = phLoading
		t.until = o.Start.Add(time.Duration(s.rng.Int64N(int64(20 * time.Minute))))
		s.planTrip(t)
	}
	bounds := c.Proj.Forward(c.Proj.Origin())
	for i := 0; i < o.Officers; i++ {
		d := c.Districts[i%max(1, len(c.Districts))]
		p := bounds
		if d != nil {
			p = d.Area.Bound.Center()
		}
		s.officers = append(s.officers, &officer{id: fmt.Sprintf("OF-%03d", i+1), pos: p,
			reportAt: o.Start.Add(time.Duration(s.rng.Int64N(int64(30 * time.Second))))})
	}
	return s, nil
}

// Vehicles returns the plates of the simulated fleet.
func (s *Simulator) Vehicles() []string {
	out := make([]string, len(s.trucks))
	for i, t := range s.trucks {
		out[i] = t.plate
	}
	return out
}

func (s *Simulator) planTrip(t *truck) {
	t.trip++
	t.inj = injNone
	t.injActive = false
	t.brushAt = 0
	if !t.licensed {
		return // an unlicensed truck's violation is the trip itself
	}
	length := t.route.Corridor.Length()
	if s.rng.Float64() < s.o.ViolationRate {
		t.inj = injection(1 + s.rng.IntN(int(numInjections)-1))
		if t.inj == injZone {
			t.inj = injDeviation // zone entries happen through routes crossing zones in closed hours; see trackZone
		}
		t.injAt = length * (0.2 + 0.5*s.rng.Float64())
		if t.inj == injUnclosed {
			t.injAt = length * (0.35 + 0.3*s.rng.Float64())
		}
	} else if s.rng.Float64() < s.o.BrushRate {
		t.brushAt = length * (0.2 + 0.5*s.rng.Float64())
	}
	t.away = nil
	if s.o.AwayRate > 0 && t.inj == injNone && s.rng.Float64() < s.o.AwayRate {
		t.brushAt = 0
		t.away = &haul{at: length * (0.2 + 0.3*s.rng.Float64()), ep: -1, tripEp: -1}
	}
}

// Run simulates until the end of the run, emitting every record in time order.
func (s *Simulator) Run(em Emitter) (Result, error) {
	end := s.o.Start.Add(s.o.Duration)
	step := time.Second
	for now := s.o.Start; now.Before(end); now = now.Add(step) {
		if s.o.Clock != nil {
			if err := s.o.Clock.Wait(now); err != nil {
				return s.finish(now), err
			}
		}
		for _, t := range s.trucks {
			if err := s.advance(t, now, step, em); err != nil {
				return s.finish(now), err
			}
		}
		for _, of := range s.officers {
			if !now.Before(of.reportAt) {
				of.pos[0] += s.rng.NormFloat64() * 30
				of.pos[1] += s.rng.NormFloat64() * 30
				ll := s.c.Proj.Inverse(of.pos)
				s.buf = s.buf[:0]
				s.buf = append(s.buf, `{"officer_id":"`...)
				s.buf = append(s.buf, of.id...)
				s.buf = append(s.buf, `","ts":`...)
				s.buf = strconv.AppendInt(s.buf, now.UnixMilli(), 10)
				s.buf = appendLatLon(s.buf, ll)
				s.buf = append(s.buf, `,"available":true}`...)
				if err := em.Emit(Record{Topic: "officers", Key: of.id, Value: clone(s.buf), Time: now}); err != nil {
					return s.finish(now), err
				}
				s.res.OfficerPositions++
				of.reportAt = of.reportAt.Add(30 * time.Second)
			}
		}
	}
	for _, t := range s.trucks { // out-of-order fixes still held at the end go out last
		if t.held != nil {
			if err := em.Emit(*t.held); err != nil {
				return s.finish(end), err
			}
			t.held = nil
		}
	}
	return s.finish(end), nil
}

func (s *Simulator) finish(at time.Time) Result {
	for _, t := range s.trucks {
		s.closeEpisode(&t.silentEp, at)
		s.closeEpisode(&t.episode, at)
		s.closeEpisode(&t.zoneEp, at)
		s.closeEpisode(&t.unlicEp, at)
		if t.away != nil {
			s.closeEpisode(&t.away.ep, at)
			s.closeEpisode(&t.away.tripEp, at)
		}
	}
	// A dwell's episode starts once the stop has lasted the threshold; a stop cut short by the end
	// of the run never became a violation, and one that starts in its last two intervals cannot be
	// observed.
	truth := make([]Episode, 0, len(s.truth))
	observable := at.Add(-2 * s.o.Interval) // later starts cannot be confirmed by two fixes before the end
	for _, ep := range s.truth {
		if !ep.Start.After(observable) {
			truth = append(truth, ep)
		}
	}
	sort.SliceStable(truth, func(i, j int) bool { return truth[i].Start.Before(truth[j].Start) })
	s.res.Truth, s.res.Horizon = truth, observable
	return s.res
}

func (s *Simulator) openEpisode(slot *int, rule string, t *truck, at time.Time, place, note string) {
	if *slot >= 0 {
		return
	}
	s.truth = append(s.truth, Episode{Rule: rule, VehicleID: t.plate, Start: at, Place: place, Note: note})
	*slot = len(s.truth) - 1
}

func (s *Simulator) closeEpisode(slot *int, at time.Time) {
	if *slot < 0 {
		return
	}
	s.truth[*slot].End = at
	*slot = -1
}

// instant records a ground-truth episode that is a single piece of evidence (events).
func (s *Simulator) instant(rule string, t *truck, at time.Time, place, note string) {
	s.truth = append(s.truth, Episode{Rule: rule, VehicleID: t.plate, Start: at, End: at, Place: place, Note: note})
}

// limitAt is the speed limit at a point: the lowest speed zone's, else the city default.
func (s *Simulator) limitAt(xy orb.Point) float64 {
	limit, _ := s.c.SpeedLimitAt(xy)
	return limit
}

func (s *Simulator) position(t *truck) orb.Point {
	return routePoint(t.route.Corridor, t.along, t.offset)
}

func (s *Simulator) advance(t *truck, now time.Time, step time.Duration, em Emitter) error {
	dt := step.Seconds()
	cor := t.route.Corridor
	switch t.phase {
	case phLoading:
		t.speed, t.lifted = 0, false
		if !now.Before(t.until) {
			if err := s.gateExit(t, now, em); err != nil {
				return err
			}
			t.phase, t.along = phHauling, 0
		}
	case phUnloading:
		t.speed = 0
		t.lifted = now.Before(t.until.Add(-2 * time.Minute))
		if !now.Before(t.until) {
			t.phase, t.lifted = phReturning, false
		}
	case phStopped:
		t.speed = 0
		if t.inj == injDumping {
			t.lifted = now.Before(t.until.Add(-1 * time.Minute))
		}
		if !now.Before(t.until) {
			t.phase, t.lifted = t.resume, false
			s.closeEpisode(&t.episode, now)
			t.inj = injNone
		}
	case phAway:
		if err := s.drive(t, now, dt); err != nil {
			return err
		}
	case phHauling, phReturning:
		xy := s.position(t)
		limit := s.limitAt(xy)
		forward := t.phase == phHauling
		if forward && t.away != nil && !t.out {
			// a trip starts once the truck is clearly out of its site (trip_unclosed's margin)
			if site := s.c.Site(t.route.FromSite); site != nil && !site.Area.Contains(xy) && site.Area.DistanceToEdge(xy) >= s.o.LeaveMarginM {
				t.out, t.leftSite = true, now
			}
		}
		if forward && t.away != nil && t.away.ll == (orb.Point{}) && t.along >= t.away.at {
			s.leave(t, xy)
			return s.report(t, now, em)
		}
		// drivers slow down before a lower limit, not after its sign
		ahead := t.along - 150
		if forward {
			ahead = t.along + 150
		}
		target := math.Min(math.Min(limit, s.limitAt(cor.PointAt(ahead)))*0.85, 55)
		// injections happen on the loaded haul
		if forward && t.inj != injNone && !t.injActive && t.along >= t.injAt && now.Before(s.o.Start.Add(s.o.Duration-injectTail)) {
			t.injActive = true
			var buf [4]int32
			if (t.inj == injDwell || t.inj == injDumping) && len(s.c.SitesNear(xy, 60, buf[:0])) > 0 {
				t.inj = injNone // the route runs through a site here: stopping is no violation
			}
			switch t.inj {
			case injSpeeding:
				t.injUntil = now.Add(3 * time.Minute)
			case injDeviation:
				t.injUntil = now.Add(4 * time.Minute)
			case injDwell:
				t.phase, t.resume, t.until = phStopped, phHauling, now.Add(s.o.DwellThreshold+8*time.Minute)
				s.openEpisode(&t.episode, "dwell", t, now.Add(s.o.DwellThreshold), "", "stopped on the road")
				t.speed = 0
				return s.report(t, now, em)
			case injDumping:
				t.phase, t.resume, t.until = phStopped, phHauling, now.Add(4*time.Minute)
				s.openEpisode(&t.episode, "dwell", t, now, "", "dump body raised on the road")
				t.speed = 0
				return s.report(t, now, em)
			case injCoverOpen, injSpillage:
				if err := s.cameraEvent(t, now, em); err != nil {
					return err
				}
				t.inj = injNone
			case injSignalLost:
				t.silentTil = now.Add(s.o.SignalLostAfter + 3*time.Minute + time.Duration(s.rng.Int64N(int64(5*time.Minute))))
				t.inj = injNone
			case injUnclosed:
				t.phase, t.unclosed, t.inj = phReturning, true, injNone // back to the site, load and all
				return s.report(t, now, em)
			}
		}
		offset0 := t.offset // a sideways move (a detour, a brush) is part of the truck's speed
		// brushing along the corridor's edge, inside it
		if forward && t.brushAt > 0 && t.along >= t.brushAt {
			if t.brushTil.IsZero() {
				t.brushTil = now.Add(3 * time.Minute)
			}
			t.offset = math.Min(cor.HalfWidthM*0.55, t.offset+2*dt)
			if now.After(t.brushTil) {
				t.brushAt, t.brushTil, t.offset = 0, time.Time{}, 0
			}
		}
		if t.injActive && t.inj == injSpeeding {
			target = limit * 1.45
			if now.After(t.injUntil) {
				t.inj = injNone
			}
		}
		// accelerate gently towards the target speed
		if t.speed < target {
			t.speed = math.Min(target, t.speed+1.5*3.6*dt)
		} else {
			t.speed = math.Max(target, t.speed-2.5*3.6*dt)
		}
		s.trackSpeeding(t, now, limit)
		if !t.licensed && t.speed > 10 { // moving, by the rule's definition, without a valid permit
			s.openEpisode(&t.unlicEp, "unlicensed", t, now, "", "driving without a valid permit")
		}
		if t.injActive && t.inj == injDeviation {
			half := cor.HalfWidthM
			elapsed := 4*time.Minute - t.injUntil.Sub(now)
			// sideways at most at 80 % of its speed over the ground (below), or the truck would
			// be going faster than its speed says: a detour in a 30 zone was a speeding the
			// ground truth did not know of
			lateral := math.Min(12, 0.8*t.speed/3.6)
			switch {
			case now.After(t.injUntil):
				t.offset = math.Max(0, t.offset-math.Min(10, lateral)*dt)
				if t.offset == 0 {
					t.inj = injNone
				}
			case elapsed < 40*time.Second:
				t.offset = math.Min(half*6, t.offset+lateral*dt)
			}
			switch {
			case t.offset > half && t.episode < 0 && t.inj == injDeviation:
				s.openEpisode(&t.episode, "route_deviation", t, now, t.route.ID, "detour off the approved route")
			case t.offset <= half && t.episode >= 0 && s.truth[t.episode].Rule == "route_deviation":
				s.closeEpisode(&t.episode, now)
			}
		}
		// the truck's speed is its speed over the ground: moving sideways, it goes less far along
		lateral := math.Abs(t.offset-offset0) / dt
		move := math.Sqrt(math.Max(0, (t.speed/3.6)*(t.speed/3.6)-lateral*lateral)) * dt
		if forward {
			t.along += move
			if t.along >= cor.Length() {
				t.along = cor.Length()
				t.phase, t.until, t.speed = phUnloading, now.Add(5*time.Minute), 0
				t.offset = 0
				s.trackSpeeding(t, now, limit) // stopped at the gate: a speeding is over
				if err := s.gateEvent(t, now, em, "gate_entry", t.route.ToSite); err != nil {
					return err
				}
			}
		} else {
			t.along -= move
			if t.along <= 0 {
				if t.unclosed { // stopped back at the construction site with the load
					s.instant("trip_unclosed", t, now, t.route.FromSite, "turned back to the construction site without unloading")
					t.unclosed = false
				}
				t.along = 0
				t.phase, t.until, t.speed = phLoading, now.Add(time.Duration(5+s.rng.IntN(6))*time.Minute), 0
				s.closeEpisode(&t.episode, now)
				if err := s.gateEvent(t, now, em, "gate_entry", t.route.FromSite); err != nil {
					return err
				}
				s.planTrip(t)
			}
		}
	}
	s.trackZone(t, now)
	return s.report(t, now, em)
}

// injectTail is how long before the end of a run no violation is injected: one begun seconds
// before the data ends cannot be seen by a rule that must hold it for a while (speeding from
// derived speed: a 20 s window, then 10 s; at 30 s reporting, a few fixes), so the ground truth
// would count it as a miss of every detector.
const injectTail = 5 * time.Minute

// trackSpeeding keeps the ground truth of an injected speeding episode: it starts when the truck
// goes above limit × (1 + tolerance) and ends when it is back at or below the limit.
func (s *Simulator) trackSpeeding(t *truck, now time.Time, limit float64) {
	open := t.episode >= 0 && s.truth[t.episode].Rule == "speeding"
	switch {
	case !open && t.speed > limit*(1+s.o.SpeedTolerance) && t.injActive:
		s.openEpisode(&t.episode, "speeding", t, now, "", "driving well above the limit")
	case open && t.speed <= limit:
		s.closeEpisode(&t.episode, now)
	}
}

// trackZone keeps the ground truth of restricted-zone episodes from the truck's true position.
func (s *Simulator) trackZone(t *truck, now time.Time) {
	// A truck is in violation once it is deeper inside a closed zone than GPS error can explain
	// (the margin), until it has left the zone.
	xy := s.position(t)
	if t.phase == phAway {
		xy = s.c.Proj.Forward(t.away.ll)
	}
	var buf [8]int32
	inside, deep := "", ""
	if len(s.c.SitesAt(xy, buf[:0])) > 0 { // inside an authorised site, off the road
		s.closeEpisode(&t.zoneEp, now)
		return
	}
	for _, i := range s.c.ZonesAt(xy, buf[:0]) {
		if z := s.c.ZoneAt(i); z.Kind == city.ZoneRestricted && z.ClosedAt(now, s.c.Location) {
			inside = z.ID
			if z.Area.DistanceToEdge(xy) >= s.o.ZoneMarginM {
				deep = z.ID
				break
			}
		}
	}
	switch {
	case deep != "" && t.zoneEp < 0 && !now.Before(t.silentTil):
		// (an entry while the terminal is silent leaves no evidence; signal_lost covers it)
		s.openEpisode(&t.zoneEp, "restricted_zone", t, now, deep, "route crosses a zone in its closed hours")
	case inside == "" && t.zoneEp >= 0:
		s.closeEpisode(&t.zoneEp, now)
	}
}

func (s *Simulator) report(t *truck, now time.Time, em Emitter) error {
	if now.Before(t.reportAt) {
		return nil
	}
	t.reportAt = t.reportAt.Add(s.o.Interval)
	if s.o.IntervalSpread > 0 {
		t.reportAt = t.reportAt.Add(time.Duration(s.rng.Int64N(int64(s.o.IntervalSpread) + 1)).Truncate(time.Second))
	}
	if now.Before(t.gapTil) {
		return nil // no fix: a short loss of the GPS signal (not a silent terminal)
	}
	if now.Before(t.silentTil) {
		if t.silentEp < 0 && !t.lastSent.IsZero() && now.Sub(t.lastSent) >= s.o.SignalLostAfter {
			s.openEpisode(&t.silentEp, "signal_lost", t, t.lastSent.Add(s.o.SignalLostAfter), "", "terminal silent while moving")
		}
		return nil
	}
	s.closeEpisode(&t.silentEp, now)
	// The errors are metres east and north of the truck: in the city's plane, or, off the map, on
	// the ground where the truck is (the plane's offsets from base).
	xy := s.position(t)
	base := xy
	away := t.phase == phAway
	if s.o.NoiseM > 0 {
		xy[0] += s.rng.NormFloat64() * s.o.NoiseM
		xy[1] += s.rng.NormFloat64() * s.o.NoiseM
	}
	if s.o.JumpRate > 0 && s.rng.Float64() < s.o.JumpRate {
		d, a := 300+2700*s.rng.Float64(), 2*math.Pi*s.rng.Float64()
		xy[0] += d * math.Cos(a)
		xy[1] += d * math.Sin(a)
	}
	parked := t.phase == phLoading || t.phase == phUnloading || t.phase == phStopped || (away && t.speed == 0)
	if parked && s.o.ParkedJitterRate > 0 {
		// a parked receiver drifts slowly (a random walk pulled back to the truck) and now and
		// then jitters off
		t.driftX = 0.9*t.driftX + s.rng.NormFloat64()*2
		t.driftY = 0.9*t.driftY + s.rng.NormFloat64()*2
		xy[0] += t.driftX
		xy[1] += t.driftY
		if s.rng.Float64() < s.o.ParkedJitterRate {
			d, a := 20+30*s.rng.Float64(), 2*math.Pi*s.rng.Float64()
			xy[0] += d * math.Cos(a)
			xy[1] += d * math.Sin(a)
		}
	}
	if t.snap {
		d, a := 100+150*s.rng.Float64(), 2*math.Pi*s.rng.Float64()
		xy[0] += d * math.Cos(a)
		xy[1] += d * math.Sin(a)
		t.snap = false
	} else if s.o.SnapRate > 0 && s.rng.Float64() < s.o.SnapRate {
		t.gapTil, t.snap = now.Add(5*time.Second+time.Duration(s.rng.Int64N(int64(25*time.Second)))), true
	}
	var ll orb.Point
	var heading float64
	if away {
		ll = groundOffset(t.away.ll, xy[0]-base[0], xy[1]-base[1])
		heading = math.Mod(t.away.bearing*180/math.Pi+360, 360)
	} else {
		ll = s.c.Proj.Inverse(xy)
		heading = travelHeading(t.route.Corridor, t.along, t.phase == phReturning)
	}
	kmh := t.speed
	if s.o.NoSpeed {
		kmh = -1
	}
	b := appendFix(s.buf[:0], t.plate, now.UnixMilli(), ll, kmh, heading, t.lifted)
	s.buf = b
	s.res.Fixes++
	t.lastSent = now
	rec := Record{Topic: "gps", Key: t.plate, Value: clone(b), Time: now}
	switch {
	case t.held != nil: // the held fix goes out after this one: out of order
		held := t.held
		t.held = nil
		if err := em.Emit(rec); err != nil {
			return err
		}
		return em.Emit(*held)
	case s.o.OutOfOrderRate > 0 && s.rng.Float64() < s.o.OutOfOrderRate:
		t.held = &rec
		return nil
	case s.o.DuplicateRate > 0 && s.rng.Float64() < s.o.DuplicateRate:
		s.res.Duplicates++
		if err := em.Emit(rec); err != nil {
			return err
		}
	}
	return em.Emit(rec)
}

type eventJSON struct {
	EventID     string   `json:"event_id"`
	VehicleID   string   `json:"vehicle_id"`
	TS          int64    `json:"ts"`
	Kind        string   `json:"kind"`
	Source      string   `json:"source"`
	SiteID      string   `json:"site_id,omitempty"`
	Lat         *float64 `json:"lat,omitempty"`
	Lon         *float64 `json:"lon,omitempty"`
	LoadKg      *float64 `json:"load_kg,omitempty"`
	CoverClosed *bool    `json:"cover_closed,omitempty"`
	Confidence  float64  `json:"confidence"`
}

func (s *Simulator) event(t *truck, now time.Time, em Emitter, ev eventJSON) error {
	s.seq++
	ev.EventID = fmt.Sprintf("sim-%d-%d", s.o.Seed, s.seq)
	ev.VehicleID = t.plate
	ev.TS = now.UnixMilli()
	if ev.Confidence == 0 {
		ev.Confidence = 0.95
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("cannot encode a simulated event: %w", err)
	}
	s.res.Events++
	return em.Emit(Record{Topic: "events", Key: t.plate, Value: b, Time: now})
}

func (s *Simulator) gateEvent(t *truck, now time.Time, em Emitter, kind, site string) error {
	return s.event(t, now, em, eventJSON{Kind: kind, Source: "gate-" + site, SiteID: site})
}

// gateExit is the construction site's gate camera and weighbridge seeing the truck leave.
func (s *Simulator) gateExit(t *truck, now time.Time, em Emitter) error {
	site := t.route.FromSite
	rated := 25000.0
	if t.vehicle != nil {
		rated = t.vehicle.RatedLoadKg
	}
	if t.permit != nil && t.permit.MaxLoadKg > 0 && t.permit.MaxLoadKg < rated {
		rated = t.permit.MaxLoadKg
	}
	load := rated * (0.80 + 0.15*s.rng.Float64())
	closed := true
	t.out, t.timedOut = false, false
	risk := 0
	if !t.licensed {
		risk += 50
		if t.vehicle == nil {
			risk += 10
		}
	}
	switch t.inj {
	case injOverload:
		load = rated * (1.15 + 0.25*s.rng.Float64())
		s.instant("overload", t, now, site, "loaded above the limit")
		risk += 30
		t.inj = injNone
	case injCoverOpen:
		if s.rng.IntN(2) == 0 { // half of the open covers are already seen at the gate
			closed = false
			risk += 30
		}
	}
	if risk >= 50 {
		s.instant("site_exit_risk", t, now, site, "risky exit")
	}
	if err := s.event(t, now, em, eventJSON{Kind: "weigh", Source: "wb-" + site, SiteID: site, LoadKg: &load}); err != nil {
		return err
	}
	if !closed {
		s.instant("cover_open", t, now, site, "cover open at the gate")
		t.inj = injNone
	}
	return s.event(t, now, em, eventJSON{Kind: "gate_exit", Source: "gate-" + site, SiteID: site, CoverClosed: &closed, LoadKg: &load})
}

// cameraEvent is a road camera (and a second one shortly after) seeing an open cover or spillage.
func (s *Simulator) cameraEvent(t *truck, now time.Time, em Emitter) error {
	kind, rule := "cover_open", "cover_open"
	if t.inj == injSpillage {
		kind, rule = "spillage", "spillage"
	}
	ll := s.c.Proj.Inverse(s.position(t))
	lat, lon := ll[1], ll[0]
	cam := fmt.Sprintf("rc-%s-%d", t.route.ID, int(t.along/1000))
	s.instant(rule, t, now, cam, "seen by road cameras")
	if err := s.event(t, now, em, eventJSON{Kind: kind, Source: cam, Lat: &lat, Lon: &lon, Confidence: 0.9}); err != nil {
		return err
	}
	// A second camera 1 km on sees the same truck: the same episode, not a new one.
	return s.event(t, now.Add(time.Second), em, eventJSON{Kind: kind, Source: cam + "b", Lat: &lat, Lon: &lon, Confidence: 0.85})
}
