package detectors

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/geo"
	"github.com/muckwatch/muckwatch/record"
)

// A Track is everything the engine remembers of one vehicle: its last accepted fix, its episodes
// (one slot per rule), what its risk score is made of, and where its records come from. Tracks are
// found by plate, or by the plate number the decoder gives a fix (record.PlateNumbers).

// Track is the engine's state for one vehicle. A fleet's tracks are most of the engine's memory:
// a Track fits the allocator's 640-byte size class (a motion's and its own small fields packed
// together, times kept as Unix nanoseconds, the last observation as a lastFix and its camera
// events' input apart), where it took 896 (BenchmarkTrackMemory: 2,640 bytes a vehicle against
// 3,024, with its episodes, risk and indexes).
type Track struct {
	VehicleID string
	no        uint32  // its slot in Engine.numbered (0: none)
	dueAt     int32   // its index in the engine's due heap, -1 when not in it
	last      lastFix // what the rules read of its last accepted observation (hasLast)
	hasLast   bool
	inSite    bool // the last observation was inside a site
	restored  bool // from a checkpoint, its input not yet read again (Resume)

	// for the risk score: whether it is registered and permitted, a risk was computed, and
	// when its alerts of the last 30 days opened, oldest first
	registered, permitted, scored bool
	history                       []time.Time

	motion   motion     // recent fixes: derived speed, stillness (kinematics)
	jumps    int        // fixes set aside in a row as jumps (kinematics)
	held     *heldFix   // the first fix after a gap, held back until the next (kinematics: suspect)
	episodes []*Episode // one per registered rule, fix rules first (each nil while it holds nothing); nil while all are (slot)
	due      int64      // when a time-driven rule may next decide, in Unix nanoseconds, while dueAt >= 0

	shard  record.Shard // the input its fixes come from (its camera events', while it has no fix)
	events *eventInput  // where its camera events come from; nil until it has one
	// marked: the epoch whose changed-list holds it (Engine.dirty); cp: how far the snapshot in
	// flight has got with it (snapshot.go)
	marked uint32
	cp     atomic.Uint32

	// its registration in the reference data in force (looked up once, not per fix), and its
	// permit valid at the last fix with the span, in Unix nanoseconds [permitFrom, permitTo),
	// over which that stays the permit (city.ActiveSpan): a fix in it needs no permit looked at
	ref                  *city.City
	vehicle              *city.Vehicle
	permit               *city.Permit
	route                *city.Route // the permit's approved route, nil if none
	permitFrom, permitTo int64
}

// eventInput is where a track's camera events come from: the input, the offset after the newest
// judged, and, for the batch being processed (batch), the offset below which they were judged
// before. Only a truck seen by a camera or sensor has one: a track keeps it apart, made with
// its first event.
type eventInput struct {
	shard record.Shard
	next  int64
	floor int64
	batch uint64
}

// eventsFrom returns the input of tr's camera events and the offset after the newest judged:
// none and 0 while it has had none.
func (tr *Track) eventsFrom() (record.Shard, int64) {
	if tr.events == nil {
		return record.Shard{}, 0
	}
	return tr.events.shard, tr.events.next
}

// lastFix is what a track keeps of its last accepted observation: what the rules read of it as
// the previous one, and what its checkpoint saves: 64 bytes. An Observation is 224, most of it
// what only the fix being judged needs (its registration, areas, stay, derived speed's window);
// kept whole, it took a Track from the allocator's 768-byte size class to the 896
// (BenchmarkTrackMemory: 3,024 bytes a vehicle, against 2,768 with this).
type lastFix struct {
	ns       int64     // its time (fixNano)
	ll, xy   orb.Point // lon/lat, and projected metres
	speedKmh float64
	routeSeg int32 // Observation.routeSeg

	// its flags: Observation's Reported, Derived, Still, Lifted and ACC
	reported, derived, still, lifted, acc bool
}

// remember keeps what prev is to be read as of o.
func (l *lastFix) remember(o *Observation) {
	*l = lastFix{ns: fixNano(o.Time), ll: o.LL, xy: o.XY, speedKmh: o.SpeedKmh, routeSeg: o.routeSeg,
		reported: o.Reported, derived: o.Derived, still: o.Still, lifted: o.Lifted, acc: o.ACC}
}

