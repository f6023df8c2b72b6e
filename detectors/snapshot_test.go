package detectors

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// snapshotRound is round k of a fleet of n trucks driving along the test city's streets (some
// speeding, some off route), each reading from input partition v%4, every seventh truck of the
// round also weighed overloaded; in round k only the trucks with v%every == 0 report.
func snapshotRound(c *city.City, n, k, every int) ([]record.Fix, []record.Event) {
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	var fixes []record.Fix
	var events []record.Event
	for v := 0; v < n; v += every {
		plate := fmt.Sprintf("粤B%05d", v)
		ll := c.Proj.Inverse([2]float64{float64(v%500)*10 + float64(k)*80, float64(v % 60)})
		fixes = append(fixes, record.Fix{VehicleID: plate, Time: start.Add(time.Duration(k*10+v%10) * time.Second), Lat: ll[1], Lon: ll[0],
			SpeedKmh: 30 + float32(v%30), HasSpeed: true, Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: int32(v % 4)}, Offset: int64(k*n + v)}})
		if v%7 == k%7 {
			events = append(events, record.Event{EventID: fmt.Sprintf("w%d-%d", k, v), VehicleID: plate, Time: start.Add(time.Duration(k*10+v%10) * time.Second),
				Kind: record.KindWeigh, Source: "ws-1", LoadKg: 52000, HasLoad: true, Confidence: 1,
				Src: record.Source{Shard: record.Shard{Topic: "muck.events", Partition: int32(v % 4)}, Offset: int64(k*n + v)}})
		}
	}
	return fixes, events
}

// A snapshot's checkpoints are the state at the moment it was taken, whatever the engine did
// while they were encoded and whichever goroutine encoded each: byte for byte those a twin
// engine fed the same records gives with Dirty at that moment. And what changed after the
// snapshot is in the next one, as in the twin's next Dirty.
func TestSnapshotIsTheStateWhenTaken(t *testing.T) {
	c := loadTestCity(t)
	const n = 3000
	escalated := time.Date(2026, 11, 23, 2, 6, 0, 0, time.UTC) // the first alerts severe by then
	after := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)     // every truck silent by then: signal_lost
	cases := []struct {
		name string
		// encoderFirst: the encoder runs before the engine goes on (takeSnapshot, encode);
		// encoderLast: after it, so that every track the engine changes is encoded by the engine;
		// neither: both at once (Snapshot)
		encoderFirst, encoderLast bool
		// paced: the encoder would take an hour (Snapshot's spread); the engine finishes it
		paced bool
		every int // the trucks that report after the snapshot: v%every == 0
		// before the snapshot, every fourth truck reports after a gap (a fix held back); after
		// the reports, event time passes the held fixes' wait and every truck's silence
		tick    bool
		release bool // and partition 1 is released
	}{
		{name: "encoder and engine at once", every: 1},
		{name: "engine first: it encodes what it changes", encoderLast: true, every: 2},
		{name: "encoder first", encoderFirst: true, every: 1},
		{name: "time-driven decisions after the snapshot", encoderLast: true, every: 3, tick: true},
		{name: "time-driven decisions, encoder at once", every: 5, tick: true},
		{name: "a partition released while in flight", every: 2, release: true},
		{name: "a paced encoder hurried by the engine", paced: true, every: 2},
		{name: "a paced encoder hurried by a release", paced: true, every: 3, tick: true, release: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			twin, eng := defaultEngine(t, c), defaultEngine(t, c)
			feed := func(e *Engine, k, every int) {
				fixes, events := snapshotRound(c, n, k, every)
				e.Reset()
				e.ProcessBatch(fixes, events)
			}
			dirty := func(e *Engine) map[string][]byte {
				m := map[string][]byte{}
				e.Dirty(nil, func(v string, _ record.Shard, cp []byte) { m[v] = bytes.Clone(cp) })
				return m
			}
			for k := range 3 {
				feed(twin, k, 1)
				feed(eng, k, 1)
			}
			if tc.tick { // every fourth truck's first fix after a gap, held back until the next
				feed(twin, 20, 4)
				feed(eng, 20, 4)
			}
			want := dirty(twin)
			if len(want) != n {
				t.Fatalf("the twin checkpointed %d vehicles, want %d", len(want), n)
			}

			var s *Snapshot
			if tc.encoderLast || tc.encoderFirst {
				s = eng.takeSnapshot()
				if tc.encoderFirst {
					s.encode(1<<16, 0)
				}
			} else {
				spread := time.Duration(0)
				if tc.paced {
					spread = time.Hour
				}
				s = eng.Snapshot(spread)
			}
			later := func(e *Engine) {
				for k := 3; k < 5; k++ {
					feed(e, k, tc.every)
				}
				if tc.tick { // alerts escalated in time, then signal lost
					for _, at := range []time.Time{escalated, after} {
						e.Reset()
						e.Advance(at)
						e.Tick()
						if len(e.Changes()) == 0 {
							t.Fatalf("no time-driven decision at %s after the snapshot: the case tests nothing", at)
						}
					}
				}
				if tc.release {
					if e.Release(record.Shard{Topic: "muck.gps", Partition: 1}) == 0 {
						t.Fatal("released no vehicle")
					}
				}
			}
			later(eng)
			if tc.encoderLast {
				s.cut.mu.Lock()
				settled := len(s.cut.settled.vehicles)
				s.cut.mu.Unlock()
				if settled == 0 {
					t.Fatal("the engine encoded no track before changing it")
				}
				s.encode(1<<16, 0)
			}
			if tc.paced {
				eng.finishSnapshot() // as the next snapshot does
			}
			if err := s.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{}
			s.Each(func(v string, _ record.Shard, cp []byte) {
				if _, ok := got[v]; ok {
					t.Errorf("%s checkpointed twice in one snapshot", v)
				}
				got[v] = cp
			})
			compareCheckpoints(t, "the snapshot", got, want)

			later(twin)
			compareCheckpoints(t, "the checkpoints after it", dirty(eng), dirty(twin))
		})
	}
}

