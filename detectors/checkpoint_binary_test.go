package detectors

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// normalized is a TrackState as JSON with its alert times in UTC, for comparing states decoded
// from the two formats.
func normalized(t *testing.T, s TrackState) string {
	t.Helper()
	for _, es := range s.Episodes {
		if a := es.Alert; a != nil {
			for _, tm := range []*time.Time{&a.Start, &a.End, &a.Updated} {
				if !tm.IsZero() {
					*tm = tm.UTC()
				}
			}
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Checkpoints written by earlier builds (JSON, format 1; binary format 2, written by the build
// before this one mid-episode) are still restored, and the binary checkpoint (format 3) of the
// restored vehicle decodes to the same state and restores to itself; every checkpoint of a
// vehicle mid-episode does too.
func TestCheckpointFormats(t *testing.T) {
	c := loadTestCity(t)
	var fromJSON [][]byte
	file, err := os.Open("testdata/checkpoints.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(file)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fromJSON = append(fromJSON, []byte(sc.Text()))
	}
	file.Close()
	v2, err := os.ReadFile("testdata/checkpoints_v2.hex")
	if err != nil {
		t.Fatal(err)
	}
	var fromV2 [][]byte
	for _, line := range strings.Fields(string(v2)) {
		b, err := hex.DecodeString(line)
		if err != nil || b[0] != binaryCheckpointV2 {
			t.Fatalf("testdata/checkpoints_v2.hex: %q is not a format-2 checkpoint (%v)", line, err)
		}
		fromV2 = append(fromV2, b)
	}
	// a vehicle mid-episode, with an open alert (speeding in the 30 zone, off its route)
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var live [][]byte
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for sec := 0; sec <= 60; sec += 10 {
		ll := c.Proj.Inverse([2]float64{2100 + float64(sec)*10, 150})
		f := record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 45, HasSpeed: true,
			Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: 1}}}
		eng.ProcessFix(&f)
		eng.Dirty(nil, func(_ string, _ record.Shard, cp []byte) { live = append(live, cp) })
	}
	if !strings.Contains(string(live[len(live)-1]), "speeding") {
		t.Fatal("the last checkpoint holds no speeding episode")
	}
	restored := 0
	for i, cp := range slices.Concat(fromJSON, fromV2, live) {
		a, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Restore(cp, nil); err != nil {
			continue // the corpus holds broken checkpoints too
		}
		for id, tr := range a.tracks {
			restored++
			bin := a.checkpoint(tr)
			if bin[0] != binaryCheckpoint {
				t.Fatalf("checkpoint %d: written in format %d, want %d", i, bin[0], binaryCheckpoint)
			}
			if len(bin) >= len(cp) && cp[0] == '{' {
				t.Errorf("checkpoint %d: binary %d bytes, JSON %d", i, len(bin), len(cp))
			}
			s, err := decodeBinaryCheckpoint(bin)
			if err != nil {
				t.Fatalf("checkpoint %d: %v", i, err)
			}
			b, err := NewEngine(Config{}, c, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Restore(bin, nil); err != nil {
				t.Fatalf("checkpoint %d: the binary checkpoint does not restore: %v", i, err)
			}
			if again := b.checkpoint(b.tracks[id]); string(again) != string(bin) {
				t.Errorf("checkpoint %d: binary round trip differs", i)
			}
			if cp[0] == binaryCheckpointV2 {
				old, err := decodeBinaryCheckpoint(cp)
				if err != nil {
					t.Fatalf("checkpoint %d: %v", i, err)
				}
				if normalized(t, old) != normalized(t, s) {
					t.Errorf("checkpoint %d: format 2 decodes to %s\nformat 3 to %s", i, normalized(t, old), normalized(t, s))
				}
			}
			if cp[0] == '{' {
				var js TrackState
				if err := json.Unmarshal(cp, &js); err != nil {
					t.Fatal(err)
				}
				// what Restore keeps of the JSON: the episodes of rules this engine has
				js.Episodes = slices.DeleteFunc(js.Episodes, func(es episodeState) bool { _, ok := a.slot[es.Rule]; return !ok })
				s2, err := decodeBinaryCheckpoint(a.checkpoint(tr))
				if err != nil {
					t.Fatal(err)
				}
				if len(s2.Episodes) != len(js.Episodes) || s2.VehicleID != js.VehicleID || s2.Last.TimeMs != ms(fromMs(js.Last.TimeMs)) || s2.Topic != js.Topic || s2.Partition != js.Partition {
					t.Errorf("checkpoint %d: JSON %s\nbinary decodes to %s", i, normalized(t, js), normalized(t, s))
				}
			}
		}
	}
	if restored < len(live)+len(fromV2)+2 {
		t.Fatalf("only %d checkpoints restored", restored)
	}
}

// Every truncation of a binary checkpoint, and trailing bytes after one, is an error that says
// where, never a panic or a half-restored vehicle.
func TestBinaryCheckpointDamaged(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	var cp []byte
	for sec := 0; sec <= 60; sec += 10 {
		ll := c.Proj.Inverse([2]float64{2100 + float64(sec)*10, 150})
		f := record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 45, HasSpeed: true}
		eng.ProcessFix(&f)
		eng.Dirty(nil, func(_ string, _ record.Shard, b []byte) { cp = b })
	}
	for _, tc := range []struct {
		name string
		cp   []byte
		want string
	}{
		{"trailing bytes", append(append([]byte{}, cp...), 0, 0), "bytes after its end"},
		{"only the format byte", cp[:1], "vehicle id at byte 1"},
		{"cut in the last fix", cp[:40], "ends early"},
		{"cut in the episodes", cp[:len(cp)-7], "at byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEngine(Config{}, c, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = e.Restore(tc.cp, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if len(e.tracks) != 0 {
				t.Fatal("a damaged checkpoint restored a vehicle")
			}
		})
	}
	for n := range len(cp) {
		e, _ := NewEngine(Config{}, c, nil, nil)
		if err := e.Restore(cp[:n], nil); err == nil {
			t.Fatalf("the first %d of %d bytes restored", n, len(cp))
		}
	}
}
