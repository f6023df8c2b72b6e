package detectors

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"math"
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

// TestCheckpointNearPositions: a truck's checkpoint, whatever its fixes' positions (whole
// millionths or ten-millionths of a degree as terminals send them, any float, either hemisphere,
// -0, far from the fixes before), restores to the same state and checkpoints again to the same
// bytes; positions in whole units take a fraction of the bytes of floats.
func TestCheckpointNearPositions(t *testing.T) {
	c, _ := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	size := map[string]int{}
	f := func(name string, pos func(i int) (lat, lon float64)) {
		t.Helper()
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 * motionLen {
			lat, lon := pos(i)
			eng.Reset()
			eng.ProcessFix(&record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(i)*10*time.Second + time.Duration(i%3)*time.Microsecond),
				Lat: lat, Lon: lon, SpeedKmh: 30, HasSpeed: true})
		}
		tr := eng.tracks["粤B00001"]
		if tr.motion.n < 1 {
			t.Fatalf("%s: no recent fix remembered, want some to write", name)
		}
		cp := eng.checkpoint(tr)
		again, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := again.Restore(cp, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := again.checkpoint(again.tracks["粤B00001"]); !slices.Equal(got, cp) {
			t.Errorf("%s: checkpoint\n%x\nrestored and checkpointed again\n%x", name, cp, got)
		}
		if tr.motion.ring != again.tracks["粤B00001"].motion.ring || tr.motion.before != again.tracks["粤B00001"].motion.before {
			t.Errorf("%s: the recent fixes restored differ:\n%v\n%v", name, tr.motion.ring, again.tracks["粤B00001"].motion.ring)
		}
		size[name] = len(cp)
	}
	round := func(v float64, places float64) float64 { return math.Round(v*places) / places }
	f("millionths", func(i int) (float64, float64) {
		return round(22.54+float64(i)*0.0007, 1e6), round(114.05+float64(i)*0.0009, 1e6)
	})
	f("ten-millionths", func(i int) (float64, float64) {
		return round(22.54+float64(i)*0.00071234, 1e7), round(114.05+float64(i)*0.00093217, 1e7)
	})
	f("floats", func(i int) (float64, float64) {
		return 22.54 + float64(i)*0.000712345678912, 114.05 + float64(i)*0.000932178912345
	})
	f("south and west", func(i int) (float64, float64) {
		return round(-33.86-float64(i)*0.0007, 1e6), round(-151.2-float64(i)*0.0009, 1e6)
	})
	f("-0 and far apart", func(i int) (float64, float64) {
		if i%2 == 0 {
			return math.Copysign(0, -1), round(114.05+float64(i), 1e6)
		}
		return round(60-float64(i), 1e6), round(-120+float64(i)*3, 1e6)
	})
	if size["millionths"]+100 > size["floats"] || size["ten-millionths"]+100 > size["floats"] {
		t.Errorf("checkpoint sizes %v: positions in whole units not 100 bytes fewer than floats", size)
	}
	t.Logf("checkpoint bytes by positions: %v", size)
}
