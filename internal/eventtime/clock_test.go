package eventtime

import (
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

var (
	gps0   = record.Shard{Topic: "muck.gps", Partition: 0}
	gps1   = record.Shard{Topic: "muck.gps", Partition: 1}
	events = record.Shard{Topic: "muck.events", Partition: 0}
	t0     = time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC) // device time
	w0     = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC) // wall time: the devices' clocks need not agree with it
)

// step is one thing that happens to a clock: a record read, a shard assigned, settled or
// forgotten, at a wall time after w0.
type step struct {
	read, expect, settle, forget *record.Shard
	at                           time.Duration // device time after t0 (read, settle)
	behind                       int64
	wall                         time.Duration // after w0
}

func TestWatermark(t *testing.T) {
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	for _, tc := range []struct {
		name  string
		steps []step
		wall  time.Duration // when the watermark is asked for, after w0
		want  time.Duration // after t0; -1: none
	}{
		{"nothing read", nil, 0, -1},
		{"busy shards: the slowest", []step{{read: &gps0, at: sec(100)}, {read: &gps1, at: sec(40)}, {read: &events, at: sec(70)}}, sec(1), sec(40)},
		{"a quiet caught-up shard holds nothing back", []step{{read: &gps0, at: sec(100), wall: sec(10)}, {read: &gps1, at: sec(40)}}, sec(13), sec(100)},
		{"a shard with records left holds it back however long it is quiet", []step{{read: &gps0, at: sec(100), wall: sec(60)}, {read: &gps1, at: sec(40), behind: 5}}, sec(61), sec(40)},
		{"a shard expected and not yet delivering: none", []step{{read: &gps0, at: sec(100)}, {expect: &gps1, wall: sec(1)}}, sec(2), -1},
		{"expected, delivering: counted", []step{{read: &gps0, at: sec(100)}, {expect: &gps1}, {read: &gps1, at: sec(30)}}, sec(1), sec(30)},
		{"expected, silent past the idle time: not holding back, not quiet either", []step{{read: &gps0, at: sec(100)}, {expect: &gps1}}, sec(60), sec(100)},
		{"settled: nothing to wait for, at its vehicles' newest time", []step{{expect: &gps1}, {settle: &gps1, at: sec(20)}}, sec(1), sec(20)},
		{"all quiet and caught up: on with the wall clock, idle behind", []step{{read: &gps0, at: sec(100), wall: sec(3)}, {read: &gps1, at: sec(40), wall: sec(4)}}, sec(64), sec(100 + 64 - 4 - 5)},
		{"quiet for less than the idle time: the newest", []step{{read: &gps0, at: sec(100), behind: 0}}, sec(5), sec(100)},
		{"a forgotten shard holds nothing back", []step{{read: &gps0, at: sec(100)}, {read: &gps1, at: sec(40), behind: 9}, {forget: &gps1}}, sec(1), sec(100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(5 * time.Second)
			for _, s := range tc.steps {
				wall := w0.Add(s.wall)
				switch {
				case s.read != nil:
					c.Read(*s.read, t0.Add(s.at), s.behind, wall)
				case s.expect != nil:
					c.Expect(*s.expect, wall)
				case s.settle != nil:
					c.Settle(*s.settle, t0.Add(s.at), wall)
				case s.forget != nil:
					c.Forget(*s.forget)
				}
			}
			wm, ok := c.Watermark(w0.Add(tc.wall))
			if tc.want < 0 {
				if ok {
					t.Errorf("watermark %s, want none", wm.Sub(t0))
				}
				return
			}
			if !ok || !wm.Equal(t0.Add(tc.want)) {
				t.Errorf("watermark %s (%v), want %s", wm.Sub(t0), ok, tc.want)
			}
		})
	}
}

// Read tells the pipeline when a shard is read again, so that the vehicles restored for it are
// judged: its first record since it was assigned, or since the clock has known it.
func TestReadFirst(t *testing.T) {
	c := New(5 * time.Second)
	if !c.Read(gps0, t0, 0, w0) {
		t.Error("a shard's first record is not first")
	}
	if c.Read(gps0, t0.Add(time.Second), 0, w0) {
		t.Error("a shard's second record is first")
	}
	c.Expect(gps0, w0) // already read: nothing to expect
	if c.Read(gps0, t0.Add(2*time.Second), 0, w0) {
		t.Error("a shard read before Expect is first again")
	}
	c.Forget(gps0)
	c.Expect(gps0, w0)
	if !c.Read(gps0, t0, 0, w0) {
		t.Error("a shard assigned again is not first")
	}
	if !c.Newest().Equal(t0.Add(2 * time.Second)) {
		t.Errorf("newest %s, want 2s", c.Newest().Sub(t0))
	}
}

func BenchmarkReadBatch(b *testing.B) {
	fixes := make([]record.Fix, 1000)
	for i := range fixes {
		fixes[i] = record.Fix{Time: t0.Add(time.Duration(i) * time.Millisecond), Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: int32(i % 12)}, Behind: 3}}
	}
	c := New(5 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		c.ReadBatch(fixes, nil, w0, func(record.Shard) {})
		c.Watermark(w0)
	}
}
