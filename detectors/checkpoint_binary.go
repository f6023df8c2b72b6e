package detectors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/paulmach/orb"
)

// The binary checkpoint format (format 6; format 5, with every position as two floats and the
// recent fixes' times in nanoseconds, format 4, without the kinematics' recent fixes and
// stays, format 3, without the set-aside fixes either, and format 2, without the events'
// partition and offset either, are still read). Checkpoints are written for every vehicle a batch
// touches, so their encoding is on the hot path: a hand-written append encoder, about a third of
// the JSON's size and several times faster. A JSON checkpoint (format 1, written by earlier
// builds) starts with '{' and is still read.
//
//	0x06 vehicle flags jumps topic partition events-topic events-partition events-next last history episodes aside
//
// aside is what the kinematics set aside (track.go): a flags byte (a jump set aside, whether it
// agreed with the one before it, the accepted fix before the last, a fix held back), then the
// jump's time and position, the fix before's, and the held fix (time, position, speed, heading,
// flags, alarm bits, id, until when the next is awaited), each when its flag is set; then
// (format 5) the kinematics' memory: the recent fixes of the speed window (a count, then, newest
// first, each fix's time, as the gap to the one after it but the newest's, and position) and the
// track's stay. An episode's memo ends (format 5) with the memo's own stay (dwell's stop), a
// flags byte first. A stay is a flags byte (it holds fixes, a fix set aside,
// settled) then its centre, weight, start, the fix set aside and when the vehicle settled, each
// when its flag is set. Without them a restart would derive no speed for the window's length,
// drop a pending episode, and restart a stop's clock: alerts an uninterrupted run does not give.
//
// strings are a uvarint length and the bytes, counts a uvarint, times in milliseconds and other
// integers varints, floats 8 bytes little-endian, flags one byte of bits.
//
// Format 6 writes the positions fixes gave (an episode's start and anchor, the jump set aside,
// the fix before, the recent fixes) as their distance in 1e-7 degrees from the last fix (a
// recent fix: from the one after it) when they are whole units (appendNear: 4-6 bytes instead of
// 16; a stay's centre, a mean, stays two floats) and the gaps between recent fixes in whole
// milliseconds (appendGap): a moving truck's checkpoint of ~650 bytes in format 5 is ~500, and
// decodes to the same state bit for bit. Checkpoints of a whole fleet are taken every interval,
// so their size is memory held until written and bytes the state topic's broker takes.

// The first byte of a binary checkpoint: the format this build writes, and the one before it.
const (
	binaryCheckpoint   = 6
	binaryCheckpointV5 = 5
	binaryCheckpointV4 = 4
	binaryCheckpointV3 = 3
	binaryCheckpointV2 = 2
)

