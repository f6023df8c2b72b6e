package detectors

import (
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// Fixes carrying their plate's number (record.PlateNumbers) find their track by it; a number is a
// hint, so another plate with the same number gets a track of its own, and a released vehicle's
// number does not bring its old state back.
func TestNumberedTracks(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ll := c.Proj.Inverse([2]float64{2100, 150})
	fix := func(plate string, no uint32, sec int, partition int32) {
		t.Helper()
		f := record.Fix{VehicleID: plate, VehicleNo: no, Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0],
			SpeedKmh: 20, HasSpeed: true, Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: partition}}}
		eng.ProcessFix(&f)
	}
	last := func(plate string) time.Time {
		t.Helper()
		tr := eng.tracks[plate]
		if tr == nil {
			t.Fatalf("no track for %s", plate)
		}
		return tr.last.time()
	}
	steps := []struct {
		name   string
		do     func()
		tracks int
		plate  string
		last   int // seconds after start
	}{
		{"first fix", func() { fix("粤B00001", 1, 0, 0) }, 1, "粤B00001", 0},
		{"another vehicle", func() { fix("粤B00002", 2, 0, 1) }, 2, "粤B00002", 0},
		{"by its number", func() { fix("粤B00001", 1, 10, 0) }, 2, "粤B00001", 10},
		{"another plate with that number", func() { fix("粤B00003", 1, 5, 0) }, 3, "粤B00003", 5},
		{"the first plate again, its slot taken", func() { fix("粤B00001", 1, 20, 0) }, 3, "粤B00001", 20},
		{"the third plate without a number", func() { fix("粤B00003", 0, 30, 0) }, 3, "粤B00003", 30},
		{"older than its last fix: skipped", func() { fix("粤B00001", 1, 15, 0) }, 3, "粤B00001", 20},
		// partition 0 moves to another instance; a later owner's earlier fix is judged afresh
		{"released", func() { eng.Release(record.Shard{Topic: "muck.gps", Partition: 0}) }, 1, "粤B00002", 0},
		{"back after the release", func() { fix("粤B00001", 1, 15, 0) }, 2, "粤B00001", 15},
	}
	for _, s := range steps {
		s.do()
		if eng.Tracks() != s.tracks {
			t.Fatalf("%s: %d tracks, want %d", s.name, eng.Tracks(), s.tracks)
		}
		if got := last(s.plate); !got.Equal(start.Add(time.Duration(s.last) * time.Second)) {
			t.Fatalf("%s: %s's last fix at %s, want +%ds", s.name, s.plate, got.Sub(start), s.last)
		}
	}
	for no := range uint32(8) { // the fixes above carry numbers below 8
		if tr := eng.numbered.Get(no); tr != nil && (eng.tracks[tr.VehicleID] != tr || tr.no != no) {
			t.Errorf("numbered[%d] holds %s (number %d), not the engine's track", no, tr.VehicleID, tr.no)
		}
	}
}
