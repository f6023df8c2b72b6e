package detectors

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/muckwatch/muckwatch/record"
	"github.com/paulmach/orb"
)

// Checkpoints: a vehicle's detector state, serialised so that it survives a restart and moves with
// its Kafka partition to another instance (like a Kafka Streams changelog). The pipeline writes
// the checkpoints of the vehicles a batch touched after the batch is durably written and before
// its offsets are committed, keyed by vehicle, to a compacted topic; on start (and when it takes
// over a partition) it restores them. A checkpoint may be ahead of the committed offsets (a crash
// between the two): the records read again are then older than the vehicle's last fix and are
// stored but not judged, so nothing is alerted twice.

// checkpointVersion is the format of a JSON checkpoint (format 1, written by earlier builds and
// still read); this build writes format 6, binary (checkpoint_binary.go).
const checkpointVersion = 1

// TrackState is the serialisable state of one vehicle, as both formats decode it.
type TrackState struct {
	Version    int      `json:"v"`
	VehicleID  string   `json:"vehicle"`
	HasLast    bool     `json:"has_last"`
	Last       obsState `json:"last"`
	InSite     bool     `json:"in_site"`
	History    []int64  `json:"history,omitempty"`
	Registered bool     `json:"registered"`
	Permitted  bool     `json:"permitted"`
	Scored     bool     `json:"scored"`
	Jumps      int      `json:"jumps,omitempty"`
	Topic      string   `json:"topic,omitempty"` // the input partition its fixes come from
	Partition  int32    `json:"partition,omitempty"`
	// its camera events' partition and the offset after the newest judged (binary format 3 only)
	EventsTopic     string         `json:"-"`
	EventsPartition int32          `json:"-"`
	EventsNext      int64          `json:"-"`
	Episodes        []episodeState `json:"episodes"`
	// what the kinematics set aside (binary format 4 on), and their memory (format 5)
	Aside asideState `json:"-"`
}

// asideState is what a track's kinematics set aside (track.go): a jump that the next fix may
// agree with, the accepted fix before the last, and a fix held back until the next one; and
// their memory (format 5, HasMemory): the recent fixes of the speed window, newest first, and the
// track's stay.
type asideState struct {
	HasAlt, AltAgreed, HasBefore bool
	Alt, Before                  trace
	Held                         *heldFix
	HasMemory                    bool
	Recent                       []trace
	Stay                         stay
}

type obsState struct {
	TimeMs   int64     `json:"t"`
	LL       orb.Point `json:"ll"`
	XY       orb.Point `json:"xy"`
	SpeedKmh float64   `json:"speed"`
	Reported bool      `json:"reported,omitempty"`
	Lifted   bool      `json:"lifted,omitempty"`
	ACC      bool      `json:"acc,omitempty"`
	// binary format 5 only
	Derived bool `json:"-"`
	Still   bool `json:"-"`
}

// lastFix is the last observation o saves, as a track keeps it (its time checked by numbers).
func (o *obsState) lastFix() lastFix {
	return lastFix{ns: fixNano(fromMs(o.TimeMs)), ll: o.LL, xy: o.XY, speedKmh: o.SpeedKmh,
		reported: o.Reported, derived: o.Derived, still: o.Still, lifted: o.Lifted, acc: o.ACC}
}

type episodeState struct {
	Rule     Rule          `json:"rule"`
	Since    int64         `json:"since,omitempty"`
	SinceLL  orb.Point     `json:"since_ll"`
	Last     int64         `json:"last,omitempty"`
	Cleared  int64         `json:"cleared,omitempty"`
	Fixes    int           `json:"fixes,omitempty"`
	Alert    *Alert        `json:"alert,omitempty"`
	Anchor   orb.Point     `json:"anchor"`
	Mark     int64         `json:"mark,omitempty"`
	Anchored bool          `json:"anchored,omitempty"`
	Ref      string        `json:"ref,omitempty"`
	Seen     []int64       `json:"seen,omitempty"`
	Pending  []pendingJSON `json:"pending,omitempty"`
	Stay     *stay         `json:"-"` // the memo's own stay (binary format 5 only)
}

type pendingJSON struct {
	Due   int64  `json:"due"`
	From  int64  `json:"from"`
	Place string `json:"place"`
}

// memoFields are where every checkpoint format keeps a rule's memo, named after what the first
// rules kept there: dwell keeps where and since when the truck has been stopped in Anchor and
// Mark (Anchored: it is) and its raised dump body in Ref ("lifted"); trip_unclosed keeps the site
// it was last at in Ref, when its trip under way left it in Mark (Anchored: one is), the disposal
// gate cameras' sightings in Seen and the decisions on its trips that wait for the watermark in
// Pending.
type memoFields struct {
	Anchor   orb.Point
	Mark     time.Time
	Anchored bool
	Ref      string
	Seen     []time.Time
	Pending  []tripDecision
	// Stay is dwell's stop in full (format 5): Anchor and Mark are its centre and start, which
	// is all earlier formats kept
	Stay *stay
}

