package detectors

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/muckwatch/muckwatch/record"
)

// checkpoint returns tr's state in the binary format, in a slice of its own: one vehicle's, as
// Dirty gives each (the tests look at tracks one at a time).
func (e *Engine) checkpoint(tr *Track) []byte {
	return e.appendCheckpoint(make([]byte, 0, 256), tr)
}

// A vehicle's state checkpointed mid-episode and restored into a fresh engine (a restart, or its
// partition moving to another instance) continues the episode: the same alert escalates and
// resolves, nothing opens twice, and fixes read again after the checkpoint are not judged twice.
func TestCheckpointRestore(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	fix := func(sec int, x, y, speed float64) record.Fix {
		ll := c.Proj.Inverse([2]float64{x, y})
		return record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: float32(speed), HasSpeed: true}
	}
	// off route R1 (y = 150 m) and speeding in the 30 zone, then back on route at a legal speed
	var fixes []record.Fix
	for sec := 0; sec <= 60; sec += 10 {
		fixes = append(fixes, fix(sec, 2100+float64(sec)*10, 150, 45))
	}
	for sec := 70; sec <= 200; sec += 10 {
		fixes = append(fixes, fix(sec, 2100+float64(sec)*10, 0, 20))
	}
	run := func(eng *Engine, fs []record.Fix) []Change {
		var out []Change
		for i := range fs {
			eng.Reset()
			f := fs[i]
			eng.ProcessFix(&f)
			out = append(out, eng.Changes()...)
		}
		return out
	}
	newEngine := func() *Engine {
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	want := run(newEngine(), fixes)

	first := newEngine()
	got := run(first, fixes[:4]) // both episodes open
	checkpoints := map[string][]byte{}
	first.Dirty(nil, func(v string, _ record.Shard, cp []byte) { checkpoints[v] = cp })
	if len(checkpoints) != 1 || len(checkpoints["粤B00001"]) > 4<<10 {
		t.Fatalf("checkpoints: %d, %d bytes", len(checkpoints), len(checkpoints["粤B00001"]))
	}
	first.Dirty(nil, func(string, record.Shard, []byte) { t.Error("a clean vehicle was checkpointed again") })

	second := newEngine()
	if err := second.Restore(checkpoints["粤B00001"], nil); err != nil {
		t.Fatal(err)
	}
	checkEpisodeGauges(t, second)
	// the fix before the checkpoint is read again (its offset was not committed), then the rest
	got = append(got, run(second, fixes[3:])...)
	if len(got) != len(want) {
		t.Fatalf("%d changes across the restart, %d without:\n got %v\nwant %v", len(got), len(want), kinds(got), kinds(want))
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || got[i].Alert.ID != want[i].Alert.ID || got[i].Alert.Version != want[i].Alert.Version ||
			!got[i].Alert.End.Equal(want[i].Alert.End) {
			t.Errorf("change %d: got %s %s v%d, want %s %s v%d", i, got[i].Kind, got[i].Alert.ID, got[i].Alert.Version, want[i].Kind, want[i].Alert.ID, want[i].Alert.Version)
		}
	}
	r1, _ := first.Risk("粤B00001")
	r2, _ := second.Risk("粤B00001")
	if r2.Score == 0 || len(r2.Factors) == 0 {
		t.Errorf("restored risk %+v (before: %+v)", r2, r1)
	}

	for _, bad := range []string{`{`, `{"v":99,"vehicle":"x"}`, `{"v":1}`} {
		if err := second.Restore([]byte(bad), nil); err == nil {
			t.Errorf("Restore(%s) accepted", bad)
		}
	}
	// an older checkpoint does not roll back newer state
	before := second.checkpoint(second.tracks["粤B00001"])
	if err := second.Restore(checkpoints["粤B00001"], nil); err != nil {
		t.Fatal(err)
	}
	if after := second.checkpoint(second.tracks["粤B00001"]); string(after) != string(before) {
		t.Error("an older checkpoint replaced newer state")
	}
	checkEpisodeGauges(t, second)
}

func kinds(cs []Change) string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(string(c.Kind) + ":" + string(c.Alert.Rule) + " ")
	}
	return b.String()
}

func BenchmarkCheckpoint(b *testing.B) {
	c, eng := loadTestEngine(b)
	ll := c.Proj.Inverse([2]float64{2100, 150})
	f := record.Fix{VehicleID: "粤B00001", Time: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC), Lat: ll[1], Lon: ll[0], SpeedKmh: 45, HasSpeed: true}
	eng.ProcessFix(&f)
	tr := eng.tracks["粤B00001"]
	b.ReportAllocs()
	var n int
	for b.Loop() {
		n = len(eng.checkpoint(tr))
	}
	b.ReportMetric(float64(n), "bytes/vehicle")
}

// A truck restored from a checkpoint whose partition has not been read since the restart is not
// silent: the time-driven rules wait until its partition delivers (or another instance owns it).
func TestRestoredTrackNotSilent(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	fix := func(plate string, partition int32, sec int, x float64) record.Fix {
		ll := c.Proj.Inverse([2]float64{x, 0})
		return record.Fix{VehicleID: plate, Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 40, HasSpeed: true,
			Src: record.Source{Shard: record.Shard{Topic: "gps", Partition: partition}}}
	}
	first, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := []record.Fix{fix("粤B00001", 0, 0, 1000), fix("粤B00002", 1, 0, 1000)}
	newInput(first).batch(fs, nil)
	var cps [][]byte
	first.Dirty(nil, func(_ string, _ record.Shard, cp []byte) { cps = append(cps, cp) })

	second, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range cps {
		if err := second.Restore(cp, nil); err != nil {
			t.Fatal(err)
		}
	}
	// only partition 1 is read after the restart, 10 minutes on
	var later []record.Fix
	for sec := 60; sec <= 600; sec += 60 {
		later = append(later, fix("粤B00002", 1, sec, 1000+float64(sec)*10))
	}
	in := newInput(second)
	in.batch(later, nil)
	for _, ch := range second.Changes() {
		if ch.Alert.Rule == RuleSignalLost {
			t.Errorf("signal_lost for %s, whose partition was not read since the restart", ch.Alert.VehicleID)
		}
	}
	// once its partition is read again, a real silence is found
	second.Reset()
	in.batch([]record.Fix{fix("粤B00003", 0, 660, 5000), fix("粤B00002", 1, 660, 8000)}, nil)
	found := false
	for _, ch := range second.Changes() {
		found = found || (ch.Alert.Rule == RuleSignalLost && ch.Alert.VehicleID == "粤B00001")
	}
	if !found {
		t.Error("the restored truck silent for 10 minutes is not found once its partition is read")
	}
}

// A partition moving to another instance takes its vehicles with it: Release forgets them (and the
// partition's event time, which must not hold the watermark back), keeps the other partitions'
// vehicles, and Restore with an ownership filter only takes back the owned partitions' checkpoints.
func TestReleaseAndRestoreByPartition(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	plates := []string{"粤B00001", "粤B00002", "粤B00003"}
	for i, plate := range plates {
		ll := c.Proj.Inverse([2]float64{2100, 150})
		f := record.Fix{VehicleID: plate, Time: start, Lat: ll[1], Lon: ll[0], SpeedKmh: 45, HasSpeed: true,
			Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: int32(i % 2)}, Behind: 10}}
		eng.ProcessFix(&f)
	}
	cps := map[string][]byte{}
	parts := map[string]int32{}
	eng.Dirty(nil, func(v string, s record.Shard, cp []byte) { cps[v], parts[v] = cp, s.Partition })
	if parts["粤B00002"] != 1 || parts["粤B00003"] != 0 {
		t.Fatalf("checkpoint partitions %v", parts)
	}
	if n := eng.Release(record.Shard{Topic: "muck.gps", Partition: 1}); n != 1 || eng.Tracks() != 2 {
		t.Fatalf("released %d, %d tracks left; want 1 and 2", n, eng.Tracks())
	}
	checkEpisodeGauges(t, eng)
	if _, ok := eng.Risk("粤B00002"); ok {
		t.Error("a released vehicle still has a risk")
	}
	if n := eng.Release(record.Shard{Topic: "muck.gps", Partition: 7}); n != 0 {
		t.Errorf("releasing a partition never read forgot %d vehicles", n)
	}

	fresh, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	owned := func(s record.Shard) bool { return s == record.Shard{Topic: "muck.gps", Partition: 1} }
	for _, plate := range plates {
		if err := fresh.Restore(cps[plate], owned); err != nil {
			t.Fatal(err)
		}
	}
	if fresh.Tracks() != 1 || fresh.tracks["粤B00002"] == nil {
		t.Fatalf("restored %d tracks, want only 粤B00002", fresh.Tracks())
	}
	checkEpisodeGauges(t, fresh)
	// nothing left to read on the partition: its restored vehicles are judged from now on, at the
	// partition's newest event time
	if !fresh.tracks["粤B00002"].restored {
		t.Fatal("a restored vehicle is judged before its partition is read")
	}
	if newest := fresh.Resume(record.Shard{Topic: "muck.gps", Partition: 1}); !newest.Equal(start) {
		t.Errorf("Resume gave the partition's event time as %v, want %v", newest, start)
	}
	if fresh.tracks["粤B00002"].restored {
		t.Error("Resume left the vehicle waiting for its partition")
	}
}

// After a restart the partitions deliver one after the other: one read to its end first must
// not carry the event time past the others' records. A truck on a partition read second falls
// silent at 20 minutes while another partition has already been read to 60 minutes: its silence
// is found once its own records are read (the engine waits for every partition it expects).
func TestExpectedPartitionHoldsEventTime(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	fix := func(plate string, partition int32, sec int, x float64) record.Fix {
		ll := c.Proj.Inverse([2]float64{x, 0})
		return record.Fix{VehicleID: plate, Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 40, HasSpeed: true,
			Src: record.Source{Shard: record.Shard{Topic: "gps", Partition: partition}, Behind: 1}}
	}
	for _, tc := range []struct {
		name   string
		expect bool
	}{{"partitions expected", true}, {"without (the decisions this prevents losing)", false}} {
		t.Run(tc.name, func(t *testing.T) {
			eng, err := NewEngine(Config{}, c, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			in := newInput(eng)
			if tc.expect {
				in.clock.Expect(record.Shard{Topic: "gps", Partition: 0}, in.now())
				in.clock.Expect(record.Shard{Topic: "gps", Partition: 1}, in.now())
			}
			var first, second []record.Fix
			for sec := 0; sec <= 3600; sec += 30 {
				first = append(first, fix("粤B00001", 0, sec, 1000+float64(sec)))
			}
			for sec := 0; sec <= 1200; sec += 30 {
				second = append(second, fix("粤B00002", 1, sec, 1000+float64(sec)))
			}
			second = append(second, fix("粤B00003", 1, 1800, 5000)) // the partition goes on; 粤B00002 is silent
			in.batch(first, nil)
			in.batch(second, nil)
			found := false
			for _, ch := range eng.Changes() {
				found = found || (ch.Alert.Rule == RuleSignalLost && ch.Alert.VehicleID == "粤B00002")
			}
			if found != tc.expect {
				t.Errorf("signal_lost for the truck silent on the partition read second: %v, want %v (judged to %s)", found, tc.expect, eng.Judged().Sub(start))
			}
		})
	}
}

// Camera events read again after a restart (from the committed offsets, which the checkpoint is
// ahead of) are not judged twice. The case seen in a crash test: an overload alert opened at
// 12:30, then the 10:10 weighing of the episode before it read again, which moved the episode's
// last evidence back and resolved the alert with an end before its start. Events of one truck
// read out of time order, in one batch or in the next, are all judged, and the episode's last
// evidence is the newest.
func TestReplayedEventsNotJudgedTwice(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	weigh := func(offset int64, at time.Duration, kg float64) record.Event {
		return record.Event{EventID: fmt.Sprintf("w%d", offset), VehicleID: "粤B00001", Time: start.Add(at), Kind: record.KindWeigh,
			SiteID: "C1", LoadKg: kg, HasLoad: true, Confidence: 1, Src: record.Source{Shard: record.Shard{Topic: "muck.events", Partition: 2}, Offset: offset}}
	}
	events := []record.Event{
		weigh(0, 0, 21000),               // opens an overload alert
		weigh(1, 10*time.Minute, 25000),  // escalates it
		weigh(2, 150*time.Minute, 21000), // 2 h 20 min later: that one ends, another opens
		weigh(3, 170*time.Minute, 22000), // read in one batch with the next, out of time order:
		weigh(4, 160*time.Minute, 21500), // both are evidence
		weigh(5, 165*time.Minute, 21000), // and one in the next batch, older than the newest
		weigh(6, 7*time.Hour, 18000),     // long after: that episode has ended
	}
	newEngine := func() *Engine {
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	batch := func(eng *Engine, evs ...record.Event) []Change {
		eng.Reset()
		eng.ProcessBatch(nil, evs)
		return slices.Clone(eng.Changes())
	}
	once := newEngine()
	var want []Change
	for _, b := range [][]record.Event{events[:2], events[2:3], events[3:5], events[5:6], events[6:]} {
		want = append(want, batch(once, b...)...)
	}

	first := newEngine()
	got := batch(first, events[:2]...)
	got = append(got, batch(first, events[2:3]...)...)
	var cp []byte
	first.Dirty(nil, func(_ string, _ record.Shard, b []byte) { cp = b })
	// the crash: the 12:30 batch is checkpointed, the offsets committed only up to the first event
	second := newEngine()
	if err := second.Restore(cp, nil); err != nil {
		t.Fatal(err)
	}
	if again := batch(second, events[1:3]...); len(again) != 0 {
		t.Fatalf("events judged before the restart gave %s again", kinds(again))
	}
	got = append(got, batch(second, events[3:5]...)...)
	got = append(got, batch(second, events[5:6]...)...)
	got = append(got, batch(second, events[6:]...)...)

	if len(got) != len(want) {
		t.Fatalf("%d changes across the restart, %d without:\n got %s\nwant %s", len(got), len(want), kinds(got), kinds(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Kind != w.Kind || g.Alert.ID != w.Alert.ID || g.Alert.Version != w.Alert.Version || g.Alert.Severity != w.Alert.Severity ||
			!g.Alert.End.Equal(w.Alert.End) || g.Alert.Value != w.Alert.Value {
			t.Errorf("change %d: got %s %s v%d %s end %s value %.0f, want %s %s v%d %s end %s value %.0f", i,
				g.Kind, g.Alert.ID, g.Alert.Version, g.Alert.Severity, g.Alert.End, g.Alert.Value,
				w.Kind, w.Alert.ID, w.Alert.Version, w.Alert.Severity, w.Alert.End, w.Alert.Value)
		}
	}
	var resolved []Change
	for _, ch := range want {
		if ch.Kind == ChangeResolved {
			resolved = append(resolved, ch)
			if ch.Alert.End.Before(ch.Alert.Start) {
				t.Errorf("alert %s resolved with end %s before its start %s", ch.Alert.ID, ch.Alert.End, ch.Alert.Start)
			}
		}
	}
	// each episode ends 2 h after its last evidence: the second's is 12:50's weighing, although
	// 12:40's and 12:45's were judged after it; its peak the 22,000 kg
	if len(resolved) != 2 || !resolved[0].Alert.End.Equal(start.Add(130*time.Minute)) || !resolved[1].Alert.End.Equal(start.Add(290*time.Minute)) ||
		resolved[1].Alert.Value != 22000 {
		for _, r := range resolved {
			t.Logf("%s start %s end %s value %.0f", r.Alert.ID, r.Alert.Start, r.Alert.End, r.Alert.Value)
		}
		t.Fatalf("resolved: %s", kinds(resolved))
	}
}

// The checkpoints of one Dirty call share a buffer: each is its own vehicle's, whole, and
// appending to one does not overwrite the next.
func TestDirtyCheckpointsShareNoBytes(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	ll := c.Proj.Inverse([2]float64{2100, 150})
	const n = 300
	for i := range n {
		f := record.Fix{VehicleID: fmt.Sprintf("粤B%05d", i), Time: start.Add(time.Duration(i) * time.Millisecond), Lat: ll[1], Lon: ll[0],
			SpeedKmh: 45, HasSpeed: true, Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: int32(i % 4)}}}
		eng.ProcessFix(&f)
	}
	var got [][]byte
	var ids []string
	eng.Dirty(nil, func(v string, _ record.Shard, cp []byte) {
		ids = append(ids, v)
		got = append(got, cp)
	})
	for i := range got {
		got[i] = append(got[i], 0xff) // would overwrite the next one's first byte if they overlapped
	}
	if len(got) != n {
		t.Fatalf("%d checkpoints, want %d", len(got), n)
	}
	for i, cp := range got {
		restored, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := restored.Restore(cp[:len(cp)-1], nil); err != nil {
			t.Fatalf("checkpoint %d (%s): %v", i, ids[i], err)
		}
		if restored.tracks[ids[i]] == nil || restored.Tracks() != 1 {
			t.Fatalf("checkpoint %d restored %d tracks, not %s's", i, restored.Tracks(), ids[i])
		}
	}
}

// TestDirtyReusesArena: the buffer Dirty returns holds the call's checkpoints and, passed to the
// next call of a like size, takes that call's checkpoints in place (no allocation a batch); a
// buffer far larger than needed is not kept.
func TestDirtyReusesArena(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	touch := func(round, vehicles int) {
		for v := range vehicles {
			ll := c.Proj.Inverse([2]float64{2100 + float64(round*10), 150})
			eng.ProcessFix(&record.Fix{VehicleID: fmt.Sprintf("粤B%05d", v), Time: start.Add(time.Duration(round) * 10 * time.Second),
				Lat: ll[1], Lon: ll[0], SpeedKmh: 20, HasSpeed: true})
		}
	}
	collect := func(arena []byte) ([]byte, map[string][]byte) {
		cps := map[string][]byte{}
		arena = eng.Dirty(arena, func(v string, _ record.Shard, cp []byte) { cps[v] = cp })
		return arena, cps
	}
	// the trucks' kinematic memory (their recent fixes) fills over the first rounds, and their
	// checkpoints grow with it: like-sized calls come once it is full
	const warm = motionLen + 2
	for round := range warm {
		touch(round, 50)
	}
	arena, first := collect(nil)
	if len(first) != 50 || len(arena) == 0 {
		t.Fatalf("%d checkpoints in an arena of %d bytes, want 50", len(first), len(arena))
	}
	touch(warm, 50) // sized from the first call's average now
	arena, _ = collect(arena)
	touch(warm+1, 50)
	again, second := collect(arena)
	if &again[0] != &arena[0] {
		t.Errorf("a like-sized call did not reuse the arena passed in")
	}
	for v, cp := range second {
		fresh := eng.checkpoint(eng.tracks[v])
		if !slices.Equal(cp, fresh) {
			t.Fatalf("%s: the checkpoint in the reused arena differs from its state", v)
		}
	}
	touch(warm+2, 10) // a fifth of the vehicles: live batches vary that much, and the arena is kept
	fifth, _ := collect(again)
	if &fifth[0] != &again[0] {
		t.Errorf("a call for a fifth of the vehicles did not reuse the arena (%d bytes, %d for 50 vehicles)", cap(fifth), cap(again))
	}
	touch(warm+3, 1)
	small, _ := collect(fifth)
	if cap(small) >= cap(again) {
		t.Errorf("one vehicle's checkpoint kept an arena of %d bytes (%d for 50 vehicles)", cap(small), cap(again))
	}
}

// TestDirtyChunksLargeCalls: a call whose checkpoints need more than arenaChunk (a fleet's, once an
// interval) appends them to chunks of that size instead of one buffer of them all, returns no
// arena to keep, and every checkpoint is its vehicle's state whole.
func TestDirtyChunksLargeCalls(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	const vehicles, warm = 4000, motionLen + 2
	touch := func(round int) {
		for v := range vehicles {
			ll := c.Proj.Inverse([2]float64{2100 + float64(round*10), 150 + float64(v%50)})
			eng.ProcessFix(&record.Fix{VehicleID: fmt.Sprintf("粤B%05d", v), Time: start.Add(time.Duration(round) * 10 * time.Second),
				Lat: ll[1], Lon: ll[0], SpeedKmh: 20, HasSpeed: true})
		}
	}
	for round := range warm {
		touch(round)
	}
	eng.Dirty(nil, func(string, record.Shard, []byte) {}) // sizes the next call from these
	touch(warm)
	var cps [][]byte
	total := 0
	arena := eng.Dirty(nil, func(v string, _ record.Shard, cp []byte) {
		if fresh := eng.checkpoint(eng.tracks[v]); !slices.Equal(cp, fresh) {
			t.Fatalf("%s: the checkpoint in a chunk differs from its state", v)
		}
		cps = append(cps, cp)
		total += len(cp)
	})
	if total <= arenaChunk {
		t.Fatalf("the call needed %d bytes, not more than a chunk (%d): the test tests nothing", total, arenaChunk)
	}
	if arena != nil {
		t.Errorf("a chunked call returned an arena of %d bytes to keep", cap(arena))
	}
	// consecutive checkpoints in one chunk are adjacent; a run of them never exceeds a chunk
	run, runs := len(cps[0]), 1
	for i := 1; i < len(cps); i++ {
		if unsafe.SliceData(cps[i]) == (*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(cps[i-1])), len(cps[i-1]))) {
			run += len(cps[i])
		} else {
			run, runs = len(cps[i]), runs+1
		}
		if run > arenaChunk {
			t.Fatalf("checkpoints %d bytes in one buffer, more than a chunk (%d)", run, arenaChunk)
		}
	}
	if want := total / arenaChunk; runs < want {
		t.Errorf("%d bytes of checkpoints in %d buffers, want at least %d", total, runs, want)
	}
}

// A checkpoint whose positions or speed are not numbers (no decoded fix gives them: corrupt or
// forged) is refused at restore, with what was wrong and whose, and restores nothing; the same
// checkpoint with numbers restores.
func TestRestoreRefusesNonFiniteState(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	// speeding in the 30 zone: an open episode, recent fixes kept
	var fixes []record.Fix
	for sec := 0; sec <= 60; sec += 10 {
		ll := c.Proj.Inverse([2]float64{2100 + float64(sec)*10, 150})
		fixes = append(fixes, record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 45, HasSpeed: true})
	}
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name, want string
		spoil      func(tr *Track)
	}{
		{"numbers", "", func(*Track) {}},
		{"last position NaN", "last position is not a number", func(tr *Track) { tr.last.ll[1] = nan }},
		{"last projected position infinite", "last projected position is not a number", func(tr *Track) { tr.last.xy[0] = inf }},
		{"last speed infinite", "last speed is not a number", func(tr *Track) { tr.last.speedKmh = inf }},
		{"a recent fix NaN", "recent fix is not a number", func(tr *Track) { tr.motion.ring[tr.motion.head].ll[0] = nan }},
		{"an episode's start NaN", "'s start is not a number", func(tr *Track) {
			for _, ep := range tr.episodes {
				if ep != nil && ep.state != StateInactive {
					ep.sinceLL[0] = nan
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eng := defaultEngine(t, c)
			for i := range fixes {
				eng.ProcessFix(&fixes[i])
			}
			tr := eng.tracks["粤B00001"]
			if tr.episodes == nil {
				t.Fatal("no episode open: the case tests nothing")
			}
			tc.spoil(tr)
			fresh := defaultEngine(t, c)
			err := fresh.Restore(eng.checkpoint(tr), nil)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("a sound checkpoint refused: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("restored; want an error saying %q", tc.want)
			case !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "粤B00001"):
				t.Fatalf("error %q does not say %q of 粤B00001", err, tc.want)
			case fresh.Tracks() != 0:
				t.Fatalf("refused, but %d vehicles restored", fresh.Tracks())
			}
		})
	}
}