// A released snapshot's memory serves the snapshots after it, and only once it is released: the
// checkpoints of a snapshot still being written stay as they were, and those encoded into a
// released snapshot's chunks are byte for byte the state (a twin engine's Dirty). What is kept
// is bounded by the last snapshot released.
func TestSnapshotMemoryReleased(t *testing.T) {
	c := loadTestCity(t)
	const n = 3000 // ~1.5 MB of checkpoints: chunks of arenaChunk
	twin, eng := defaultEngine(t, c), defaultEngine(t, c)
	round := func(k, every int) {
		for _, e := range []*Engine{twin, eng} {
			fixes, events := snapshotRound(c, n, k, every)
			e.Reset()
			e.ProcessBatch(fixes, events)
		}
	}
	take := func() (*Snapshot, map[string][]byte) {
		t.Helper()
		s := eng.Snapshot(0)
		if err := s.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		s.Each(func(v string, _ record.Shard, cp []byte) { got[v] = cp })
		want := map[string][]byte{}
		twin.Dirty(nil, func(v string, _ record.Shard, cp []byte) { want[v] = bytes.Clone(cp) })
		compareCheckpoints(t, fmt.Sprintf("snapshot of epoch %d", s.cut.epoch), got, want)
		return s, want
	}
	chunksOf := func(s *Snapshot) map[*byte]bool {
		m := map[*byte]bool{}
		for _, ch := range s.enc.chunks {
			m[unsafe.SliceData(ch)] = true
		}
		return m
	}

	round(0, 1)
	take() // sizes the arenas of the next (Engine.checkpointSize); not released
	round(1, 1)
	first, firstWant := take()
	firstChunks := chunksOf(first)
	if len(firstChunks) < 2 {
		t.Fatalf("the first snapshot has %d chunks: the test needs several", len(firstChunks))
	}
	held := map[string][]byte{}
	first.Each(func(v string, _ record.Shard, cp []byte) { held[v] = cp })

	round(2, 1)
	second, _ := take()
	for ch := range chunksOf(second) {
		if firstChunks[ch] {
			t.Fatal("the second snapshot was encoded into the first's memory before the first was released")
		}
	}
	compareCheckpoints(t, "the first snapshot, not released, after the second", held, firstWant)

	first.Release(true)
	if first.Len() != 0 {
		t.Errorf("a released snapshot still holds %d checkpoints", first.Len())
	}
	round(3, 1)
	third, _ := take() // compared with the twin: right in reused memory
	reused := 0
	for ch := range chunksOf(third) {
		if firstChunks[ch] {
			reused++
		}
	}
	if reused != len(firstChunks) {
		t.Errorf("the third snapshot reused %d of the first's %d chunks", reused, len(firstChunks))
	}

	// small snapshots released: what is kept shrinks to their chunks once the last few
	// released were all small
	second.Release(true)
	third.Release(true)
	for k := range keptSnapshots {
		round(4+k, 500)
		small, _ := take()
		small.Release(true)
		kept := len(eng.released.chunks)
		if k < keptSnapshots-1 && kept < len(firstChunks) {
			t.Errorf("%d chunks kept after %d small snapshots were released, want the %d of the large ones before", kept, k+1, len(firstChunks))
		}
		if k == keptSnapshots-1 && kept > 1 {
			t.Errorf("%d chunks kept after %d snapshots of %d vehicles were released, want at most 1", kept, keptSnapshots, n/500)
		}
	}
	// and one released not to keep drops them all
	round(4+keptSnapshots, 1)
	last, _ := take()
	last.Release(false)
	if kept := len(eng.released.chunks); kept != 0 {
		t.Errorf("%d chunks kept after a snapshot was released not to keep", kept)
	}
}