// appendCheckpoint appends tr's state in format 6 to dst.
func (e *Engine) appendCheckpoint(dst []byte, tr *Track) []byte {
	dst = append(dst, binaryCheckpoint)
	dst = appendString(dst, tr.VehicleID)
	dst = append(dst, bits(tr.hasLast, tr.inSite, tr.registered, tr.permitted, tr.scored))
	dst = binary.AppendVarint(dst, int64(tr.jumps))
	dst = appendString(dst, tr.shard.Topic)
	dst = binary.AppendVarint(dst, int64(tr.shard.Partition))
	evShard, evNext := tr.eventsFrom()
	dst = appendString(dst, evShard.Topic)
	dst = binary.AppendVarint(dst, int64(evShard.Partition))
	dst = binary.AppendVarint(dst, evNext)
	dst = binary.AppendVarint(dst, ms(tr.last.time()))
	dst = appendPoint(dst, tr.last.ll)
	dst = appendPoint(dst, tr.last.xy)
	dst = appendFloat(dst, tr.last.speedKmh)
	dst = append(dst, bits(tr.last.reported, tr.last.lifted, tr.last.acc, tr.last.derived, tr.last.still))
	dst = binary.AppendUvarint(dst, uint64(len(tr.history)))
	for _, h := range tr.history {
		dst = binary.AppendVarint(dst, ms(h))
	}
	n := 0
	for _, ep := range tr.episodes {
		if ep != nil && !ep.empty() {
			n++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(n))
	ref := nearRef(tr.last.ll)
	for i, ep := range tr.episodes {
		if ep == nil || ep.empty() {
			continue
		}
		dst = appendString(dst, string(e.names[i]))
		dst = binary.AppendVarint(dst, ms(ep.since))
		dst = appendNear(dst, ep.sinceLL, ref)
		dst = binary.AppendVarint(dst, ms(ep.last))
		dst = binary.AppendVarint(dst, ms(ep.cleared))
		dst = binary.AppendVarint(dst, int64(ep.fixes))
		var m memoFields
		if ep.memo != nil {
			m = ep.memo.saved()
		}
		dst = appendNear(dst, m.Anchor, ref)
		dst = binary.AppendVarint(dst, ms(m.Mark))
		dst = append(dst, bits(m.Anchored, ep.alert != nil))
		dst = appendString(dst, m.Ref)
		dst = binary.AppendUvarint(dst, uint64(len(m.Seen)))
		for _, t := range m.Seen {
			dst = binary.AppendVarint(dst, ms(t))
		}
		dst = binary.AppendUvarint(dst, uint64(len(m.Pending)))
		for _, p := range m.Pending {
			dst = binary.AppendVarint(dst, ms(p.Due))
			dst = binary.AppendVarint(dst, ms(p.From))
			dst = appendString(dst, p.Place)
		}
		if m.Stay != nil {
			dst = append(dst, 1)
			dst = appendStay(dst, m.Stay)
		} else {
			dst = append(dst, 0)
		}
		if a := ep.alert; a != nil {
			for _, s := range [...]string{a.ID, string(a.Rule), string(a.Severity), string(a.Phase), string(a.Status),
				a.VehicleID, a.Company, a.PermitID, a.Place, a.District, a.Evidence} {
				dst = appendString(dst, s)
			}
			dst = appendTime(dst, a.Start)
			dst = appendTime(dst, a.End)
			dst = appendTime(dst, a.Updated)
			for _, f := range [...]float64{a.Lat, a.Lon, a.Value, a.Limit} {
				dst = appendFloat(dst, f)
			}
			dst = binary.AppendUvarint(dst, a.Version)
		}
	}
	return appendAside(dst, tr, ref)
}

// appendAside appends what tr's kinematics set aside: without it, a restart would judge a fix
// held back as if it were sound and forget a jump that the next fix might agree with.
func appendAside(dst []byte, tr *Track, ref [2]int64) []byte {
	m := &tr.motion
	dst = append(dst, bits(m.hasAlt, m.altAgreed, m.hasBefore, tr.held != nil))
	if m.hasAlt {
		dst = appendTime(dst, m.alt.time())
		dst = appendNear(dst, m.alt.ll, ref)
	}
	if m.hasBefore {
		dst = appendTime(dst, m.before.time())
		dst = appendNear(dst, m.before.ll, ref)
	}
	if h := tr.held; h != nil {
		f := &h.fix
		dst = appendTime(dst, f.Time)
		dst = appendFloat(dst, f.Lat)
		dst = appendFloat(dst, f.Lon)
		dst = appendFloat(dst, float64(f.SpeedKmh))
		dst = appendFloat(dst, float64(f.Heading))
		dst = append(dst, bits(f.HasSpeed, f.HasHeading, f.ACC, f.Lifted))
		dst = binary.AppendUvarint(dst, uint64(f.Alarm))
		dst = appendString(dst, f.FixID)
		dst = appendTime(dst, h.until)
	}
	dst = binary.AppendUvarint(dst, uint64(m.n))
	for i := 0; i < int(m.n); i++ {
		t := m.recent(i)
		if i == 0 {
			dst = appendTime(dst, t.time())
		} else {
			dst = appendGap(dst, m.recent(i-1).time().Sub(t.time()))
		}
		dst = appendNear(dst, t.ll, ref)
		ref = nearRef(t.ll) // the next, older, fix was near this one
	}
	return appendStay(dst, &m.stay)
}

// appendStay appends a stay (track.go): where a vehicle has been staying.
func appendStay(dst []byte, s *stay) []byte {
	dst = append(dst, bits(s.n > 0, s.hasAlt, s.settled))
	if s.n > 0 {
		dst = appendPoint(dst, s.centre)
		dst = binary.AppendUvarint(dst, uint64(min(s.n, stayMeanMax))) // the mean's weight stops there
		dst = appendTime(dst, s.since)
	}
	if s.hasAlt {
		dst = appendPoint(dst, s.alt)
		dst = appendTime(dst, s.altAt)
	}
	if s.settled {
		dst = appendTime(dst, s.settledAt)
	}
	return dst
}

func bits(flags ...bool) byte {
	var b byte
	for i, f := range flags {
		if f {
			b |= 1 << i
		}
	}
	return b
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendFloat(dst []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}

func appendPoint(dst []byte, p orb.Point) []byte { return appendFloat(appendFloat(dst, p[0]), p[1]) }

// nearScale: a position whose coordinates are whole multiples of 1e-7 degrees (1 cm; fixes come
// with 5-7 decimals, JT/T 808 terminals send millionths) is written, in format 6, as its
// distance in those units from a reference position nearby (a varint each: 1-4 bytes where the
// truck was within a few km), not as two 8-byte floats.
const nearScale = 1e7

// nearUnits returns f in units of 1/nearScale and whether that is f exactly, bit for bit (-0 and
// any f not a whole number of units are not; nor beyond ±10,000, which no longitude reaches).
func nearUnits(f float64) (int64, bool) {
	if !(math.Abs(f) <= 1e4) { // NaN too
		return 0, false
	}
	q := int64(math.Round(f * nearScale))
	return q, math.Float64bits(float64(q)/nearScale) == math.Float64bits(f)
}

// nearRef is the reference a position gives the ones written after it: its units, rounded (0
// for a coordinate out of range), the same for the writer and the reader.
func nearRef(p orb.Point) [2]int64 {
	x, _ := nearUnits(p[0])
	y, _ := nearUnits(p[1])
	return [2]int64{x, y}
}

// appendNear appends p (format 6): exact in units, an even varint (twice the x distance from
// ref) and a varint (the y distance); else the varint 1 and the two floats.
func appendNear(dst []byte, p orb.Point, ref [2]int64) []byte {
	x, okx := nearUnits(p[0])
	y, oky := nearUnits(p[1])
	if okx && oky {
		dst = binary.AppendVarint(dst, 2*(x-ref[0]))
		return binary.AppendVarint(dst, y-ref[1])
	}
	return appendPoint(binary.AppendVarint(dst, 1), p)
}

// appendGap appends the time between two recent fixes (format 6): whole milliseconds (as fixes
// are timed) as an even varint, twice their number; else the varint 1 and the nanoseconds.
func appendGap(dst []byte, d time.Duration) []byte {
	if d%time.Millisecond == 0 {
		return binary.AppendVarint(dst, 2*int64(d/time.Millisecond))
	}
	return binary.AppendVarint(binary.AppendVarint(dst, 1), int64(d))
}

// appendTime keeps an alert's times exactly (they are not all whole milliseconds).
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// checkpointReader decodes the binary formats; the first error sticks and every read after it returns zero
// values, so decoding reads straight through and checks once.
type checkpointReader struct {
	b   []byte
	off int
	err error
}

var errTruncated = errors.New("ends early")

func (r *checkpointReader) fail(what string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s at byte %d: %w", what, r.off, err)
	}
}

func (r *checkpointReader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(what, errTruncated)
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *checkpointReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.fail(what, errors.New("is not a varint"))
		return 0
	}
	r.off += n
	return v
}

