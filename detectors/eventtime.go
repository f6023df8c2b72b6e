package detectors

import (
	"slices"
	"time"
)

// The rules judge by event time (the devices' clocks), never by the wall clock. The engine reads
// several input partitions, of fixes and of events, each at its own pace; the event-time watermark
// is how far every busy one of them has been read, and the time-driven rules (due.go) decide only
// up to it, so that neither a backlog nor a lagging partition looks like a silent truck.

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
