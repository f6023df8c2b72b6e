// Package detectors owns detection: one Engine keeps explicit per-vehicle state (a Track) and runs
// every rule over each GPS fix and each camera/sensor event, in event time. A rule is one small
// type behind FixRule or EventRule, registered in one place (rules.go) with its own config
// section; the Engine's shared episode state machine (pending → firing → resolved, like
// Prometheus' alerting rules) turns a rule's per-observation verdicts into alerts with stable ids,
// so one episode gives one alert whose changes (opened, escalated, updated, resolved) are emitted.
package detectors

import (
	"container/heap"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/paulmach/orb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// Observation is what the engine knows about a vehicle at one fix. It is computed once per fix
// (spatial lookups included) and shared by every rule. Slices alias engine scratch space and are
// valid only during the call that receives them.
type Observation struct {
	Time     time.Time
	LL       orb.Point // lon/lat, WGS-84
	XY       orb.Point // projected metres
	SpeedKmh float64   // from the terminal, else derived from the previous fix
	Reported bool      // SpeedKmh came from the terminal
	Lifted   bool
	ACC      bool
	Vehicle  *city.Vehicle // nil for an unregistered plate
	Permit   *city.Permit  // the permit valid now, nil if none
	Sites    []int32       // indices of sites containing XY
	Zones    []int32       // indices of zones containing XY
}

// Verdict is a rule's judgement of one observation.
type Verdict struct {
	Active   bool     // the violation condition holds now
	Clear    bool     // the condition is clearly over (hysteresis: !Active && !Clear keeps the episode as it is)
	Severity Severity // severity if it fires now
	Value    float64  // measured value
	Limit    float64  // limit it was judged against
	Place    string   // zone, site or route id
	// Immediate fires at once, without waiting for the rule's For and MinFixes.
	Immediate bool
	// Since is when a time-driven episode started (TimeRule verdicts only).
	Since time.Time
	// Instant: the finding is a single moment; the alert opens and resolves at once.
	Instant bool
}

// FixRule judges a vehicle at each GPS fix. prev is the previous accepted observation (nil at
// the first fix of a vehicle); ep is this rule's episode state for the vehicle, which the rule may
// use for its own bookkeeping (Anchor, Mark).
type FixRule interface {
	Name() Rule
	Judge(c *city.City, prev, cur *Observation, ep *Episode) Verdict
	Describe(a *Alert) string
}

// TimeRule is implemented by a FixRule whose episodes may also open as event time passes without
// fixes (a silent terminal, a decision that waited for the other topics to catch up). Due is
// called with the watermark; an Active verdict's Since is when the episode started.
type TimeRule interface {
	Due(c *city.City, tr *Track, ep *Episode, watermark time.Time) Verdict
	// NextDue is the earliest watermark at which Due may decide something for this track (zero:
	// none until its next observation), so that Tick visits only the tracks that are due.
	NextDue(tr *Track, ep *Episode) time.Time
}

// EventObserver is implemented by a FixRule whose state also learns from events (a disposal site's
// gate camera seeing a truck enter closes its trip even when its terminal was silent there).
type EventObserver interface {
	ObserveEvent(c *city.City, ev *record.Event, ep *Episode)
}

// EventRule judges a vehicle at each camera or sensor event.
type EventRule interface {
	Name() Rule
	JudgeEvent(c *city.City, tr *Track, ev *record.Event) Verdict
	Describe(a *Alert) string
}

// Timing is how an episode turns verdicts into an alert.
type Timing struct {
	// For is how long the condition must hold before the alert fires (0: at once).
	For time.Duration `yaml:"for"`
	// MinFixes is how many consecutive observations must show the condition before it fires.
	MinFixes int `yaml:"min_fixes"`
	// EscalateAfter escalates a firing alert to severe after this long (0: never).
	EscalateAfter time.Duration `yaml:"escalate_after"`
	// Window keeps an event rule's episode open this long after its last evidence; repeats within it
	// update the alert instead of opening another.
	Window time.Duration `yaml:"window"`
	// ClearFor keeps a firing alert open until the condition has not been seen for this long (event
	// time since its last observation), so a truck that touches its route mid-detour, or dips
	// under a limit for a fix, stays one episode; the alert's end is the first clear observation
	// (0: resolve at once).
	ClearFor time.Duration `yaml:"clear_for"`
}

// Episode is one rule's state for one vehicle.
type Episode struct {
	Since    time.Time // when the condition started to hold (pending or firing)
	SinceLL  orb.Point
	Last     time.Time // last observation with the condition holding
	Cleared  time.Time // first clear observation of a firing alert waiting out ClearFor
	Fixes    int       // consecutive observations with the condition holding
	alert    *Alert    // the open alert, nil unless firing
	Anchor   orb.Point // rule bookkeeping (e.g. where a dwell started), projected metres
	Mark     time.Time // rule bookkeeping (e.g. since when stopped)
	Anchored bool
	Ref      string      // rule bookkeeping (e.g. the site a trip started from)
	Seen     []time.Time // rule bookkeeping (e.g. when disposal gate cameras saw the truck), bounded
	Pending  []Pending   // rule bookkeeping: decisions waiting for the watermark, oldest first
}

// Pending is a decision a rule takes once the event-time watermark has reached Due: once every
// input has been read up to then.
type Pending struct {
	Due   time.Time
	From  time.Time // the window of evidence it looks at starts here
	Place string
}

// Firing reports whether the episode has an open alert.
func (ep *Episode) Firing() bool { return ep.alert != nil }

// Track is the engine's state for one vehicle.
type Track struct {
	VehicleID string
	no        uint32 // its slot in Engine.numbered (0: none)
	last      Observation
	hasLast   bool
	inSite    bool // the last observation was inside a site
	// for the risk score
	history    []time.Time // when its alerts of the last 30 days opened, oldest first
	registered bool
	permitted  bool
	scored     bool // a risk was computed
	jumps      int
	episodes   []*Episode   // one per registered rule, fix rules first (each nil while it holds nothing); nil while all are (slot)
	dirty      bool         // changed since the last checkpoint
	src        partitionKey // the input partition its fixes come from
	// its camera events: the partition they come from, the offset after the newest judged, and,
	// for the batch being processed (evBatch), the offset below which they were judged before
	evSrc    partitionKey
	evNext   int64
	evFloor  int64
	evBatch  uint64
	restored bool      // from a checkpoint, its partition not yet seen read by this engine
	due      time.Time // the next time a time-driven rule may decide, when dueAt >= 0
	dueAt    int       // index in the engine's due heap, -1 when not in it
	// its registration and permits in the reference data in force (looked up once, not per fix)
	ref     *city.City
	vehicle *city.Vehicle
	permits []*city.Permit
}

// Config configures the engine and every rule.
type Config struct {
	// MaxSpeedKmh is the highest speed a truck can really have; a fix implying more is a GPS jump.
	MaxSpeedKmh float64 `yaml:"max_speed_kmh"`
	// IdlePartition: a caught-up partition that has delivered nothing for this long (wall time) no
	// longer holds back the event-time watermark that time-driven rules judge by.
	IdlePartition time.Duration `yaml:"idle_partition"`
	// JumpSlackM is the GPS error allowed on top of the distance a truck can cover between two
	// fixes before the second one counts as a jump.
	JumpSlackM float64     `yaml:"jump_slack_m"`
	Rules      RulesConfig `yaml:"rules"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxSpeedKmh == 0 {
		c.MaxSpeedKmh = 150
	}
	if c.IdlePartition == 0 {
		c.IdlePartition = 5 * time.Second
	}
	if c.JumpSlackM == 0 {
		c.JumpSlackM = 100
	}
	c.Rules = c.Rules.withDefaults()
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.MaxSpeedKmh <= 0 || c.MaxSpeedKmh > 400 {
		return fmt.Errorf("detectors.max_speed_kmh must be within (0, 400], got %g", c.MaxSpeedKmh)
	}
	return c.Rules.validate()
}

type fixEntry struct {
	rule   FixRule
	timing Timing
	phase  Phase
}

type eventEntry struct {
	rule   EventRule
	timing Timing
	phase  func(c *city.City, ev *record.Event) Phase
}

// Engine runs the rules. It is driven by one goroutine (the consumer's); the city may be swapped
// from another goroutine with SetCity.
type Engine struct {
	cfg            Config
	city           atomic.Pointer[city.City]
	refCity        *city.City // the reference data the tracks' looked-up registrations come from
	checkpointSize int        // average size of the last Dirty call's checkpoints, to size the next one's buffer
	log            *slog.Logger
	tracks         map[string]*Track
	numbered       record.ByPlateNumber[*Track] // tracks by their fixes' VehicleNo (tracks holds them all)
	fixes          []fixEntry
	events         []eventEntry
	out            []Change
	sites          []int32
	zones          []int32
	metrics        *engineMetrics
	tracked        atomic.Int64
	risks          riskBook
	clock          eventClock
	silence        *SignalLost // nil when signal_lost is disabled
	silIdx         int         // its episode slot
	timed          []int       // the fix rules that are also TimeRules
	ticked         time.Time   // watermark of the last Tick
	dirty          []*Track    // tracks changed since the last Dirty
	due            dueHeap     // tracks by the next time a time-driven rule may decide for them
	cur            Observation // ProcessFix's scratch observation
	blank          Episode     // stands in for a track's empty episode while a rule looks at it
	names          []Rule      // the rule of each episode slot
	slot           map[Rule]int
	batches        uint64 // ProcessBatch and ProcessEvent calls so far
}

// NewEngine returns an engine for cfg (defaults applied, then validated) over city c.
func NewEngine(cfg Config, c *city.City, log *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create the detection engine: %w", err)
	}
	e := &Engine{cfg: cfg, log: log, tracks: make(map[string]*Track)}
	e.city.Store(c)
	e.fixes, e.events = registerRules(cfg.Rules)
	e.clock.idle, e.clock.now = cfg.IdlePartition, time.Now
	for i, f := range e.fixes {
		if sl, ok := f.rule.(*SignalLost); ok {
			e.silence, e.silIdx = sl, i
		}
		if _, ok := f.rule.(TimeRule); ok {
			e.timed = append(e.timed, i)
		}
	}
	e.names = e.ruleNames()
	e.slot = make(map[Rule]int, len(e.names))
	for i, n := range e.names {
		e.slot[n] = i
	}
	e.metrics = newEngineMetrics(reg, e.names)
	return e, nil
}

func (e *Engine) ruleNames() []Rule {
	var names []Rule
	for _, f := range e.fixes {
		names = append(names, f.rule.Name())
	}
	for _, ev := range e.events {
		names = append(names, ev.rule.Name())
	}
	return names
}

// SetCity swaps the reference data. Vehicle state is kept.
func (e *Engine) SetCity(c *city.City) { e.city.Store(c) }

// City returns the reference data in force.
func (e *Engine) City() *city.City { return e.city.Load() }

// Judged is the event-time watermark of the last Tick: the time-driven rules have taken every
// decision due up to it.
func (e *Engine) Judged() time.Time { return e.ticked }

// Read is the newest device time read from any input partition this engine owns. Once every
// partition has gone quiet and a Tick has run, Judged reaches it: every decision the records
// read so far can give is taken.
func (e *Engine) Read() time.Time {
	var newest time.Time
	for _, pt := range e.clock.newest {
		if pt.event.After(newest) {
			newest = pt.event
		}
	}
	return newest
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

// Changes returns the alert changes emitted since the last Reset. The slice is reused.
func (e *Engine) Changes() []Change { return e.out }

// Reset forgets the emitted changes, keeping capacity.
func (e *Engine) Reset() {
	clear(e.out)
	e.out = e.out[:0]
}

// ProcessFix runs the fix rules over f.
func (e *Engine) ProcessFix(f *record.Fix) {
	c := e.city.Load()
	e.clock.observe(f.Src.Topic, f.Src.Partition, f.Time, f.Src.Behind)
	tr := e.numberedTrack(f.VehicleID, f.VehicleNo)
	e.markDirty(tr)
	tr.src = partitionKey{f.Src.Topic, f.Src.Partition}
	// The observation is the engine's scratch value, not a new one per fix: the rules take it by
	// pointer (through interfaces, so a local would escape to the heap) and none keeps it.
	cur := &e.cur
	*cur = Observation{Time: f.Time, LL: orb.Point{f.Lon, f.Lat}, Lifted: f.Lifted, ACC: f.ACC}
	cur.XY = c.Proj.Forward(cur.LL)
	var prev *Observation
	if tr.hasLast {
		prev = &tr.last
		if !f.Time.After(prev.Time) {
			e.metrics.skipped.WithLabelValues("out_of_order").Inc()
			return
		}
		dt := f.Time.Sub(prev.Time).Seconds()
		dist := planarDist(prev.XY, cur.XY)
		implied := dist / dt * 3.6
		// The farthest the truck can have gone: at the higher of the two reported speeds with some
		// slack (or the physical maximum without them), plus GPS error. Farther is a jump: the
		// fix is stored but not judged; three jumps in a row are believed.
		vmax := e.cfg.MaxSpeedKmh
		if f.HasSpeed && prev.Reported {
			vmax = min(vmax, max(float64(f.SpeedKmh), prev.SpeedKmh)*1.3+25)
		}
		if dist > vmax/3.6*dt+e.cfg.JumpSlackM && tr.jumps < 3 {
			tr.jumps++
			e.metrics.skipped.WithLabelValues("jump").Inc()
			return
		}
		if f.HasSpeed {
			cur.SpeedKmh, cur.Reported = float64(f.SpeedKmh), true
		} else {
			cur.SpeedKmh = implied
		}
	} else if f.HasSpeed {
		cur.SpeedKmh, cur.Reported = float64(f.SpeedKmh), true
	}
	tr.jumps = 0
	if tr.ref != c {
		tr.ref, tr.vehicle, tr.permits = c, c.Vehicle(f.VehicleID), c.PermitsOf(f.VehicleID)
	}
	cur.Vehicle = tr.vehicle
	cur.Permit = city.ActiveAmong(tr.permits, f.Time)
	if !tr.scored || tr.registered != (cur.Vehicle != nil) || tr.permitted != (cur.Permit != nil) {
		tr.registered, tr.permitted, tr.scored = cur.Vehicle != nil, cur.Permit != nil, true
		e.updateRisk(tr, f.Time)
	}
	e.sites = c.SitesAt(cur.XY, e.sites[:0])
	e.zones = c.ZonesAt(cur.XY, e.zones[:0])
	cur.Sites, cur.Zones = e.sites, e.zones

	// A gap longer than signal_lost's threshold after a fix on the road is a silence even when the
	// watermark never saw it (a backlog read partition by partition): open it now, and the fix
	// below ends it.
	if sl := e.episode(tr, e.silIdx); e.silence != nil && prev != nil && sl.alert == nil {
		if v := e.silence.Due(c, tr, sl, cur.Time); v.Active {
			ep := e.keep(tr, e.silIdx, sl)
			ep.Since, ep.SinceLL, ep.Fixes = prev.Time, prev.LL, 1
			e.open(tr, ep, RuleSignalLost, e.silence, PhaseIn, &Observation{Time: prev.Time.Add(e.silence.cfg.After), LL: prev.LL}, v)
		}
	}
	for i := range e.fixes {
		fe := &e.fixes[i]
		ep := e.episode(tr, i)
		v := fe.rule.Judge(c, prev, cur, ep)
		if v.Active || !ep.empty() {
			ep = e.keep(tr, i, ep)
			e.step(tr, ep, fe.rule.Name(), fe.rule, fe.timing, fe.phase, cur, v)
			e.release(tr, i)
		}
	}
	// Event-rule episodes end once their window has passed, for this truck and for the watermark:
	// a camera event of the same episode may still be on its way on a lagging events partition.
	for i := range e.events {
		ee := &e.events[i]
		ep := tr.slot(len(e.fixes) + i)
		if ep != nil && ep.alert != nil && f.Time.Sub(ep.Last) > ee.timing.Window {
			if wm, _ := e.clock.watermark(); wm.Sub(ep.Last) > ee.timing.Window {
				e.resolve(ep, ee.rule, ep.Last.Add(ee.timing.Window))
				e.release(tr, len(e.fixes)+i)
			}
		}
	}
	tr.inSite = len(cur.Sites) > 0
	cur.Sites, cur.Zones = nil, nil
	tr.last, tr.hasLast = *cur, true
	e.schedule(tr, e.ticked)
}

// ProcessBatch runs the rules over a batch in event-time order: fixes and events are sorted by
// device time (stably, so one vehicle's fixes with equal times keep their order) and merged, and the
// time-driven rules tick whenever the watermark has advanced by a second. Reading several
// partitions yields each one's records in runs; merging them keeps a partition that was read
// first from running ahead of the others, and puts a fix that arrived late within the batch back
// in its place. The slices are reordered in place.
func (e *Engine) ProcessBatch(fixes []record.Fix, events []record.Event) {
	if c := e.city.Load(); c != e.refCity {
		// reloaded reference data: forget the registrations looked up in the old one, so that it
		// is not kept alive by trucks that do not report again
		e.refCity = c
		for _, tr := range e.tracks {
			tr.ref, tr.vehicle, tr.permits = nil, nil, nil
		}
	}
	e.clock.batch = e.clock.now() // a batch is read at once: one wall time for its records
	defer func() { e.clock.batch = time.Time{} }()
	e.batches++
	for i := range events { // in the order read, before they are sorted
		e.admit(&events[i])
	}
	slices.SortStableFunc(fixes, func(a, b record.Fix) int { return a.Time.Compare(b.Time) })
	slices.SortStableFunc(events, func(a, b record.Event) int { return a.Time.Compare(b.Time) })
	i, j := 0, 0
	for i < len(fixes) || j < len(events) {
		if j >= len(events) || (i < len(fixes) && !fixes[i].Time.After(events[j].Time)) {
			e.ProcessFix(&fixes[i])
			i++
		} else {
			e.processEvent(&events[j])
			j++
		}
		if wm, ok := e.clock.watermark(); ok && wm.Sub(e.ticked) >= time.Second {
			e.Tick()
		}
	}
	e.Tick()
}

// Tick runs the time-driven rules (signal_lost, trip_unclosed's pending decisions) at the
// event-time watermark: the newest device time every busy partition, of fixes and of events, has
// reached. A backlog or a lagging partition holds the watermark back, so the pipeline's own lag
// never looks like a silent truck and no decision is taken before the evidence that could change
// it has been read; nothing ticks at shutdown.
func (e *Engine) Tick() {
	if len(e.timed) == 0 {
		return
	}
	wm, ok := e.clock.watermark()
	if !ok || !wm.After(e.ticked) {
		return
	}
	e.ticked = wm
	c := e.city.Load()
	for len(e.due) > 0 && !e.due[0].due.After(wm) {
		tr := heap.Pop(&e.due).(*Track)
		if !tr.hasLast {
			continue
		}
		if tr.restored {
			if pt, ok := e.clock.get(tr.src); !ok || pt.expected {
				// its partition not read since the restore: its silence is this process's, not
				// the truck's (or another instance owns the partition now); looked at again later
				tr.due = wm.Add(time.Second)
				heap.Push(&e.due, tr)
				continue
			}
			tr.restored = false
		}
		for _, i := range e.timed {
			ep := e.episode(tr, i)
			if ep.alert != nil {
				continue
			}
			fe := &e.fixes[i]
			pending := len(ep.Pending)
			v := fe.rule.(TimeRule).Due(c, tr, ep, wm)
			if len(ep.Pending) != pending {
				e.markDirty(tr)
			}
			if !v.Active {
				e.release(tr, i)
				continue
			}
			ep = e.keep(tr, i, ep)
			e.markDirty(tr)
			ep.Since, ep.SinceLL, ep.Fixes = v.Since, tr.last.LL, 1
			e.open(tr, ep, fe.rule.Name(), fe.rule, fe.phase, &Observation{Time: wm, LL: tr.last.LL}, v)
			if v.Instant {
				e.resolve(ep, fe.rule, v.Since)
			}
			e.release(tr, i)
		}
		e.schedule(tr, wm)
	}
}

// ProcessEvent runs the event rules over ev.
func (e *Engine) ProcessEvent(ev *record.Event) {
	e.batches++
	e.admit(ev)
	e.processEvent(ev)
}

// admit notes where ev stands among its vehicle's events: an event read again after a restart or
// a rebalance (from the committed offsets, which a checkpoint may be ahead of) is at an offset
// below the one after the newest judged before this batch. Called in the order read, for every
// event of a batch before any is judged, as the batch is judged in event-time order.
func (e *Engine) admit(ev *record.Event) {
	if ev.Src.Topic == "" {
		return // not from Kafka (tests, tools): nothing to tell a replay by
	}
	tr := e.track(ev.VehicleID)
	if k := (partitionKey{ev.Src.Topic, ev.Src.Partition}); tr.evSrc != k {
		tr.evSrc, tr.evNext = k, 0 // first seen, or the topic was repartitioned
	}
	if tr.evBatch != e.batches {
		tr.evBatch, tr.evFloor = e.batches, tr.evNext
	}
	tr.evNext = max(tr.evNext, ev.Src.Offset+1)
}

func (e *Engine) processEvent(ev *record.Event) {
	c := e.city.Load()
	e.clock.observe(ev.Src.Topic, ev.Src.Partition, ev.Time, ev.Src.Behind)
	tr := e.track(ev.VehicleID)
	if ev.Src.Topic != "" && ev.Src.Offset < tr.evFloor {
		// judged before this restart or rebalance: stored again, not judged twice (an episode's
		// evidence counted again, or its last sighting moved back in time)
		e.metrics.skippedEvents.WithLabelValues("replayed").Inc()
		return
	}
	e.markDirty(tr)
	if tr.src.topic == "" { // seen by cameras only so far: its state goes with the events partition
		tr.src = partitionKey{ev.Src.Topic, ev.Src.Partition}
	}
	obs := Observation{Time: ev.Time}
	switch {
	case ev.HasPos:
		obs.LL = orb.Point{ev.Lon, ev.Lat}
	case ev.SiteID != "" && c.Site(ev.SiteID) != nil:
		obs.LL = c.Proj.Inverse(c.Site(ev.SiteID).Area.Bound.Center())
	case tr.hasLast:
		obs.LL = tr.last.LL
	}
	for i := range e.fixes {
		if o, ok := e.fixes[i].rule.(EventObserver); ok {
			ep := e.episode(tr, i)
			o.ObserveEvent(c, ev, ep)
			if !ep.empty() {
				e.keep(tr, i, ep)
			}
		}
	}
	for i := range e.events {
		ee := &e.events[i]
		slot := len(e.fixes) + i
		v := ee.rule.JudgeEvent(c, tr, ev)
		ep := tr.slot(slot)
		if ep != nil && ep.alert != nil && ev.Time.Sub(ep.Last) > ee.timing.Window {
			e.resolve(ep, ee.rule, ep.Last.Add(ee.timing.Window))
		}
		if v.Clear && ep != nil && ep.alert != nil {
			e.resolve(ep, ee.rule, ev.Time)
		}
		if v.Active {
			ep = e.keep(tr, slot, e.episode(tr, slot))
			e.step(tr, ep, ee.rule.Name(), ee.rule, ee.timing, ee.phase(c, ev), &obs, v)
		}
		e.release(tr, slot)
	}
	if tr.dueAt < 0 {
		e.schedule(tr, e.ticked) // a track seen by cameras only may have decisions due too
	}
}

// episode returns the track's episode of a rule slot, or the engine's blank one (emptied) when
// the track keeps none: most trucks have nothing going on for most rules, and an empty episode
// costs no memory.
func (e *Engine) episode(tr *Track, i int) *Episode {
	if ep := tr.slot(i); ep != nil {
		return ep
	}
	e.blank = Episode{}
	return &e.blank
}

// keep makes ep the track's own episode of slot i (a copy, when ep is the blank one) and returns it.
func (e *Engine) keep(tr *Track, i int, ep *Episode) *Episode {
	if ep != &e.blank {
		return ep
	}
	own := new(Episode)
	*own = *ep
	e.blank = Episode{}
	e.setSlot(tr, i, own)
	return own
}

// release drops the track's episode of slot i when it holds nothing any more, and the track's
// slots once none holds anything.
func (e *Engine) release(tr *Track, i int) {
	if ep := tr.slot(i); ep != nil && ep.empty() {
		tr.episodes[i] = nil
		if !slices.ContainsFunc(tr.episodes, func(ep *Episode) bool { return ep != nil }) {
			tr.episodes = nil
		}
	}
}

// slot returns the track's episode of rule slot i, nil when it keeps none.
func (tr *Track) slot(i int) *Episode {
	if tr.episodes == nil {
		return nil
	}
	return tr.episodes[i]
}

// setSlot makes ep the track's episode of rule slot i. A track gets its slots with its first
// episode: most trucks have none for most of the time, and a hundred thousand empty slot arrays
// were a fifth of the tracks' memory.
func (e *Engine) setSlot(tr *Track, i int, ep *Episode) {
	if tr.episodes == nil {
		tr.episodes = make([]*Episode, len(e.names))
	}
	tr.episodes[i] = ep
}

// empty reports whether the episode holds nothing: no alert, no condition under way, no rule
// bookkeeping.
func (ep *Episode) empty() bool {
	return ep.alert == nil && ep.Since.IsZero() && ep.Last.IsZero() && ep.Cleared.IsZero() && ep.Mark.IsZero() && ep.Fixes == 0 &&
		ep.Ref == "" && !ep.Anchored && len(ep.Seen) == 0 && len(ep.Pending) == 0 && ep.Anchor == (orb.Point{}) && ep.SinceLL == (orb.Point{})
}

type describer interface{ Describe(a *Alert) string }

// step advances one episode by one verdict: the shared state machine of every rule.
func (e *Engine) step(tr *Track, ep *Episode, rule Rule, d describer, t Timing, phase Phase, cur *Observation, v Verdict) {
	switch {
	case v.Active:
		if ep.Fixes == 0 && ep.alert == nil {
			ep.Since, ep.SinceLL = cur.Time, cur.LL
		}
		ep.Fixes++
		if cur.Time.After(ep.Last) { // events of one truck from several cameras need not come in time order
			ep.Last = cur.Time
		}
		ep.Cleared = time.Time{}
		if ep.alert == nil {
			if v.Immediate || (cur.Time.Sub(ep.Since) >= t.For && ep.Fixes >= t.MinFixes) {
				e.open(tr, ep, rule, d, phase, cur, v)
				if v.Instant {
					e.resolve(ep, d, cur.Time)
				}
			}
			return
		}
		// The peak value is kept; it reaches the feed with the next change, so repeats within an
		// episode do not flood it.
		a := ep.alert
		if v.Value > a.Value {
			a.Value = v.Value
		}
		if v.Severity.rank() > a.Severity.rank() {
			a.Severity = v.Severity
			e.emit(ChangeEscalated, a, d, cur.Time)
			return
		}
		if t.EscalateAfter > 0 && a.Severity != SeveritySevere && cur.Time.Sub(a.Start) >= t.EscalateAfter {
			a.Severity = SeveritySevere
			e.emit(ChangeEscalated, a, d, cur.Time)
		}
	case v.Clear:
		if ep.alert != nil {
			if ep.Cleared.IsZero() {
				ep.Cleared = cur.Time
			}
			if cur.Time.Sub(ep.Last) < t.ClearFor {
				return // clearing: a relapse continues this alert
			}
			e.resolveAt(ep, d, ep.Cleared, cur.Time)
		}
		// Over: the next active observation starts a new episode, so nothing of this one is
		// needed any more and, unless the rule keeps bookkeeping in it, it is released.
		ep.Fixes, ep.Since, ep.SinceLL, ep.Last, ep.Cleared = 0, time.Time{}, orb.Point{}, time.Time{}, time.Time{}
	}
}

func (e *Engine) open(tr *Track, ep *Episode, rule Rule, d describer, phase Phase, cur *Observation, v Verdict) {
	c := e.city.Load()
	a := &Alert{
		ID:        AlertID(rule, tr.VehicleID, ep.Since),
		Rule:      rule,
		Severity:  v.Severity,
		Phase:     phase,
		Status:    StatusOpen,
		VehicleID: tr.VehicleID,
		Place:     v.Place,
		Start:     ep.Since,
		Lat:       ep.SinceLL[1],
		Lon:       ep.SinceLL[0],
		Value:     v.Value,
		Limit:     v.Limit,
	}
	if veh := c.Vehicle(tr.VehicleID); veh != nil {
		a.Company = veh.Company
	}
	if p := c.ActivePermit(tr.VehicleID, cur.Time); p != nil {
		a.PermitID = p.ID
	}
	if dist := c.DistrictAt(c.Proj.Forward(ep.SinceLL)); dist != nil {
		a.District = dist.ID
	}
	ep.alert = a
	e.emit(ChangeOpened, a, d, cur.Time)
}

func (e *Engine) resolve(ep *Episode, d describer, at time.Time) { e.resolveAt(ep, d, at, at) }

// resolveAt closes ep's alert with its end at end, decided at at (later, after ClearFor).
func (e *Engine) resolveAt(ep *Episode, d describer, end, at time.Time) {
	a := ep.alert
	a.Status = StatusResolved
	a.End = end
	ep.alert = nil // closed before emit, so the risk it recomputes no longer counts it
	ep.Fixes = 0
	ep.Cleared = time.Time{}
	e.emit(ChangeResolved, a, d, at)
}

func (e *Engine) emit(kind ChangeKind, a *Alert, d describer, at time.Time) {
	a.Version++
	a.Updated = at
	a.Evidence = d.Describe(a)
	e.out = append(e.out, Change{Kind: kind, Alert: *a})
	e.metrics.alerts.WithLabelValues(string(a.Rule), string(a.Severity), string(kind)).Inc()
	if tr := e.tracks[a.VehicleID]; tr != nil {
		if kind == ChangeOpened {
			tr.history = append(tr.history, at)
			if len(tr.history) > riskHistoryMax {
				tr.history = tr.history[len(tr.history)-riskHistoryMax:]
			}
		}
		e.updateRisk(tr, at)
	}
}

// eventClock tracks, per input partition (fixes and events), the newest device time read, when
// (wall time) its last record was read, and how many records were left behind it then.
type eventClock struct {
	idle  time.Duration
	now   func() time.Time
	batch time.Time // wall time for the whole batch being processed (zero outside ProcessBatch)
	// newest holds one entry per input partition: a dozen at most for one instance, looked at for
	// every record read (observe, watermark), so a slice scanned in order rather than a map.
	newest []partitionSlot
}

type partitionSlot struct {
	key partitionKey
	partitionTime
}

// get returns the partition's entry and whether it has one.
func (c *eventClock) get(k partitionKey) (partitionTime, bool) {
	if i := c.index(k); i >= 0 {
		return c.newest[i].partitionTime, true
	}
	return partitionTime{}, false
}

// set stores the partition's entry.
func (c *eventClock) set(k partitionKey, pt partitionTime) { *c.slot(k) = pt }

// slot returns the partition's entry, added empty when it has none.
func (c *eventClock) slot(k partitionKey) *partitionTime {
	i := c.index(k)
	if i < 0 {
		c.newest = append(c.newest, partitionSlot{key: k})
		i = len(c.newest) - 1
	}
	return &c.newest[i].partitionTime
}

// forget drops the partition's entry, if any.
func (c *eventClock) forget(k partitionKey) {
	if i := c.index(k); i >= 0 {
		c.newest = slices.Delete(c.newest, i, i+1)
	}
}

func (c *eventClock) index(k partitionKey) int {
	for i := range c.newest {
		if c.newest[i].key == k {
			return i
		}
	}
	return -1
}

type partitionKey struct {
	topic     string
	partition int32
}

type partitionTime struct {
	event    time.Time // newest device time read
	seen     time.Time // wall time of the last record (or, while expected, of the assignment)
	behind   int64     // records left in the partition when the last one was read
	expected bool      // assigned with records to read, none read yet
}

// wall is the wall time: the batch's, read once, while a batch is processed.
func (c *eventClock) wall() time.Time {
	if !c.batch.IsZero() {
		return c.batch
	}
	return c.now()
}

func (c *eventClock) observe(topic string, partition int32, t time.Time, behind int64) {
	pt := c.slot(partitionKey{topic, partition})
	if t.After(pt.event) {
		pt.event = t
	}
	pt.seen, pt.behind, pt.expected = c.wall(), behind, false
}

// watermark is the oldest newest-time of the busy partitions: those with records left to read
// (a backlog, a lagging partition) or that delivered one within the idle time (their next
// records may be on the way). There is none while a partition assigned with records to read has
// delivered nothing yet (for up to the idle time). A quiet, caught-up partition (a gate camera's
// topic between events) holds nothing back. With no busy partition, it is the newest time read.
func (c *eventClock) watermark() (time.Time, bool) {
	var wm, newest time.Time
	now := c.wall()
	for i := range c.newest {
		pt := &c.newest[i].partitionTime
		if pt.expected {
			if now.Sub(pt.seen) <= c.idle {
				// A partition just assigned has not delivered yet: its records may be older than
				// anything read so far (they are, after a restart), and nothing may be decided
				// before them.
				return time.Time{}, false
			}
			continue // silent since its assignment: it holds nothing back
		}
		if pt.event.After(newest) {
			newest = pt.event
		}
		if (pt.behind > 0 || now.Sub(pt.seen) <= c.idle) && (wm.IsZero() || pt.event.Before(wm)) {
			wm = pt.event
		}
	}
	if wm.IsZero() {
		wm = newest
	}
	return wm, !wm.IsZero()
}

func planarDist(a, b orb.Point) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }

type engineMetrics struct {
	alerts        *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	skippedEvents *prometheus.CounterVec
	tracked       prometheus.Gauge
}

func newEngineMetrics(reg prometheus.Registerer, rules []Rule) *engineMetrics {
	m := &engineMetrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_alert_changes_total",
			Help: "Alert changes emitted, by rule, severity and change (opened, escalated, resolved)."}, []string{"rule", "severity", "change"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_detector_skipped_fixes_total",
			Help: "Fixes stored but not judged, by reason (out_of_order, jump)."}, []string{"reason"}),
		skippedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_detector_skipped_events_total",
			Help: "Events stored but not judged, by reason (replayed: judged before a restart or rebalance)."}, []string{"reason"}),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_tracked_vehicles",
			Help: "Vehicles with detector state."}),
	}
	for _, r := range rules {
		m.alerts.WithLabelValues(string(r), string(SeverityWarning), string(ChangeOpened))
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.skipped, m.skippedEvents, m.tracked)
	}
	return m
}
