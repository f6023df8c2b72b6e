package pipeline

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The event-time gauges follow the batches in the order they were judged, whichever goroutine
// reports a batch written: a checkpointed batch reported after later ones does not move them
// back, while a later batch's own older time (a partition taken over that is behind) does.
func TestEventTimesInJudgingOrder(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(1_765_000_000+int64(s), 0) }
	for _, c := range []struct {
		name                 string
		sets                 []eventMark
		wantJudged, wantRead float64 // seconds after 1,765,000,000; -1: never set
	}{
		{"in order", []eventMark{{1, at(10), at(12)}, {2, at(20), at(22)}}, 20, 22},
		{"a checkpointed batch written after a later one", []eventMark{{1, at(10), at(12)}, {3, at(30), at(32)}, {2, at(20), at(22)}}, 30, 32},
		{"the same batch again", []eventMark{{2, at(20), at(22)}, {2, at(21), at(23)}}, 21, 23},
		{"a later batch behind: a partition taken over", []eventMark{{4, at(40), at(42)}, {5, at(15), at(42)}}, 15, 42},
		{"zero times leave the gauges", []eventMark{{1, at(10), at(12)}, {2, time.Time{}, time.Time{}}, {2, time.Time{}, at(14)}}, 10, 14},
		{"nothing written yet", []eventMark{{1, time.Time{}, time.Time{}}}, -1, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEventTimeGauges()
			e.judged.Set(-1)
			e.read.Set(-1)
			for _, s := range c.sets {
				e.set(s)
			}
			rel := func(v float64) float64 {
				if v == -1 {
					return v
				}
				return v - 1_765_000_000
			}
			if j, r := rel(testutil.ToFloat64(e.judged)), rel(testutil.ToFloat64(e.read)); j != c.wantJudged || r != c.wantRead {
				t.Errorf("gauges judged %g, read %g; want %g, %g", j, r, c.wantJudged, c.wantRead)
			}
		})
	}
}