func (r *checkpointReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.fail(what, errors.New("is not a uvarint"))
		return 0
	}
	r.off += n
	return v
}

// count reads a count of items of at least min bytes each: no more than the bytes left can hold.
func (r *checkpointReader) count(what string, min int) int {
	n := r.uvarint(what)
	if r.err == nil && n > uint64((len(r.b)-r.off)/min) {
		r.fail(what, fmt.Errorf("count %d is more than the %d bytes left can hold", n, len(r.b)-r.off))
		return 0
	}
	return int(n)
}

func (r *checkpointReader) string(what string) string {
	n := r.count(what, 1)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(r.b[r.off : r.off+n]) {
		r.fail(what, errors.New("is not valid UTF-8")) // it would end up in metric labels and JSON
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *checkpointReader) float(what string) float64 {
	if r.err != nil {
		return 0
	}
	if len(r.b)-r.off < 8 {
		r.fail(what, errTruncated)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b[r.off:]))
	r.off += 8
	return v
}

func (r *checkpointReader) point(what string) orb.Point {
	return orb.Point{r.float(what), r.float(what)}
}

func (r *checkpointReader) time(what string) time.Time {
	switch r.byte(what) {
	case 0:
		return time.Time{}
	case 1:
		sec := r.varint(what)
		nsec := r.uvarint(what)
		if r.err == nil && nsec >= 1e9 {
			r.fail(what, fmt.Errorf("nanoseconds %d out of range", nsec))
		}
		return time.Unix(sec, int64(nsec))
	default:
		r.fail(what, errors.New("is not a time"))
		return time.Time{}
	}
}

