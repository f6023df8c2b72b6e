// Package eventtime tells how far event time (the devices' clocks) has got over the input shards
// an instance reads: the watermark up to which the detectors' time-driven rules (signal_lost, a
// trip's closure) may decide. The pipeline feeds it every record it reads and hands the
// watermark to the detection engine, which knows nothing of shards.
//
// The watermark is the oldest newest-time of the busy shards (those with records left to read,
// or that delivered one lately), so neither a backlog nor a lagging partition looks like a silent
// truck. Once every shard is read to its end and quiet, it moves on with the wall clock (like
// Flink's idle sources or Kafka Streams' stream time), so that a silent truck is declared lost
// on an instance whose partitions went quiet too: at night, in a small city, or with more
// partitions than busy trucks.
package eventtime

import (
	"slices"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// Clock tracks, per input shard, the newest device time read, when (wall time) its last record
// was read, and how many records were left behind it then. It is used by one goroutine.
type Clock struct {
	// idle: a shard read to its end that has delivered nothing for this long no longer holds the
	// watermark back; once all are so, event time moves on with the wall clock, this far behind.
	idle time.Duration
	// shards holds one entry per input shard: a dozen for one instance, looked at for every
	// record read, so a slice scanned in order rather than a map.
	shards []shardSlot
	// the newest device time read from any shard, and the wall time of the last record read
	newest, lastRead time.Time
}

type shardSlot struct {
	shard record.Shard
	shardTime
}

type shardTime struct {
	event    time.Time // newest device time read
	seen     time.Time // wall time of the last record (or, while expected, of the assignment)
	behind   int64     // records left in the shard when the last one was read
	expected bool      // assigned with records to read, none read yet
}

// New returns a clock whose shards stop holding the watermark back after idle without records.
func New(idle time.Duration) *Clock { return &Clock{idle: idle} }

// Read notes a record of shard s at device time t, read at wall time wall with behind records
// left after it. It reports whether this is the shard's first record since it was assigned
// (Expect) or since the clock has known it: the shard is being read again.
func (c *Clock) Read(s record.Shard, t time.Time, behind int64, wall time.Time) (first bool) {
	i := c.index(s)
	if i < 0 {
		c.shards = append(c.shards, shardSlot{shard: s})
		i, first = len(c.shards)-1, true
	}
	st := &c.shards[i].shardTime
	first = first || st.expected
	if t.After(st.event) {
		st.event = t
	}
	st.seen, st.behind, st.expected = wall, behind, false
	if t.After(c.newest) {
		c.newest = t
	}
	c.lastRead = wall
	return first
}

// ReadBatch reads every record of a batch (read at once, at wall time wall), calling resumed for
// each shard whose first record (Read) is in it.
func (c *Clock) ReadBatch(fixes []record.Fix, events []record.Event, wall time.Time, resumed func(record.Shard)) {
	for i := range fixes {
		src := &fixes[i].Src
		if c.Read(src.Shard, fixes[i].Time, src.Behind, wall) {
			resumed(src.Shard)
		}
	}
	for i := range events {
		src := &events[i].Src
		if c.Read(src.Shard, events[i].Time, src.Behind, wall) {
			resumed(src.Shard)
		}
	}
}

// Expect marks shard s just assigned with records to read: until it delivers one (Read), is
// reported read to its end (Settle), or stays silent for the idle time, there is no watermark,
// so that the shards read first after a restart or a rebalance do not carry the time-driven
// rules past records of the others not read yet (decisions are never taken back).
func (c *Clock) Expect(s record.Shard, wall time.Time) {
	if i := c.index(s); i >= 0 && !c.shards[i].expected {
		return // already read
	}
	*c.slot(s) = shardTime{seen: wall, expected: true}
}

// Settle marks shard s, just assigned, as read to its end though no record of it came: nothing
// was left to read. newest is the newest device time of the vehicles restored for it (zero when
// none), its event time as if their last records had just been read.
func (c *Clock) Settle(s record.Shard, newest, wall time.Time) {
	if i := c.index(s); i >= 0 && c.shards[i].expected {
		c.Forget(s) // nothing to wait for
	}
	if !newest.IsZero() {
		c.Read(s, newest, 0, wall)
	}
}

// Forget drops shard s: it is no longer this instance's.
func (c *Clock) Forget(s record.Shard) {
	if i := c.index(s); i >= 0 {
		c.shards = slices.Delete(c.shards, i, i+1)
	}
}

// Newest is the newest device time read from any shard.
func (c *Clock) Newest() time.Time { return c.newest }

// Watermark is the event time up to which every record of every shard has been read, as far as
// can be told at wall time wall:
//   - while a shard assigned with records to read has delivered nothing yet (for up to the idle
//     time), there is none: its records may be older than anything read so far;
//   - else it is the oldest newest-time of the busy shards, those with records left to read (a
//     backlog, a lagging partition) or that delivered one within the idle time (more may be on the
//     way); a quiet, caught-up shard (a gate camera's topic between events) holds nothing back;
//   - with no busy shard, it is the newest time read, moved on by the wall time since the last
//     record was read, less the idle time: every shard is at its end, so a record read from now
//     on was sent after that and carries (with clocks that agree) a time at least this late.
//     Not while a shard assigned with records to read stays silent: it is behind, not quiet.
func (c *Clock) Watermark(wall time.Time) (time.Time, bool) {
	var wm time.Time
	lagging := false
	for i := range c.shards {
		st := &c.shards[i].shardTime
		if st.expected {
			if wall.Sub(st.seen) <= c.idle {
				return time.Time{}, false
			}
			lagging = true // silent since its assignment, with records to read
			continue
		}
		if (st.behind > 0 || wall.Sub(st.seen) <= c.idle) && (wm.IsZero() || st.event.Before(wm)) {
			wm = st.event
		}
	}
	switch {
	case !wm.IsZero():
		return wm, true
	case c.newest.IsZero():
		return time.Time{}, false
	case lagging:
		return c.newest, true
	}
	return c.newest.Add(max(0, wall.Sub(c.lastRead)-c.idle)), true
}

// slot returns shard s's entry, added empty when it has none.
func (c *Clock) slot(s record.Shard) *shardTime {
	i := c.index(s)
	if i < 0 {
		c.shards = append(c.shards, shardSlot{shard: s})
		i = len(c.shards) - 1
	}
	return &c.shards[i].shardTime
}

func (c *Clock) index(s record.Shard) int {
	for i := range c.shards {
		if c.shards[i].shard == s {
			return i
		}
	}
	return -1
}
