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

// The binary checkpoint format (format 5; format 4, without the kinematics' recent fixes and
// stays, format 3, without the set-aside fixes either, and format 2, without the events'
// partition and offset either, are still read). Checkpoints are written for every vehicle a batch
// touches, so their encoding is on the hot path: a hand-written append encoder, about a third of
// the JSON's size and several times faster. A JSON checkpoint (format 1, written by earlier
// builds) starts with '{' and is still read.
//
//	0x05 vehicle flags jumps topic partition events-topic events-partition events-next last history episodes aside
//
// aside is what the kinematics set aside (track.go): a flags byte (a jump set aside, whether it
// agreed with the one before it, the accepted fix before the last, a fix held back), then the
// jump's time and position, the fix before's, and the held fix (time, position, speed, heading,
// flags, alarm bits, id, until when the next is awaited), each when its flag is set; then
// (format 5) the kinematics' memory: the recent fixes of the speed window (a count, then, newest
// first, each fix's time, as nanoseconds before the one after it but the newest's, and position) and the track's stay. An episode's memo ends (format 5) with the memo's own stay
// (dwell's stop), a flags byte first. A stay is a flags byte (it holds fixes, a fix set aside,
// settled) then its centre, weight, start, the fix set aside and when the vehicle settled, each
// when its flag is set. Without them a restart would derive no speed for the window's length,
// drop a pending episode, and restart a stop's clock: alerts an uninterrupted run does not give.
//
// strings are a uvarint length and the bytes, counts a uvarint, times in milliseconds and other
// integers varints, floats 8 bytes little-endian, flags one byte of bits.

// The first byte of a binary checkpoint: the format this build writes, and the one before it.
const (
	binaryCheckpoint   = 5
	binaryCheckpointV4 = 4
	binaryCheckpointV3 = 3
	binaryCheckpointV2 = 2
)

// appendCheckpoint appends tr's state in format 5 to dst.
func (e *Engine) appendCheckpoint(dst []byte, tr *Track) []byte {
	dst = append(dst, binaryCheckpoint)
	dst = appendString(dst, tr.VehicleID)
	dst = append(dst, bits(tr.hasLast, tr.inSite, tr.registered, tr.permitted, tr.scored))
	dst = binary.AppendVarint(dst, int64(tr.jumps))
	dst = appendString(dst, tr.shard.Topic)
	dst = binary.AppendVarint(dst, int64(tr.shard.Partition))
	dst = appendString(dst, tr.evShard.Topic)
	dst = binary.AppendVarint(dst, int64(tr.evShard.Partition))
	dst = binary.AppendVarint(dst, tr.evNext)
	dst = binary.AppendVarint(dst, ms(tr.last.Time))
	dst = appendPoint(dst, tr.last.LL)
	dst = appendPoint(dst, tr.last.XY)
	dst = appendFloat(dst, tr.last.SpeedKmh)
	dst = append(dst, bits(tr.last.Reported, tr.last.Lifted, tr.last.ACC, tr.last.Derived, tr.last.Still))
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
	for i, ep := range tr.episodes {
		if ep == nil || ep.empty() {
			continue
		}
		dst = appendString(dst, string(e.names[i]))
		dst = binary.AppendVarint(dst, ms(ep.since))
		dst = appendPoint(dst, ep.sinceLL)
		dst = binary.AppendVarint(dst, ms(ep.last))
		dst = binary.AppendVarint(dst, ms(ep.cleared))
		dst = binary.AppendVarint(dst, int64(ep.fixes))
		var m memoFields
		if ep.memo != nil {
			m = ep.memo.saved()
		}
		dst = appendPoint(dst, m.Anchor)
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
	return appendAside(dst, tr)
}

// appendAside appends what tr's kinematics set aside: without it, a restart would judge a fix
// held back as if it were sound and forget a jump that the next fix might agree with.
func appendAside(dst []byte, tr *Track) []byte {
	m := &tr.motion
	dst = append(dst, bits(m.hasAlt, m.altAgreed, m.hasBefore, tr.held != nil))
	if m.hasAlt {
		dst = appendTime(dst, m.alt.time())
		dst = appendPoint(dst, m.alt.ll)
	}
	if m.hasBefore {
		dst = appendTime(dst, m.before.time())
		dst = appendPoint(dst, m.before.ll)
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
	for i := 0; i < m.n; i++ {
		t := &m.ring[(m.head-i+motionLen)%motionLen]
		if i == 0 {
			dst = appendTime(dst, t.time())
		} else {
			dst = binary.AppendVarint(dst, int64(m.ring[(m.head-i+1+motionLen)%motionLen].time().Sub(t.time())))
		}
		dst = appendPoint(dst, t.ll)
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

// decodeBinaryCheckpoint decodes a format-5 (or 4, 3, 2) checkpoint into the state Restore applies.
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
	if b[0] >= binaryCheckpoint {
		s.Last.Derived, s.Last.Still = f&8 != 0, f&16 != 0
	}
	for range r.count("history", 1) {
		s.History = append(s.History, r.varint("history"))
	}
	for range r.count("episodes", 20) {
		var es episodeState
		es.Rule = Rule(r.string("episode rule"))
		es.Since = r.varint("episode since")
		es.SinceLL = r.point("episode start")
		es.Last, es.Cleared = r.varint("episode last"), r.varint("episode cleared")
		es.Fixes = int(r.varint("episode fixes"))
		es.Anchor = r.point("episode anchor")
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
		if b[0] >= binaryCheckpoint {
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
		s.Aside = r.aside(b[0] >= binaryCheckpoint)
	}
	if r.err == nil && r.off != len(b) {
		r.fail("checkpoint", fmt.Errorf("%d bytes after its end", len(b)-r.off))
	}
	if r.err != nil {
		return TrackState{}, fmt.Errorf("binary checkpoint %q: %w", s.VehicleID, r.err)
	}
	return s, nil
}

// aside decodes what the kinematics set aside (format 4) and, with memory (format 5), their
// recent fixes and stay.
func (r *checkpointReader) aside(memory bool) asideState {
	var a asideState
	f := r.byte("set-aside flags")
	if f&^15 != 0 {
		r.fail("set-aside flags", fmt.Errorf("unknown bits %#x", f))
	}
	a.HasAlt, a.AltAgreed, a.HasBefore = f&1 != 0, f&2 != 0, f&4 != 0
	if a.HasAlt {
		a.Alt = newTrace(r.time("set-aside jump time"), r.point("set-aside jump position"))
	}
	if a.HasBefore {
		a.Before = newTrace(r.time("fix before time"), r.point("fix before position"))
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
	if !memory {
		return a
	}
	n := r.count("recent fixes", 17)
	if n > motionLen {
		r.fail("recent fixes", fmt.Errorf("%d are more than the %d kept", n, motionLen))
		return a
	}
	var at time.Time
	for i := range n {
		if i == 0 {
			at = r.time("recent fix time")
		} else {
			at = at.Add(-time.Duration(r.varint("recent fix time")))
		}
		a.Recent = append(a.Recent, newTrace(at, r.point("recent fix position")))
	}
	a.HasMemory, a.Stay = true, r.stay("stay")
	return a
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