// decodeBinaryCheckpoint decodes a format-6 (or 5, 4, 3, 2) checkpoint into the state Restore applies.
func decodeBinaryCheckpoint(b []byte) (TrackState, error) {
	r := &checkpointReader{b: b, off: 1}
	s := TrackState{Version: checkpointVersion}
	s.VehicleID = r.string("vehicle id")
	f := r.byte("flags")
	s.HasLast, s.InSite, s.Registered, s.Permitted, s.Scored = f&1 != 0, f&2 != 0, f&4 != 0, f&8 != 0, f&16 != 0
	s.Jumps = int(r.varint("jumps"))
	s.Topic = r.string("topic")
	s.Partition = int32(r.varint("partition"))
	if b[0] >= binaryCheckpointV3 {
		s.EventsTopic = r.string("events topic")
		s.EventsPartition = int32(r.varint("events partition"))
		s.EventsNext = r.varint("events offset")
	}
	s.Last.TimeMs = r.varint("last fix time")
	s.Last.LL, s.Last.XY = r.point("last position"), r.point("last projected position")
	s.Last.SpeedKmh = r.float("last speed")
	f = r.byte("last fix flags")
	s.Last.Reported, s.Last.Lifted, s.Last.ACC = f&1 != 0, f&2 != 0, f&4 != 0
	if b[0] >= binaryCheckpointV5 {
		s.Last.Derived, s.Last.Still = f&8 != 0, f&16 != 0
	}
	for range r.count("history", 1) {
		s.History = append(s.History, r.varint("history"))
	}
	v6 := b[0] >= binaryCheckpoint
	ref := nearRef(s.Last.LL)
	minEpisode := 20
	if v6 {
		minEpisode = 12
	}
	for range r.count("episodes", minEpisode) {
		var es episodeState
		es.Rule = Rule(r.string("episode rule"))
		es.Since = r.varint("episode since")
		es.SinceLL = r.near("episode start", v6, ref)
		es.Last, es.Cleared = r.varint("episode last"), r.varint("episode cleared")
		es.Fixes = int(r.varint("episode fixes"))
		es.Anchor = r.near("episode anchor", v6, ref)
		es.Mark = r.varint("episode mark")
		f := r.byte("episode flags")
		es.Anchored = f&1 != 0
		es.Ref = r.string("episode ref")
		for range r.count("sightings", 1) {
			es.Seen = append(es.Seen, r.varint("sighting"))
		}
		for range r.count("pending decisions", 3) {
			es.Pending = append(es.Pending, pendingJSON{Due: r.varint("pending due"), From: r.varint("pending from"), Place: r.string("pending place")})
		}
		if b[0] >= binaryCheckpointV5 {
			switch r.byte("episode stay") {
			case 0:
			case 1:
				st := r.stay("episode stay")
				es.Stay = &st
			default:
				r.fail("episode stay", errors.New("is neither 0 nor 1"))
			}
		}
		if f&2 != 0 {
			a := new(Alert)
			var str [11]string
			for i := range str {
				str[i] = r.string("alert")
			}
			a.ID, a.Rule, a.Severity, a.Phase, a.Status = str[0], Rule(str[1]), Severity(str[2]), Phase(str[3]), Status(str[4])
			a.VehicleID, a.Company, a.PermitID, a.Place, a.District, a.Evidence = str[5], str[6], str[7], str[8], str[9], str[10]
			a.Start, a.End, a.Updated = r.time("alert start"), r.time("alert end"), r.time("alert updated")
			a.Lat, a.Lon, a.Value, a.Limit = r.float("alert lat"), r.float("alert lon"), r.float("alert value"), r.float("alert limit")
			a.Version = r.uvarint("alert version")
			es.Alert = a
		}
		if r.err != nil {
			break
		}
		s.Episodes = append(s.Episodes, es)
	}
	if b[0] >= binaryCheckpointV4 {
		s.Aside = r.aside(b[0], ref)
	}
	if r.err == nil && r.off != len(b) {
		r.fail("checkpoint", fmt.Errorf("%d bytes after its end", len(b)-r.off))
	}
	if r.err != nil {
		return TrackState{}, fmt.Errorf("binary checkpoint %q: %w", s.VehicleID, r.err)
	}
	return s, nil
}