// time is when the fix was, in UTC as decoded fixes are.
func (l *lastFix) time() time.Time { return fromFixNano(l.ns) }

// observation sets o to the observation remembered: what was kept of it, the rest zero.
func (l *lastFix) observation(o *Observation) {
	*o = Observation{Time: l.time(), LL: l.ll, XY: l.xy, SpeedKmh: l.speedKmh, routeSeg: l.routeSeg,
		Reported: l.reported, Derived: l.derived, Still: l.still, Lifted: l.lifted, ACC: l.acc}
}

// Tracks returns the number of vehicles tracked. It is safe to call from any goroutine.
func (e *Engine) Tracks() int { return int(e.tracked.Load()) }

func (e *Engine) track(id string) *Track {
	tr := e.tracks[id]
	if tr == nil {
		tr = &Track{VehicleID: id, dueAt: -1}
		e.tracks[id] = tr
		e.tracked.Store(int64(len(e.tracks)))
		e.metrics.tracked.Set(float64(len(e.tracks)))
	}
	return tr
}

// numberedTrack is track for a fix whose plate has number no (record.PlateNumbers): the track is
// kept at numbered[no] and found there by the next fix, its plate only compared (the same
// interned string, as a rule). A number is a hint, so a different plate there is looked up by
// name and takes the slot over.
func (e *Engine) numberedTrack(id string, no uint32) *Track {
	if tr := e.numbered.Get(no); tr != nil && tr.VehicleID == id {
		return tr
	}
	tr := e.track(id)
	if no == 0 {
		return tr
	}
	e.unnumber(tr)
	e.numbered.Put(no, tr)
	tr.no = no
	return tr
}

// unnumber takes tr out of its slot in numbered, if it still holds it.
func (e *Engine) unnumber(tr *Track) {
	if e.numbered.Get(tr.no) == tr {
		e.numbered.Put(tr.no, nil)
	}
	tr.no = 0
}

// forget drops tr from the engine's indexes of tracks.
func (e *Engine) forget(tr *Track) {
	delete(e.tracks, tr.VehicleID)
	e.unnumber(tr)
}

// The track's kinematics: what a vehicle's recent fixes say about its motion. Terminals report
// a speed or not; positions are noisy (σ 10–15 m), jump after a re-acquisition, and jitter while
// parked. So no speed is ever taken from one pair of fixes:
//
//   - distances are on the ground, anywhere on Earth (groundDist: a local scale per pair of fixes,
//     great-circle for far ones), never in the city's projection, which is right only near its
//     origin;
//   - the first fix after a gap in the reporting (a loss of the fix) is held back until the next
//     one: judged then if it lies on the way from the fix before the gap to the next (or the next
//     is out of reach itself), dropped as a re-acquisition snap if not, judged alone if no next
//     fix comes within twice the regular interval;
//   - a fix farther from the last accepted one than the truck can have gone (at the speed it had,
//     accelerating at most MaxAccel, never above MaxSpeedKmh, plus two fixes' GPS error) is a
//     jump: set aside, not judged; two such in a row that agree with each other (within reach
//     at the truck's speed, or in line with the last accepted one) are believed, three if they
//     agree only at the highest speed, and the motion starts afresh there;
//   - a derived speed is the median (of three) or the lower (of two) of the distances over time
//     from the cur fix back to the recent fixes 20–60 s before it (SpeedWindow), capped at the
//     physical maximum, so one noisy or jumped fix moves it little and one pair never sets it;
//   - a truck that has stayed within StopRadiusM of where it stopped for StillFor is still (speed
//     0), whatever one fix's jitter says: one fix outside the radius is set aside, the stop moves
//     only when two fixes in a row agree on a new place.

// motionLen is how many recent fixes a track keeps for its derived speed, at least motionStep
// apart: 8 × 4 s covers the speed window at 1 s reporting, 8 fixes at 30 s.
const (
	motionLen  = 8
	motionStep = 4 * time.Second
)

// trace is one remembered fix: its time and where it was. The time is kept as Unix nanoseconds,
// not a time.Time: a track holds ten traces, and 16 bytes less each takes a Track from the
// allocator's 1,152-byte size class to the 896-byte one (a quarter of a KB a vehicle).
type trace struct {
	ns int64 // 0: the zero time
	ll orb.Point
}