// remembering is implemented by a rule that keeps a memo: restoreMemo makes its memo from a
// checkpoint's fields, nil when they hold nothing.
type remembering interface {
	restoreMemo(f memoFields) memo
}

// memo returns the memo fields of a decoded episode.
func (es *episodeState) memo() memoFields {
	f := memoFields{Anchor: es.Anchor, Mark: fromMs(es.Mark), Anchored: es.Anchored, Ref: es.Ref, Stay: es.Stay}
	for _, t := range es.Seen {
		f.Seen = append(f.Seen, fromMs(t))
	}
	for _, p := range es.Pending {
		f.Pending = append(f.Pending, tripDecision{Due: fromMs(p.Due), From: fromMs(p.From), Place: p.Place})
	}
	return f
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// numbers checks that the positions and speed a checkpoint holds are numbers, and that its last
// fix's time is one a track can hold (lastFix: Unix nanoseconds, the years 1678–2262): no fix
// decoded gives anything else (record's decoder rejects them), so a NaN, an infinity or such a
// time is a corrupt or forged checkpoint, which would otherwise be judged against as the truck's
// last position.
func (s *TrackState) numbers() error {
	if ms := s.Last.TimeMs; ms > math.MaxInt64/1_000_000 || ms < math.MinInt64/1_000_000 {
		return fmt.Errorf("last fix time %d ms is out of range", ms)
	}
	var bad error
	check := func(what string, p orb.Point) {
		if bad == nil && (!isNumber(p[0]) || !isNumber(p[1])) {
			bad = fmt.Errorf("%s is not a number (%v)", what, p)
		}
	}
	check("last position", s.Last.LL)
	check("last projected position", s.Last.XY)
	check("last speed", orb.Point{s.Last.SpeedKmh, 0})
	a := &s.Aside
	check("jump set aside", a.Alt.ll)
	check("fix before the last", a.Before.ll)
	for _, r := range a.Recent {
		check("recent fix", r.ll)
	}
	check("stay's centre", a.Stay.centre)
	check("stay's other centre", a.Stay.alt)
	if a.Held != nil {
		check("fix held back", orb.Point{a.Held.fix.Lon, a.Held.fix.Lat})
	}
	for _, es := range s.Episodes {
		check(string(es.Rule)+"'s start", es.SinceLL)
		check(string(es.Rule)+"'s anchor", es.Anchor)
		if es.Stay != nil {
			check(string(es.Rule)+"'s stop", es.Stay.centre)
		}
	}
	return bad
}

// eventsAhead reports whether tr has judged camera events of shard past next: a checkpoint
// that says next is older than what this instance has processed.
func eventsAhead(tr *Track, shard record.Shard, next int64) bool {
	cur, curNext := tr.eventsFrom()
	return cur == shard && curNext > next
}

func isNumber(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Dirty calls f with the checkpoint of every vehicle whose state changed since the last call, and
// forgets them. shard is the input the vehicle's records come from: the checkpoint belongs with
// it (the pipeline's state topic is partitioned like the input).
// The checkpoints of one call are appended to one buffer, arena (one allocation a batch at most,
// not one a vehicle), which Dirty returns: pass it again once the slices f was given are no
// longer used, or nil. f may keep them until then but must not append to them. An arena far
// larger than the call needs (arenaSlack times) is dropped for a new one, so a burst does not
// stay in memory; one a few times too large is kept, as live batches vary in size.
//
// A call that needs more than arenaChunk (an interval's checkpoints of a whole fleet: ~65 MB for
// 100,000 moving trucks) and was given no arena that large appends them to chunks of arenaChunk
// instead, made as they fill, and returns nil: one buffer that size, with room to spare so that it
// need not grow, was a sixth of the process's peak live heap, and the collector's headroom
// doubled it in the RSS; chunks hold what is written and go one by one once the caller drops
// them.
func (e *Engine) Dirty(arena []byte, f func(vehicle string, shard record.Shard, checkpoint []byte)) []byte {
	e.finishSnapshot()
	if len(e.dirty) == 0 {
		return arena
	}
	// sized from the last call's average, so that the buffer rarely grows
	need := len(e.dirty) * max(e.checkpointSize, 64)
	chunked := cap(arena) < need && need > arenaChunk
	switch {
	case chunked:
		arena = make([]byte, 0, arenaChunk)
	case cap(arena) < need || cap(arena) > arenaSlack*need:
		arena = make([]byte, 0, need*5/4)
	}
	arena = arena[:0]
	total := 0
	for _, tr := range e.dirty {
		if chunked && cap(arena)-len(arena) < arenaChunkRoom {
			total += len(arena)
			arena = make([]byte, 0, arenaChunk)
		}
		start := len(arena)
		arena = e.appendCheckpoint(arena, tr)
		f(tr.VehicleID, tr.shard, arena[start:len(arena):len(arena)])
	}
	e.checkpointSize = (total + len(arena)) / len(e.dirty)
	clear(e.dirty)
	e.dirty = e.dirty[:0]
	e.epoch++ // they are clean
	if chunked {
		return nil
	}
	return arena
}

// arenaSlack is how many times larger than a Dirty call needs its arena may be and still be used.
const arenaSlack = 16

// arenaChunk is the size of the chunks a large Dirty call appends its checkpoints to, and
// arenaChunkRoom the room a chunk must have left to take the next checkpoint (a larger one
// grows the chunk: append copies it once, the slices already handed out keep the old one).
const (
	arenaChunk     = 1 << 20
	arenaChunkRoom = 4 << 10
)

// markDirty notes that tr's state changed (or is about to) since the last checkpoint: the next
// Dirty or Snapshot takes its checkpoint.
func (e *Engine) markDirty(tr *Track) {
	if tr.marked != e.epoch {
		e.settle(tr) // the snapshot in flight may still want it as it was
		tr.marked = e.epoch
		e.dirty = append(e.dirty, tr)
	}
}

// Restore sets a vehicle's state from its checkpoint, unless the engine already holds newer state
// for it or owned (when not nil) says its input shard is not this instance's. Episodes of
// rules no longer enabled are dropped; rules added since start empty.
func (e *Engine) Restore(checkpoint []byte, owned func(record.Shard) bool) error {
	var s TrackState
	if len(checkpoint) > 0 && checkpoint[0] >= binaryCheckpointV2 && checkpoint[0] <= binaryCheckpoint {
		var err error
		if s, err = decodeBinaryCheckpoint(checkpoint); err != nil {
			return err
		}
	} else { // format 1, JSON, from earlier builds
		if err := json.Unmarshal(checkpoint, &s); err != nil {
			return fmt.Errorf("checkpoint is neither binary (format %d) nor valid JSON: %w", binaryCheckpoint, err)
		}
		if s.Version != checkpointVersion {
			return fmt.Errorf("checkpoint of %q has format %d, this build reads %d and %d to %d", s.VehicleID, s.Version, checkpointVersion, binaryCheckpointV2, binaryCheckpoint)
		}
	}
	if s.VehicleID == "" {
		return fmt.Errorf("checkpoint without a vehicle id")
	}
	if err := s.numbers(); err != nil {
		return fmt.Errorf("checkpoint of %q: %w", s.VehicleID, err)
	}
	shard, evShard := record.Shard{Topic: s.Topic, Partition: s.Partition}, record.Shard{Topic: s.EventsTopic, Partition: s.EventsPartition}
	if owned != nil && !owned(shard) {
		return nil // another instance's vehicle (or an older checkpoint from before it moved)
	}
	if cur := e.tracks[s.VehicleID]; cur != nil && ((cur.hasLast && cur.last.time().UnixMilli() > s.Last.TimeMs) ||
		eventsAhead(cur, evShard, s.EventsNext)) {
		return nil // this instance is ahead (the checkpoint is older than what it processed)
	}
	tr := e.track(s.VehicleID)
	e.settle(tr)
	tr.shard, tr.restored = shard, true
	tr.events = nil
	if evShard != (record.Shard{}) || s.EventsNext != 0 {
		tr.events = &eventInput{shard: evShard, next: s.EventsNext}
	}
	tr.hasLast, tr.inSite, tr.registered, tr.permitted, tr.scored, tr.jumps = s.HasLast, s.InSite, s.Registered, s.Permitted, s.Scored, s.Jumps
	tr.last = s.Last.lastFix()
	// its recent fixes and stay (before format 5: none kept, a derived speed is derived again
	// once the window has filled)
	tr.motion.reset()
	m := &tr.motion
	m.hasAlt, m.altAgreed, m.hasBefore, m.alt, m.before = s.Aside.HasAlt, s.Aside.AltAgreed, s.Aside.HasBefore, s.Aside.Alt, s.Aside.Before
	for i := len(s.Aside.Recent) - 1; i >= 0; i-- { // oldest first
		m.head = (m.head + 1) % motionLen
		m.ring[m.head] = s.Aside.Recent[i]
		m.n++
	}
	m.stay = s.Aside.Stay
	tr.held = nil
	if h := s.Aside.Held; h != nil && s.HasLast {
		h.fix.VehicleID = s.VehicleID
		tr.held = h
	}
	tr.history = tr.history[:0]
	for _, h := range s.History {
		tr.history = append(tr.history, fromMs(h))
	}
	e.dropEpisodes(tr)
	for _, es := range s.Episodes {
		i, ok := e.slot[es.Rule]
		if !ok {
			continue
		}
		ep := &Episode{since: fromMs(es.Since), sinceLL: es.SinceLL, last: fromMs(es.Last), cleared: fromMs(es.Cleared), fixes: es.Fixes,
			alert: es.Alert}
		if r, ok := e.rule(i).(remembering); ok {
			ep.memo = r.restoreMemo(es.memo())
		}
		state := restoredState(ep)
		if state == StateInactive && ep.empty() {
			continue // nothing under way, nothing remembered
		}
		e.setSlot(tr, i, ep)
		e.move(i, ep, state)
	}
	if tr.scored {
		e.updateRisk(tr, tr.last.time())
	}
	e.schedule(tr, e.ticked)
	return nil
}