// aside decodes what the kinematics set aside (format 4) and, from format 5, their
// recent fixes and stay.
func (r *checkpointReader) aside(format byte, ref [2]int64) asideState {
	v6 := format >= binaryCheckpoint
	var a asideState
	f := r.byte("set-aside flags")
	if f&^15 != 0 {
		r.fail("set-aside flags", fmt.Errorf("unknown bits %#x", f))
	}
	a.HasAlt, a.AltAgreed, a.HasBefore = f&1 != 0, f&2 != 0, f&4 != 0
	if a.HasAlt {
		a.Alt = newTrace(r.time("set-aside jump time"), r.near("set-aside jump position", v6, ref))
	}
	if a.HasBefore {
		a.Before = newTrace(r.time("fix before time"), r.near("fix before position", v6, ref))
	}
	if f&8 != 0 {
		h := &heldFix{}
		fx := &h.fix
		fx.Time = r.time("held fix time")
		fx.Lat, fx.Lon = r.float("held fix latitude"), r.float("held fix longitude")
		fx.SpeedKmh, fx.Heading = float32(r.float("held fix speed")), float32(r.float("held fix heading"))
		b := r.byte("held fix flags")
		fx.HasSpeed, fx.HasHeading, fx.ACC, fx.Lifted = b&1 != 0, b&2 != 0, b&4 != 0, b&8 != 0
		alarm := r.uvarint("held fix alarm")
		if alarm > math.MaxUint32 {
			r.fail("held fix alarm", fmt.Errorf("%d is more than 32 bits", alarm))
		}
		fx.Alarm = uint32(alarm)
		fx.FixID = r.string("held fix id")
		h.until = r.time("held fix until")
		if r.err == nil && fx.Time.IsZero() {
			r.fail("held fix time", errors.New("is missing"))
		}
		a.Held = h
	}
	if format < binaryCheckpointV5 {
		return a
	}
	minRecent := 17
	if v6 {
		minRecent = 3
	}
	n := r.count("recent fixes", minRecent)
	if n > motionLen {
		r.fail("recent fixes", fmt.Errorf("%d are more than the %d kept", n, motionLen))
		return a
	}
	var at time.Time
	for i := range n {
		switch {
		case i == 0:
			at = r.time("recent fix time")
		case v6:
			at = at.Add(-r.gap("recent fix time"))
		default:
			at = at.Add(-time.Duration(r.varint("recent fix time")))
		}
		p := r.near("recent fix position", v6, ref)
		a.Recent = append(a.Recent, newTrace(at, p))
		ref = nearRef(p)
	}
	a.HasMemory, a.Stay = true, r.stay("stay")
	return a
}

// near decodes a position: appendNear's in format 6 (v6), two floats before.
func (r *checkpointReader) near(what string, v6 bool, ref [2]int64) orb.Point {
	if !v6 {
		return r.point(what)
	}
	switch dx := r.varint(what); {
	case r.err != nil:
		return orb.Point{}
	case dx == 1:
		return r.point(what)
	case dx%2 == 0:
		dy := r.varint(what)
		return orb.Point{float64(ref[0]+dx/2) / nearScale, float64(ref[1]+dy) / nearScale}
	default:
		r.fail(what, fmt.Errorf("tag %d is neither even nor 1", dx))
		return orb.Point{}
	}
}

// gap decodes appendGap's time between two recent fixes.
func (r *checkpointReader) gap(what string) time.Duration {
	switch v := r.varint(what); {
	case r.err != nil:
		return 0
	case v == 1:
		return time.Duration(r.varint(what))
	case v%2 == 0:
		return time.Duration(v/2) * time.Millisecond
	default:
		r.fail(what, fmt.Errorf("tag %d is neither even nor 1", v))
		return 0
	}
}

// stay decodes a stay (appendStay).
func (r *checkpointReader) stay(what string) stay {
	var s stay
	f := r.byte(what)
	if f&^7 != 0 {
		r.fail(what, fmt.Errorf("unknown bits %#x", f))
	}
	if f&1 != 0 {
		s.centre = r.point(what)
		n := r.uvarint(what)
		if r.err == nil && (n == 0 || n > stayMeanMax) {
			r.fail(what, fmt.Errorf("weight %d is not within 1..%d", n, stayMeanMax))
		}
		s.n = int(n)
		s.since = r.time(what)
	}
	if f&2 != 0 {
		s.alt, s.altAt, s.hasAlt = r.point(what), r.time(what), true
	}
	if f&4 != 0 {
		s.settledAt, s.settled = r.time(what), true
	}
	return s
}
