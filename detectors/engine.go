// Package detectors owns detection: one Engine keeps explicit per-vehicle state (a Track) and runs
// every rule over each GPS fix and each camera/sensor event, in event time. A rule is one small
// type behind FixRule or EventRule, registered in one place (rules.go) with its own config
// section; the Engine's shared episode state machine (episode.go: pending → firing → clearing →
// resolved, like Prometheus' alerting rules) turns a rule's per-observation verdicts into alerts
// with stable ids, so one episode gives one alert whose changes (opened, escalated, updated,
// resolved) are emitted.
//
// The files: engine.go the engine and its batch loop; rules.go what a rule is and where rules are
// registered, rule_*.go the rules; episode.go the episodes' states and transitions; track.go the
// vehicles' tracks; eventtime.go event time and the watermark; due.go the time-driven rules;
// checkpoint*.go vehicle state across restarts; rebalance.go partitions moving between
// instances; risk.go the risk score; city.go reference data reloads; metrics.go the metrics.
package detectors

import (
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

// Config configures the engine and every rule.
type Config struct {
	// MaxSpeedKmh is the highest speed a truck can really have; a fix implying more is a GPS jump.
	MaxSpeedKmh float64 `yaml:"max_speed_kmh"`
	// JumpSlackM is the GPS error of two fixes allowed on top of the distance a truck can cover
	// between them (at the speed it had, accelerating at most MaxAccel, never above MaxSpeedKmh)
	// before the second one counts as a jump.
	JumpSlackM float64 `yaml:"jump_slack_m"`
	// MaxAccel is the highest acceleration of a truck, m/s², for the jump test.
	MaxAccel float64 `yaml:"max_accel"`
	// SpeedWindow: a speed derived from positions (no speed_kmh) is over at least this long.
	SpeedWindow time.Duration `yaml:"speed_window"`
	// StopRadiusM and StillFor: a truck that has stayed within StopRadiusM of one place for
	// StillFor is still (speed 0, stopped at a site), whatever one fix's jitter says.
	StopRadiusM float64       `yaml:"stop_radius_m"`
	StillFor    time.Duration `yaml:"still_for"`
	// SilentAfter: an open fix-driven episode (speeding, off route, in a zone, stopped,
	// unlicensed) of a track that has sent no fix for this long ends, as of its last evidence.
	SilentAfter time.Duration `yaml:"silent_after"`
	Rules       RulesConfig   `yaml:"rules"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxSpeedKmh == 0 {
		c.MaxSpeedKmh = 150
	}
	if c.JumpSlackM == 0 {
		c.JumpSlackM = 60
	}
	if c.MaxAccel == 0 {
		c.MaxAccel = 2.5
	}
	if c.SpeedWindow == 0 {
		c.SpeedWindow = 20 * time.Second
	}
	if c.StopRadiusM == 0 {
		c.StopRadiusM = 60
	}
	if c.StillFor == 0 {
		c.StillFor = 30 * time.Second
	}
	if c.SilentAfter == 0 {
		c.SilentAfter = 5 * time.Minute
	}
	c.Rules = c.Rules.withDefaults()
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.MaxSpeedKmh <= 0 || c.MaxSpeedKmh > 400 {
		return fmt.Errorf("detectors.max_speed_kmh must be within (0, 400], got %g", c.MaxSpeedKmh)
	}
	if c.JumpSlackM < 0 || c.MaxAccel <= 0 || c.StopRadiusM <= 0 {
		return fmt.Errorf("detectors.jump_slack_m must not be negative, max_accel and stop_radius_m must be positive, got %g, %g and %g", c.JumpSlackM, c.MaxAccel, c.StopRadiusM)
	}
	if c.SpeedWindow < time.Second || c.SpeedWindow > 5*time.Minute || c.StillFor <= 0 || c.SilentAfter < time.Minute {
		return fmt.Errorf("detectors.speed_window must be within [1s, 5m], still_for positive and silent_after at least 1m, got %s, %s and %s", c.SpeedWindow, c.StillFor, c.SilentAfter)
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
	warmed         byte                         // what warm read, kept so that its reads are made
	fixes          []fixEntry
	events         []eventEntry
	out            []Change
	sites          []int32
	zones          []int32
	metrics        *engineMetrics
	tracked        atomic.Int64
	risks          riskBook
	advanced       time.Time      // the event time the pipeline has read every input up to (Advance)
	silence        *SignalLost    // nil when signal_lost is disabled
	silIdx         int            // its episode slot
	timed          []int          // the fix rules that are also TimeRules
	ticked         time.Time      // watermark of the last Tick
	dirty          []*Track       // tracks changed in this epoch: since the last Dirty or Snapshot
	epoch          uint32         // counts Dirty and Snapshot calls (Track.marked), from 1
	inflight       *cut           // the last snapshot taken, nil once known to be encoded
	spare          []*Track       // an encoded snapshot's list, for the next epoch's dirty
	released       snapshotMemory // the memory of snapshots written and released, for the next
	due            dueHeap        // tracks by the next time a time-driven rule may decide for them
	cur            Observation    // ProcessFix's scratch observation
	prev           Observation    // the track's last one, as ProcessFix reads it (Track.last)
	blank          Episode        // stands in for a track's empty episode while a rule looks at it
	names          []Rule         // the rule of each episode slot
	slot           map[Rule]int
	batches        uint64 // ProcessBatch and ProcessEvent calls so far
}

// NewEngine returns an engine for cfg (defaults applied, then validated) over city c.
func NewEngine(cfg Config, c *city.City, log *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create the detection engine: %w", err)
	}
	// Sized for the city's registered vehicles, the tracks a fleet's first minutes make: grown
	// from empty, the two maps were rehashed on the way to 100,000 (the risks' alone 1.3 % of a
	// backlog's CPU profile).
	fleet := 0
	if c != nil {
		fleet = len(c.Vehicles)
	}
	e := &Engine{cfg: cfg, log: log, tracks: make(map[string]*Track, fleet), epoch: 1}
	e.risks.risks = make(map[string]Risk, fleet)
	e.city.Store(c)
	e.fixes, e.events = registerRules(cfg.Rules)
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

// rule returns the rule of episode slot i: a FixRule or an EventRule.
func (e *Engine) rule(i int) any {
	if i < len(e.fixes) {
		return e.fixes[i].rule
	}
	return e.events[i-len(e.fixes)].rule
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

// Changes returns the alert changes emitted since the last Reset. The slice is reused.
func (e *Engine) Changes() []Change { return e.out }

// Reset forgets the emitted changes, keeping capacity.
func (e *Engine) Reset() {
	clear(e.out)
	e.out = e.out[:0]
}

// ProcessFix runs the fix rules over f. A fix the track's kinematics hold back (the first after
// a gap: a re-acquisition snap, or the truck) is judged before f when f confirms it, and dropped
// when f refutes it (track.go: held).
func (e *Engine) ProcessFix(f *record.Fix) {
	tr := e.numberedTrack(f.VehicleID, f.VehicleNo)
	e.markDirty(tr)
	tr.shard, tr.restored = f.Src.Shard, false // its own input is being read
	if h := tr.held; h != nil {
		if !f.Time.After(h.fix.Time) {
			e.metrics.skipped.WithLabelValues("out_of_order").Inc()
			return
		}
		tr.held = nil
		if f.Time.After(h.until) || e.confirms(tr, &h.fix, f) {
			e.judgeFix(tr, &h.fix, true) // confirmed, or too long ago for f to tell
		} else {
			e.metrics.skipped.WithLabelValues("snap").Inc()
		}
	}
	e.judgeFix(tr, f, false)
}

// judgeFix runs the fix rules over f, a fix of tr: confirmed when it was held back and the next
// fix confirmed it (it is not held back again).
func (e *Engine) judgeFix(tr *Track, f *record.Fix, confirmed bool) {
	c := e.city.Load()
	// The observation is the engine's scratch value, not a new one per fix: the rules take it by
	// pointer (through interfaces, so a local would escape to the heap) and none keeps it.
	cur := &e.cur
	*cur = Observation{Time: f.Time, LL: orb.Point{f.Lon, f.Lat}, Lifted: f.Lifted, ACC: f.ACC}
	cur.XY = c.Proj.Forward(cur.LL)
	var prev *Observation
	if tr.hasLast {
		prev = &e.prev
		tr.last.observation(prev)
		if !f.Time.After(prev.Time) {
			e.metrics.skipped.WithLabelValues("out_of_order").Inc()
			return
		}
	}
	if !e.kinematics(tr, f, prev, cur, confirmed) { // track.go: jumps, derived speed, stillness
		if tr.held != nil {
			e.schedule(tr, e.ticked) // judged alone if no next fix comes in time
		}
		return
	}
	cur.Vehicle, cur.Permit, cur.Route = tr.lookUp(c, f.Time)
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
	// It is judged as of the time it fell due, as Tick judges it, not as of this fix: the alert
	// opens with the same value whether the watermark or this fix found the silence.
	if sl := e.episode(tr, e.silIdx); e.silence != nil && prev != nil && !sl.state.alertOpen() {
		if due := prev.Time.Add(e.silence.cfg.After); !cur.Time.Before(due) {
			if v, _ := e.silence.Due(c, tr, sl, due); v.Active {
				ep := e.keep(tr, e.silIdx, sl)
				e.openAt(tr, e.silIdx, ep, e.silence, PhaseIn, prev.Time, prev.LL, &Observation{Time: due, LL: prev.LL}, v)
			}
		}
	}
	if prev != nil && tr.episodes != nil {
		// what the silence before this fix ended or escalated, as Tick would have (episode.go)
		e.expire(tr, cur.Time)
	}
	for i := range e.fixes {
		fe := &e.fixes[i]
		ep := e.episode(tr, i)
		v := fe.rule.Judge(c, prev, cur, ep)
		if v.Active || !ep.empty() {
			ep = e.keep(tr, i, ep)
			e.step(tr, i, ep, fe.rule, fe.timing, fe.phase, cur, v)
			e.release(tr, i)
		}
	}
	// Event-rule episodes end once their window has passed, for this truck and for event time: a
	// camera event of the same episode may still be on its way on a lagging input.
	for i := range e.events {
		ee := &e.events[i]
		slot := len(e.fixes) + i
		ep := tr.slot(slot)
		if ep != nil && ep.state.alertOpen() && f.Time.Sub(ep.last) > ee.timing.Window {
			if e.advanced.Sub(ep.last) > ee.timing.Window {
				e.resolve(slot, ep, ee.rule, ep.last.Add(ee.timing.Window))
				e.release(tr, slot)
			}
		}
	}
	tr.inSite = len(cur.Sites) > 0
	cur.Sites, cur.Zones = nil, nil
	tr.last.remember(cur)
	tr.hasLast = true
	e.schedule(tr, e.ticked)
}

// ProcessBatch runs the rules over a batch in event-time order: fixes and events are sorted by
// device time (stably, so one vehicle's fixes with equal times keep their order) and merged, and the
// time-driven rules tick, up to the event time the batch's records have reached and at most to
// what Advance allowed, whenever that has moved on by a second. Reading several inputs yields
// each one's records in runs; merging them keeps an input that was read first from running ahead
// of the others, and puts a fix that arrived late within the batch back in its place. The slices
// are reordered in place. The pipeline calls Advance with the batch's records counted first.
func (e *Engine) ProcessBatch(fixes []record.Fix, events []record.Event) {
	e.followCity()
	e.batches++
	for i := range events { // in the order read, before they are sorted
		e.admit(&events[i])
	}
	slices.SortStableFunc(fixes, func(a, b record.Fix) int { return a.Time.Compare(b.Time) })
	slices.SortStableFunc(events, func(a, b record.Event) int { return a.Time.Compare(b.Time) })
	i, j, warmed := 0, 0, 0
	for i < len(fixes) || j < len(events) {
		var judged time.Time
		if j >= len(events) || (i < len(fixes) && !fixes[i].Time.After(events[j].Time)) {
			if i == warmed { // warm.go
				e.warm(fixes[i:])
				warmed = min(i+warmFixes, len(fixes))
			}
			judged = fixes[i].Time
			e.ProcessFix(&fixes[i])
			i++
		} else {
			judged = events[j].Time
			e.processEvent(&events[j])
			j++
		}
		// Every record of the batch up to the one just judged is judged, the rest are later: the
		// time-driven rules may decide up to its time, once no other record has that time.
		if at := minTime(e.advanced, judged); at.Sub(e.ticked) >= time.Second &&
			(i >= len(fixes) || fixes[i].Time.After(judged)) && (j >= len(events) || events[j].Time.After(judged)) {
			e.tick(at)
		}
	}
	e.Tick()
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
	if ev.Src.Shard == (record.Shard{}) {
		return // not from Kafka (tests, tools): nothing to tell a replay by
	}
	tr := e.track(ev.VehicleID)
	e.settle(tr)
	in := tr.events
	if in == nil { // its first (batch 0 is none: every batch has counted itself by now)
		in = &eventInput{shard: ev.Src.Shard}
		tr.events = in
	}
	if in.shard != ev.Src.Shard {
		in.shard, in.next = ev.Src.Shard, 0 // the topic was repartitioned
	}
	if in.batch != e.batches {
		in.batch, in.floor = e.batches, in.next
	}
	in.next = max(in.next, ev.Src.Offset+1)
}

func (e *Engine) processEvent(ev *record.Event) {
	c := e.city.Load()
	tr := e.track(ev.VehicleID)
	if in := tr.events; in != nil && ev.Src.Shard != (record.Shard{}) && ev.Src.Offset < in.floor {
		// judged before this restart or rebalance: stored again, not judged twice (an episode's
		// evidence counted again, or its last sighting moved back in time)
		e.metrics.skippedEvents.WithLabelValues("replayed").Inc()
		return
	}
	e.markDirty(tr)
	if tr.shard == (record.Shard{}) { // seen by cameras only so far: its state goes with the events' shard
		tr.shard = ev.Src.Shard
	}
	if tr.shard == ev.Src.Shard {
		tr.restored = false // its input is being read
	}
	obs := Observation{Time: ev.Time}
	switch {
	case ev.HasPos:
		obs.LL = orb.Point{ev.Lon, ev.Lat}
	case ev.SiteID != "" && c.Site(ev.SiteID) != nil:
		obs.LL = c.Proj.Inverse(c.Site(ev.SiteID).Area.Bound.Center())
	case tr.hasLast:
		obs.LL = tr.last.ll
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
		if ep != nil && ep.state.alertOpen() && ev.Time.Sub(ep.last) > ee.timing.Window {
			e.resolve(slot, ep, ee.rule, ep.last.Add(ee.timing.Window))
		}
		if v.Clear && ep != nil && ep.state.alertOpen() {
			e.resolve(slot, ep, ee.rule, ev.Time)
		}
		if v.Active {
			ep = e.keep(tr, slot, e.episode(tr, slot))
			e.step(tr, slot, ep, ee.rule, ee.timing, ee.phase(c, ev), &obs, v)
		}
		e.release(tr, slot)
	}
	if tr.dueAt < 0 {
		e.schedule(tr, e.ticked) // a track seen by cameras only may have decisions due too
	}
}

func planarDist(a, b orb.Point) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }
