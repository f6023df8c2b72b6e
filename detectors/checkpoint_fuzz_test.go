package detectors

import (
	"bufio"
	"os"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// FuzzRestore: a checkpoint read from the state topic is outside data. Whatever its bytes,
// Restore does not panic; one it accepts leaves a vehicle the engine can judge fixes for and
// checkpoint again, and that checkpoint restores to itself.
func FuzzRestore(f *testing.F) {
	c := loadTestCity(f)
	// seeds: real checkpoints of a vehicle mid-episode and of one with a fix held back, the corpus
	// in testdata, and the journey's
	// checkpoints with every rule's memo (checkpoint_memo_test.go)
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for sec := 0; sec <= 60; sec += 10 {
		ll := c.Proj.Inverse([2]float64{2100 + float64(sec)*10, 150})
		fx := record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 45, HasSpeed: true,
			Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: 1}}}
		eng.ProcessFix(&fx)
		eng.Dirty(nil, func(_ string, _ record.Shard, cp []byte) { f.Add(cp) })
	}
	// a fix held back after a gap, and a jump set aside (format 4's set-aside section)
	held, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, fx := range snapJourney(c) {
		held.ProcessFix(&fx)
		held.Dirty(nil, func(_ string, _ record.Shard, cp []byte) { f.Add(cp) })
	}
	// no reported speed: the speed window's recent fixes, the stays and dwell's stop (format 5's
	// kinematic memory), every tenth fix's
	street, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	for i, fx := range streetJourney(c) {
		street.ProcessFix(&fx)
		street.Dirty(nil, func(_ string, _ record.Shard, cp []byte) {
			if i%10 == 0 {
				f.Add(cp)
			}
		})
	}
	if file, err := os.Open("testdata/checkpoints.jsonl"); err == nil {
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			f.Add([]byte(sc.Text()))
		}
		file.Close()
	}
	seeded := map[string]bool{}
	for _, cps := range readJourneyCheckpoints(f, "testdata/checkpoints_v3_journey.txt", len(memoJourney(c))) {
		for _, cp := range cps {
			if !seeded[string(cp)] {
				seeded[string(cp)] = true
				f.Add(cp)
			}
		}
	}
	f.Fuzz(func(t *testing.T, cp []byte) {
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Restore(cp, nil); err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		for id, tr := range eng.tracks {
			first := eng.checkpoint(tr)
			again, err := NewEngine(Config{}, c, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := again.Restore(first, nil); err != nil {
				t.Fatalf("a checkpoint of restored state does not restore: %v\n%s", err, first)
			}
			if second := again.checkpoint(again.tracks[id]); string(second) != string(first) {
				t.Fatalf("checkpoint round trip differs:\n%s\n%s", first, second)
			}
			fx := record.Fix{VehicleID: id, Time: tr.last.time().Add(10 * time.Second), Lat: 22.5, Lon: 114.0, SpeedKmh: 30, HasSpeed: true}
			if fx.Time.Year() < 2000 || fx.Time.Year() > 2100 {
				fx.Time = start
			}
			eng.Reset()
			eng.ProcessFix(&fx)
			tickTo(eng, fx.Time)
		}
	})
}