// A checkpoint whose last fix's time is beyond what a track holds (Unix nanoseconds: no decoded
// fix is outside the years 1678–2262) is refused at restore, saying so and whose; the edges of
// that range restore.
func TestRestoreRefusesTimeOutOfRange(t *testing.T) {
	c := loadTestCity(t)
	ll := c.Proj.Inverse([2]float64{2100, 150})
	fix := record.Fix{VehicleID: "粤B00001", Time: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC), Lat: ll[1], Lon: ll[0], SpeedKmh: 45, HasSpeed: true}
	eng := defaultEngine(t, c)
	eng.ProcessFix(&fix)
	sound, err := decodeBinaryCheckpoint(eng.checkpoint(eng.tracks["粤B00001"]))
	if err != nil {
		t.Fatal(err)
	}
	const edge = math.MaxInt64 / 1_000_000 // ms
	for _, tc := range []struct {
		ms   int64
		want string
	}{
		{edge, ""},
		{-edge, ""},
		{edge + 1, "last fix time 9223372036855 ms is out of range"},
		{-edge - 1, "last fix time -9223372036855 ms is out of range"},
		{math.MaxInt64, "is out of range"},
	} {
		s := sound
		s.Last.TimeMs = tc.ms
		cp, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		fresh := defaultEngine(t, c)
		err = fresh.Restore(cp, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%d ms: refused: %v", tc.ms, err)
		case tc.want == "":
			if got := fresh.tracks["粤B00001"].last.time(); got.UnixMilli() != tc.ms {
				t.Errorf("%d ms: restored as %d ms", tc.ms, got.UnixMilli())
			}
		case err == nil:
			t.Errorf("%d ms: restored; want an error saying %q", tc.ms, tc.want)
		case !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "粤B00001"):
			t.Errorf("%d ms: error %q does not say %q of 粤B00001", tc.ms, err, tc.want)
		}
	}
}