// Snapshots of a fleet one after the other, each released once written, take their memory from
// the ones before once the first have sized it: the arenas, both parts' lists and the encoder's
// list of the tracks the engine encoded, whichever goroutine encodes most of a snapshot (the
// engine's, in a live window, where every truck reports while the encoder paces itself).
func TestSnapshotsReuseTheirMemory(t *testing.T) {
	c := loadTestCity(t)
	const n = 6000 // ~3 MB of checkpoints: several chunks
	eng := defaultEngine(t, c)
	fixes, events := snapshotRound(c, n, 0, 1)
	eng.ProcessBatch(fixes, events)
	round := 0
	snapshot := func() {
		for _, tr := range eng.tracks {
			eng.markDirty(tr)
		}
		s := eng.takeSnapshot()
		for i, tr := range s.cut.tracks { // the engine first: none, every other one, all
			if round%3 == 2 || round%3 == 1 && i%2 == 0 {
				eng.settle(tr)
			}
		}
		round++
		s.encode(arenaChunk, 0)
		if err := s.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s.Len() != n {
			t.Fatalf("a snapshot of %d checkpoints, want %d", s.Len(), n)
		}
		s.Release(true)
	}
	for range 6 { // each way twice: the memory kept is sized
		snapshot()
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const rounds = 6
	for range rounds {
		snapshot()
	}
	runtime.ReadMemStats(&after)
	// a snapshot's own few objects (its cut, channels) remain; its fleet's lists would be
	// 6,000 × (16+24+24) B, a chunk 1 MiB
	if perRound := (after.TotalAlloc - before.TotalAlloc) / rounds; perRound > 16<<10 {
		t.Errorf("a snapshot of %d vehicles allocated %d bytes once the memory kept was sized, want at most 16 KiB", n, perRound)
	}
}

// defaultEngine is an engine of every rule with its defaults over c.
func defaultEngine(t *testing.T, c *city.City) *Engine {
	t.Helper()
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func compareCheckpoints(t *testing.T, what string, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d checkpoints, want %d", what, len(got), len(want))
	}
	bad := 0
	for v, cp := range want {
		if !bytes.Equal(got[v], cp) {
			if bad++; bad <= 3 {
				t.Errorf("%s: %s's checkpoint differs from the twin's", what, v)
			}
		}
	}
	if bad > 3 {
		t.Errorf("%s: %d checkpoints differ in all", what, bad)
	}
}

// BenchmarkSnapshot is taking a fleet's snapshot on the engine's goroutine: what the batches
// behind a checkpoint wait for (the encoding goes on beside them).
func BenchmarkSnapshot(b *testing.B) {
	c := loadTestCity(b)
	const n = 20_000
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	fixes, events := snapshotRound(c, n, 0, 1)
	eng.ProcessBatch(fixes, events)
	for b.Loop() {
		b.StopTimer()
		for _, tr := range eng.tracks {
			eng.markDirty(tr)
		}
		b.StartTimer()
		s := eng.Snapshot(0)
		b.StopTimer()
		if err := s.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