// newTrace remembers a fix at t (a fix's time: between the years 1678 and 2262, as decoding
// ensures) and ll.
func newTrace(t time.Time, ll orb.Point) trace { return trace{ns: fixNano(t), ll: ll} }

// time is when the remembered fix was, in UTC as decoded fixes are.
func (tr *trace) time() time.Time { return fromFixNano(tr.ns) }

// fixNano is a fix's time t in Unix nanoseconds, 0 for the zero time: how a track keeps it (a
// fix's time is between the years 1678 and 2262, as decoding ensures; unixNano clamps others).
func fixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromFixNano is the time fixNano gave ns, in UTC as decoded fixes are.
func fromFixNano(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// motion is a track's kinematic memory. It is checkpointed whole (format 5), so that a restored
// track derives the speeds and finds the stops an uninterrupted one does.
type motion struct {
	ring [motionLen]trace // newest at head, n filled
	stay stay
	alt  trace // the last fix set aside as a jump, while hasAlt
	// the accepted fix before the last accepted one, while hasBefore: a fix back there after a
	// lone outlier within reach is not a jump
	before trace
	head   uint8 // ring's index of the newest
	n      uint8 // how many of ring are filled
	hasAlt bool
	// altAgreed: alt was within reach, at the highest speed, of the jump set aside before it
	altAgreed bool
	hasBefore bool
}

// recent returns the i-th newest remembered fix (0: the newest), for i < n.
func (m *motion) recent(i int) *trace { return &m.ring[(int(m.head)-i+motionLen)%motionLen] }

// maxMeanGain bounds, in m/s, how much faster than its last speed a truck is taken to have gone
// on average between two fixes: MaxAccel holds over a few seconds, not over a 30 s interval (a
// loaded truck does not gain 75 m/s in 30 s), so at sparse reporting a jump of a few hundred
// metres is out of reach and set aside, not believed and judged.
const maxMeanGain = 5

// maxJumps is how many fixes in a row, out of reach of the last accepted one and of each other,
// are set aside before one is believed regardless.
const maxJumps = 8

// reset forgets the motion: the next fix starts it afresh.
func (m *motion) reset() { *m = motion{} }

// push remembers a fix, unless the newest remembered one is less than motionStep older.
func (m *motion) push(t time.Time, ll orb.Point) {
	if m.n > 0 && t.Sub(m.ring[m.head].time()) < motionStep {
		return
	}
	m.head = (m.head + 1) % motionLen
	m.ring[m.head] = newTrace(t, ll)
	if m.n < motionLen {
		m.n++
	}
}

// drop forgets the newest remembered fix if it is the one at t.
func (m *motion) drop(t time.Time) {
	if m.n > 0 && m.ring[m.head].time().Equal(t) {
		m.ring[m.head] = trace{}
		m.head = (m.head + motionLen - 1) % motionLen
		m.n--
	}
}

// speed derives the speed at (t, ll) in m/s from the remembered fixes between window and
// 3·window before it: the median of the three newest such estimates, the lower of two, or the
// one; ok is false when there is none. from is the oldest remembered fix the estimates span.
func (m *motion) speed(t time.Time, ll orb.Point, window time.Duration) (mps float64, from trace, ok bool) {
	var est [3]float64
	k := 0
	tn := t.UnixNano()
	for i := 0; i < int(m.n) && k < 3; i++ {
		tr := m.recent(i)
		span := time.Duration(tn - tr.ns) // t.Sub(tr.time()): both are fixes' times
		if span < window {
			continue
		}
		if span > 3*window {
			break
		}
		est[k] = groundDist(tr.ll, ll) / span.Seconds()
		from = *tr
		k++
	}
	switch k {
	case 0:
		return 0, from, false
	case 1:
		return est[0], from, true
	case 2:
		return min(est[0], est[1]), from, true
	}
	return max(min(est[0], est[1]), min(max(est[0], est[1]), est[2])), from, true
}

// stay is where a vehicle has been staying: the centre of its fixes there (a running mean, so
// that it does not wander with one fix's noise), since when, and a fix outside it that may be
// the start of another stay (alt), if the next one agrees.
type stay struct {
	centre orb.Point // lon/lat
	n      int
	since  time.Time
	alt    orb.Point
	altAt  time.Time
	hasAlt bool
	// when the vehicle came to rest there (settled): the stay takes in the last metres of the
	// approach (up to the radius, some seconds at walking pace), the stop is from the first
	// remembered fix near its centre; judged once, when the stay is first found still
	settledAt time.Time
	settled   bool
}

// settled is when the vehicle came to rest at its stay: the oldest remembered fix since the
// stay's start within near of its centre, going back from the newest until two in a row are not,
// the older farther (the approach), or three in a row are not (one or two fixes' GPS error or
// jitter are not the approach); the stay's start when none is.
func (m *motion) settled(near float64) time.Time {
	at, far, last := m.stay.since, 0, 0.0
	for i := 0; i < int(m.n) && far < 3; i++ {
		tr := m.recent(i)
		if tr.time().Before(m.stay.since) {
			break
		}
		if d := groundDist(tr.ll, m.stay.centre); d > near {
			if far++; far == 2 && d > last {
				break // farther and farther back: the approach
			}
			last = d
			continue
		}
		at, far = tr.time(), 0
	}
	// The newest remembered fix before it, when long before it (a loss of the fix, or sparse
	// reporting), was on the way: the truck arrived unheard between the two, at an unknown
	// moment; the middle of the gap is the estimate nearest the truth in the worst case.
	for i := 0; i < int(m.n); i++ {
		tr := m.recent(i)
		if tr.time().Before(at) {
			if gap := at.Sub(tr.time()); gap > 2*motionStep {
				at = at.Add(-gap / 2)
			}
			break
		}
	}
	return at
}

// stayMeanMax bounds the running mean's weight, so a slow drift while parked moves the centre.
const stayMeanMax = 32

// stayStep is what one fix did to a stay.
type stayStep uint8

const (
	stayIn    stayStep = iota // within the stay (or its first fix)
	stayAside                 // outside it, set aside: jitter, or the start of a move
	stayMoved                 // outside it twice in a row: a new stay starts (at the fix set aside, if this one agrees with it)
)

// observe moves the stay on by a fix: within radius of the centre it goes on; outside it, the fix
// is set aside (alt), and if the one before was set aside too the vehicle has moved: a new stay
// starts, at the fix set aside when this one is within radius of it, else at this one.
func (s *stay) observe(t time.Time, ll orb.Point, radius float64) stayStep {
	if s.n == 0 {
		*s = stay{centre: ll, n: 1, since: t}
		return stayIn
	}
	if groundDist(s.centre, ll) <= radius {
		s.n++
		w := 1 / float64(min(s.n, stayMeanMax))
		s.centre = orb.Point{s.centre[0] + (ll[0]-s.centre[0])*w, s.centre[1] + (ll[1]-s.centre[1])*w}
		s.hasAlt = false
		return stayIn
	}
	if !s.hasAlt {
		s.alt, s.altAt, s.hasAlt = ll, t, true
		return stayAside
	}
	switch {
	case groundDist(s.alt, ll) <= radius:
		*s = stay{centre: orb.Point{(s.alt[0] + ll[0]) / 2, (s.alt[1] + ll[1]) / 2}, n: 2, since: s.altAt}
	case groundDist(s.centre, s.alt) <= 2*radius && groundDist(s.centre, ll) <= 2*radius:
		// two fixes just outside, on different sides, disagreeing with each other: a parked
		// receiver's jitter, not a move (a truck driving off goes one way, and farther)
		s.alt, s.altAt = ll, t
		return stayAside
	default:
		*s = stay{centre: ll, n: 1, since: t}
	}
	return stayMoved
}

// holdGapMin is the shortest gap after which a fix is held back (suspect): longer than a street
// terminal's slowest regular interval (1–5 s), and than twice the interval before it.
const holdGapMin = 5 * time.Second

// suspect says whether cur, the first fix after a gap in the track's reporting (more than twice
// the interval before it, and holdGapMin), is to be held back until the next fix: after a loss
// of the fix, a terminal's first fix is often a re-acquisition snap 100–250 m off, within reach
// of the fix before the gap, so the jump test cannot tell it. A gap as long as a silence
// (signal_lost's threshold) is not held: the fix after it ends the silence.
func (e *Engine) suspect(m *motion, prev, cur *Observation) bool {
	if !m.hasBefore || m.hasAlt {
		return false
	}
	gap := cur.Time.Sub(prev.Time)
	maxGap := e.cfg.SilentAfter
	if e.silence != nil {
		maxGap = min(maxGap, e.silence.cfg.After)
	}
	return gap > holdGapMin && gap > 2*prev.Time.Sub(m.before.time()) && gap < maxGap
}

// heldFix is a fix held back (suspect) and until when the next fix is awaited: twice the
// track's regular interval, at least 2 × holdGapMin. A fix held that long is judged alone.
type heldFix struct {
	fix   record.Fix
	until time.Time
}

// confirms says whether f, the fix after the held fix h, confirms it: h is refuted (a snap) when f
// is within reach of the track's last accepted fix and h is more than two fixes' GPS error off
// the way between them (where the truck would have been at h's time, going on evenly from the
// one to the other). A truck that turned or braked during the gap may lose a sound fix so; a
// snap is never judged. When f is out of reach itself, it is no witness: h is taken, and the
// jump test judges f.
func (e *Engine) confirms(tr *Track, h, f *record.Fix) bool {
	p := &e.prev
	tr.last.observation(p)
	cl := orb.Point{f.Lon, f.Lat}
	span := f.Time.Sub(p.Time).Seconds()
	if groundDist(p.LL, cl) > e.reach(p, f, span)+e.cfg.JumpSlackM {
		return true
	}
	w := h.Time.Sub(p.Time).Seconds() / span
	way := orb.Point{p.LL[0] + (cl[0]-p.LL[0])*w, p.LL[1] + (cl[1]-p.LL[1])*w}
	return groundDist(orb.Point{h.Lon, h.Lat}, way) <= e.cfg.JumpSlackM
}

// reach is how far, in metres, a truck whose last accepted fix is prev can have gone in dt
// seconds by fix f: at most MaxSpeedKmh (or a little above the speeds reported), and from the
// speed it had (or has, reported), accelerating at most MaxAccel, on average at most
// maxMeanGain faster when no reported speed vouches for the fix. GPS error is not included.
func (e *Engine) reach(prev *Observation, f *record.Fix, dt float64) float64 {
	vmax := e.cfg.MaxSpeedKmh / 3.6
	if f.HasSpeed && prev.Reported {
		vmax = min(vmax, (max(float64(f.SpeedKmh), prev.SpeedKmh)*1.3+25)/3.6)
	}
	reach := vmax * dt
	if prev.Reported || prev.Derived { // from the speed it had (or has), accelerating at most MaxAccel
		v0 := prev.SpeedKmh
		if f.HasSpeed {
			v0 = max(v0, min(float64(f.SpeedKmh), e.cfg.MaxSpeedKmh))
		}
		gain := e.cfg.MaxAccel * dt / 2
		if !f.HasSpeed {
			gain = min(gain, maxMeanGain) // a derived speed only: no reported one vouches for the fix
		}
		reach = min(reach, (v0/3.6+gain)*dt)
	}
	return reach
}

// goesOn says whether cur is where the truck would be going on from prev through the fix set
// aside (alt) at the same pace and heading, within two fixes' GPS error: a truck speeding up
// faster than the jump test allows (leaving a stop, at sparse reporting) is believed at once,
// where two jumps in a row almost never line up so.
func (e *Engine) goesOn(prev *Observation, alt trace, cur *Observation) bool {
	span1, span2 := alt.time().Sub(prev.Time).Seconds(), cur.Time.Sub(alt.time()).Seconds()
	if span1 <= 0 {
		return false
	}
	k := span2 / span1
	ahead := orb.Point{alt.ll[0] + (alt.ll[0]-prev.LL[0])*k, alt.ll[1] + (alt.ll[1]-prev.LL[1])*k}
	return groundDist(ahead, cur.LL) <= e.cfg.JumpSlackM
}

// kinematics judges fix f against the track's last accepted observation prev (nil for its first
// fix) and fills cur's speed and stillness. It returns false for a fix that is not to be judged
// (a jump), or not yet (held back: suspect, unless confirmed already).
func (e *Engine) kinematics(tr *Track, f *record.Fix, prev, cur *Observation, confirmed bool) bool {
	m := &tr.motion
	if f.HasSpeed {
		cur.SpeedKmh, cur.Reported = min(float64(f.SpeedKmh), e.cfg.MaxSpeedKmh), true
	}
	if prev == nil {
		m.reset()
	} else {
		if !confirmed && e.suspect(m, prev, cur) {
			// The first fix after a gap: held back, not judged, until the next fix says whether
			// the truck is there (ProcessFix judges it then) or it was a re-acquisition snap.
			tr.held = &heldFix{fix: *f, until: cur.Time.Add(max(2*prev.Time.Sub(m.before.time()), 2*holdGapMin))}
			return false
		}
		gap := f.Time.Sub(prev.Time)
		cur.AfterGap = m.hasBefore && gap > holdGapMin && gap > 2*prev.Time.Sub(m.before.time())
		dt := gap.Seconds()
		dist := groundDist(prev.LL, cur.LL)
		vmax := e.cfg.MaxSpeedKmh / 3.6
		if f.HasSpeed && prev.Reported {
			vmax = min(vmax, (max(float64(f.SpeedKmh), prev.SpeedKmh)*1.3+25)/3.6)
		}
		if dist > e.reach(prev, f, dt)+e.cfg.JumpSlackM {
			// Out of reach of the last accepted fix. Believed once fixes in a row agree with each
			// other: the truck is there, and the accepted fix was the outlier or the truck moved
			// while unheard. Two agree when the second is within reach of the first as of the
			// truck's last speed (tight); within reach at the highest speed only (loose), a third
			// must agree too, since two GPS jumps of a few hundred metres 30 s apart are within
			// reach of each other at 150 km/h. A lone jump is set aside; so is the next, unless
			// it agrees with it. Only after maxJumps in a row, none agreeing, is a fix believed
			// regardless.
			tight, loose := false, false
			if m.hasAlt {
				if !cur.Time.After(m.alt.time()) {
					// the fix set aside again (a duplicate): no second witness
					e.metrics.skipped.WithLabelValues("jump").Inc()
					return false
				}
				d, span := groundDist(m.alt.ll, cur.LL), cur.Time.Sub(m.alt.time()).Seconds()
				tight = d <= e.reach(prev, f, span)+e.cfg.JumpSlackM || e.goesOn(prev, m.alt, cur)
				loose = d <= vmax*span+e.cfg.JumpSlackM
			}
			agrees := tight || (loose && m.altAgreed)
			if back := groundDist(m.before.ll, cur.LL); m.hasBefore && !agrees &&
				back <= prev.SpeedKmh/3.6*cur.Time.Sub(m.before.time()).Seconds()+e.cfg.JumpSlackM &&
				(back+e.cfg.JumpSlackM < dist || prev.Time.Sub(m.before.time()) > 2*cur.Time.Sub(prev.Time)) {
				// back where the truck was before the last accepted fix (or as far on from there
				// as its speed then takes it), and nearer there than to it or it was the first
				// fix after a gap: that one was a lone outlier within reach (a re-acquisition
				// snap after a loss of the fix); it leaves the speed window, and this fix is
				// judged
				m.drop(prev.Time)
				m.hasAlt, m.altAgreed = false, false
				tr.jumps = 0
				e.accept(tr, m, cur, nil)
				return true
			}
			if !agrees && tr.jumps < maxJumps {
				tr.jumps++
				m.alt, m.hasAlt, m.altAgreed = newTrace(cur.Time, cur.LL), true, loose
				e.metrics.skipped.WithLabelValues("jump").Inc()
				return false
			}
			alt, had := m.alt, agrees
			m.reset() // the positions before it are not comparable with it
			if had {
				m.stay.observe(alt.time(), alt.ll, e.cfg.StopRadiusM)
				m.push(alt.time(), alt.ll)
			}
		}
	}
	e.accept(tr, m, cur, prev)
	return true
}

// accept takes cur as the track's newest fix: its stillness and, unless reported, its speed.
// prev is the last accepted fix before it, nil when it is not to be remembered as the one before.
func (e *Engine) accept(tr *Track, m *motion, cur, prev *Observation) {
	if m.hasAlt && groundDist(m.alt.ll, cur.LL) <= e.cfg.MaxSpeedKmh/3.6*cur.Time.Sub(m.alt.time()).Seconds()+e.cfg.JumpSlackM &&
		prev != nil && groundDist(prev.LL, cur.LL) > groundDist(m.alt.ll, cur.LL)+e.cfg.JumpSlackM {
		// Within reach of the last accepted fix, but nearer the fix set aside just before it,
		// which it agrees with: at sparse reporting a jump can be within reach of the fix before
		// it, and the fixes after it are then set aside against it. The two that agree are the
		// truck; the accepted one drops out of the speed window, the set-aside one comes in.
		m.drop(prev.Time)
		m.push(m.alt.time(), m.alt.ll)
	}
	tr.jumps, m.hasAlt, m.altAgreed = 0, false, false
	if prev != nil {
		m.before, m.hasBefore = newTrace(prev.Time, prev.LL), true
	}
	step := m.stay.observe(cur.Time, cur.LL, e.cfg.StopRadiusM)
	cur.Still = step != stayAside && cur.Time.Sub(m.stay.since) >= e.cfg.StillFor
	if cur.Still {
		if !m.stay.settled {
			m.stay.settledAt, m.stay.settled = m.settled(e.cfg.StopRadiusM/2), true
		}
		cur.StillSince, cur.StayAt = m.stay.settledAt, m.stay.centre
	}
	if !cur.Reported {
		switch v, from, ok := m.speed(cur.Time, cur.LL, e.cfg.SpeedWindow); {
		case cur.Still:
			cur.SpeedKmh, cur.Derived = 0, true
		case ok:
			cur.SpeedKmh, cur.Derived = min(v*3.6, e.cfg.MaxSpeedKmh), true
			cur.SpeedFrom = from.ll
			if span := cur.Time.Sub(from.time()).Seconds(); span > 0 {
				cur.SpanKmh = min(groundDist(from.ll, cur.LL)/span*3.6, e.cfg.MaxSpeedKmh)
			}
		}
	}
	m.push(cur.Time, cur.LL)
}

// groundDist is the distance in metres between two lon/lat points on the ground: on the local
// scale of the pair (metres per degree of longitude at their mean latitude), which is within
// 0.01 % of the great circle up to tens of kilometres, anywhere on Earth; farther apart, the
// great circle itself. It runs several times per fix, so the cosine comes from a table
// (cosLat) and the root is a plain square root.
func groundDist(a, b orb.Point) float64 {
	const rad = math.Pi / 180
	dlon := b[0] - a[0]
	if dlon > 180 {
		dlon -= 360
	} else if dlon < -180 {
		dlon += 360
	}
	dlat := b[1] - a[1]
	if math.Abs(dlon) > 0.5 || math.Abs(dlat) > 0.5 {
		return geo.DistanceM(a, b)
	}
	x, y := dlon*cosLat((a[1]+b[1])/2), dlat
	return geo.EarthRadiusM * rad * math.Sqrt(x*x+y*y)
}

// cosTableStep is the step of cosTable, in degrees of latitude: interpolated linearly, the cosine
// is then within 1e-9 of math.Cos.
const cosTableStep = 0.01

// cosTable holds the cosine of every cosTableStep of latitude from 0° to 90° (and one past);
// it is filled once and never written after.
var cosTable = func() []float64 {
	t := make([]float64, int(90/cosTableStep)+2)
	for i := range t {
		t[i] = math.Cos(float64(i) * cosTableStep * math.Pi / 180)
	}
	return t
}()

// cosLat is the cosine of latitude lat, in degrees (|lat| at most 90; beyond the table, or not a
// number — a corrupt checkpoint's position — math.Cos says what it is).
func cosLat(lat float64) float64 {
	f := math.Abs(lat) / cosTableStep
	if !(f < float64(len(cosTable)-1)) {
		return math.Cos(lat * math.Pi / 180)
	}
	i := int(f)
	return cosTable[i] + (cosTable[i+1]-cosTable[i])*(f-float64(i))
}
