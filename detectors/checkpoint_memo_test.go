package detectors

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// Checkpoints written by the build before the rules kept memos of their own (format 3, a stop, a
// trip under way, sightings and a decision waiting for the watermark in every episode's generic
// fields) restore to memos of every kind, which this build checkpoints again without loss, and a
// fleet restored from them at any point of the journey carries on: every change it gives is for
// an alert it opened or restored open.
//
// What the fixture can no longer prove is that the restored fleet carries on exactly as this
// build would without a restart: the rules it was written under judged stops by speed, started a
// trip at the first fix outside the site and stamped the time-driven decisions with the tick's
// event time; this build judges stops by displacement over time, starts a trip once the truck is
// clearly out and stamps decisions with the time they fell due, so the earlier build's states are
// not states this build reaches on the same records. That continuity is held for this build's own
// checkpoints by TestCheckpointRestore.
func TestCheckpointMemosFromEarlierBuild(t *testing.T) {
	c := loadTestCity(t)
	journey := memoJourney(c)
	newEngine := func() *Engine {
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	earlier := readJourneyCheckpoints(t, "testdata/checkpoints_v3_journey.txt", len(journey))
	var stops, lifted, trips, sightings, waiting, continued int
	for k := range journey {
		restored := newEngine()
		for _, cp := range earlier[k] {
			if err := restored.Restore(cp, nil); err != nil {
				t.Fatalf("after record %d: %v", k, err)
			}
		}
		restored.Resume(record.Shard{}) // the journey's one input is read again at once
		open := map[string]bool{}
		for v, tr := range restored.tracks {
			// what was restored checkpoints again as it was restored
			cp := restored.checkpoint(tr)
			again := newEngine()
			if err := again.Restore(cp, nil); err != nil {
				t.Fatalf("after record %d: %s: restoring this build's checkpoint of the restored state: %v", k, v, err)
			}
			if got := again.checkpoint(again.tracks[v]); string(got) != string(cp) {
				t.Errorf("after record %d: %s restored from the earlier build checkpoints to\n%x\nand restored from that to\n%x", k, v, cp, got)
			}
			for _, ep := range tr.episodes {
				if ep != nil && ep.alert != nil {
					open[ep.alert.ID] = true
				}
				switch m := episodeMemo(ep).(type) {
				case *dwellStop:
					stops++
					lifted += btoi(m.lifted)
				case *tripLog:
					trips += btoi(m.underway)
					sightings += len(m.seen)
					waiting += len(m.waiting)
				}
			}
		}
		for j := k + 1; j < len(journey); j++ {
			restored.Reset()
			journey[j].process(restored)
			for _, ch := range restored.Changes() {
				switch {
				case ch.Kind == ChangeOpened:
					open[ch.Alert.ID] = true
				case !open[ch.Alert.ID]:
					t.Errorf("restored after record %d, record %d: %s %s v%d of an alert neither restored open nor opened since", k, j, ch.Kind, ch.Alert.ID, ch.Alert.Version)
				case ch.Kind == ChangeResolved:
					delete(open, ch.Alert.ID)
				}
				continued++
			}
		}
	}
	if stops == 0 || lifted == 0 || trips == 0 || sightings == 0 || waiting == 0 || continued == 0 {
		t.Errorf("the journey's checkpoints restored %d stops (%d with the body raised), %d trips under way, %d sightings, %d waiting decisions, and gave %d changes after; want some of each",
			stops, lifted, trips, sightings, waiting, continued)
	}
}

func episodeMemo(ep *Episode) memo {
	if ep == nil {
		return nil
	}
	return ep.memo
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readJourneyCheckpoints reads lines "INDEX HEX" and returns, for each record of the journey, the
// newest checkpoint of every vehicle after it (the compacted state topic then).
func readJourneyCheckpoints(t testing.TB, path string, records int) [][][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byRecord := make([][][]byte, records)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		index, hx, _ := strings.Cut(line, " ")
		k, err := strconv.Atoi(index)
		cp, err2 := hex.DecodeString(hx)
		if err != nil || err2 != nil || k >= records {
			t.Fatalf("%s: bad line %q", path, line)
		}
		byRecord[k] = append(byRecord[k], cp)
	}
	latest := map[string][]byte{}
	out := make([][][]byte, records)
	for k, cps := range byRecord {
		for _, cp := range cps {
			s, err := decodeBinaryCheckpoint(cp)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			latest[s.VehicleID] = cp
		}
		for _, cp := range latest {
			out[k] = append(out[k], cp)
		}
	}
	return out
}

// memoJourney is two trucks' records in time order: 粤B00001 on trips out of C1
// (one unclosed, one closed by a disposal gate camera's sighting read ahead of its fixes), 粤B00002
// stopping outside any site (a dwell) and raising its dump body there (dumping). Their
// checkpoints along the way hold every memo a rule keeps: a trip under way, sightings, a decision
// waiting for the watermark, a stop, a raised body.
func memoJourney(c *city.City) []journeyRecord {
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	var out []journeyRecord
	fix := func(plate string, sec int, x, y, kmh float64, lifted bool) {
		ll := c.Proj.Inverse([2]float64{x, y})
		out = append(out, journeyRecord{fix: &record.Fix{VehicleID: plate, Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0],
			SpeedKmh: float32(kmh), HasSpeed: true, Lifted: lifted}})
	}
	tick := func() { out[len(out)-1].tick = true }
	drive := func(plate string, from, to, step int, x0, x1, kmh float64) {
		for sec := from; sec <= to; sec += step {
			fix(plate, sec, x0+(x1-x0)*float64(sec-from)/float64(max(to-from, 1)), 0, kmh, false)
		}
	}
	const a, b = "粤B00001", "粤B00002"
	fix(a, 0, -100, 0, 0, false)
	drive(a, 60, 600, 60, 200, 3000, 20)
	drive(a, 660, 1200, 60, 2800, 200, 20)
	fix(a, 1260, -100, 0, 5, false) // back at C1: unclosed, decided at the watermark
	fix(a, 1320, -120, 0, 0, false)
	tick()
	out = append(out, journeyRecord{event: &record.Event{EventID: "g1", VehicleID: a, Time: start.Add(2400 * time.Second), Kind: record.KindGateEntry,
		SiteID: "D1", Source: "cam-d1", Confidence: 1}}) // read ahead of the fixes
	drive(a, 1380, 2580, 60, 200, 10100, 30)
	fix(a, 2640, -100, 0, 0, false) // back at C1 after the sighting: closed
	drive(b, 0, 20, 10, 4400, 4600, 30)
	for sec := 30; sec <= 900; sec += 30 {
		fix(b, sec, 4700+float64(sec%60)/6, float64(sec%90)/9, 0, false)
	}
	fix(b, 930, 4900, 0, 25, false)
	fix(b, 1000, 5000, 0, 0, false)
	fix(b, 1030, 5002, 1, 0, true)
	fix(b, 1060, 5001, 0, 0, true)
	fix(b, 1090, 5100, 0, 20, false) // and silent from then on
	slices.SortStableFunc(out, func(x, y journeyRecord) int { return x.time().Compare(y.time()) })
	tick()
	return out
}

// journeyRecord is a fix or an event, and whether the time-driven rules tick after it (at the
// watermark of the records read so far: the journey's time, its records being in time order).
type journeyRecord struct {
	fix   *record.Fix
	event *record.Event
	tick  bool
}

func (r journeyRecord) time() time.Time {
	if r.fix != nil {
		return r.fix.Time
	}
	return r.event.Time
}

// process runs eng over the record and returns the checkpoints it gave.
func (r journeyRecord) process(eng *Engine) map[string][]byte {
	if r.fix != nil {
		f := *r.fix
		eng.ProcessFix(&f)
	} else {
		ev := *r.event
		eng.ProcessEvent(&ev)
	}
	if r.tick {
		tickTo(eng, r.time())
	}
	cps := map[string][]byte{}
	eng.Dirty(nil, func(v string, _ record.Shard, cp []byte) { cps[v] = slices.Clone(cp) })
	return cps
}

// Checkpoints written in format 5 (by the build before positions were written as distances,
// testdata/checkpoints_v5_journey.txt, along memoJourney) restore to the state format 6 writes
// and reads back bit for bit, in fewer bytes, and a fleet restored from them after any record
// carries on exactly as the uninterrupted run: the same changes of the same alerts.
func TestCheckpointFormat5StillRead(t *testing.T) {
	c := loadTestCity(t)
	journey := memoJourney(c)
	newEngine := func() *Engine {
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	summary := func(chs []Change) []string {
		var out []string
		for _, ch := range chs {
			a := ch.Alert
			out = append(out, fmt.Sprintf("%s %s v%d %s %s %d %d %.6f", ch.Kind, a.ID, a.Version, a.Status, a.Severity, a.Start.UnixNano(), a.End.UnixNano(), a.Value))
		}
		return out
	}
	// the uninterrupted run's changes after each record
	whole := newEngine()
	after := make([][]string, len(journey))
	for k := range journey {
		whole.Reset()
		journey[k].process(whole)
		after[k] = summary(whole.Changes())
	}
	v5 := readJourneyCheckpoints(t, "testdata/checkpoints_v5_journey.txt", len(journey))
	var bytes5, bytes6 int
	for k := range journey {
		restored := newEngine()
		for _, cp := range v5[k] {
			if cp[0] != binaryCheckpointV5 {
				t.Fatalf("the fixture's checkpoint is in format %d, not 5", cp[0])
			}
			if err := restored.Restore(cp, nil); err != nil {
				t.Fatalf("after record %d: %v", k, err)
			}
			s5, err := decodeBinaryCheckpoint(cp)
			if err != nil {
				t.Fatal(err)
			}
			cp6 := restored.checkpoint(restored.tracks[s5.VehicleID])
			s6, err := decodeBinaryCheckpoint(cp6)
			if err != nil {
				t.Fatalf("after record %d: this build's checkpoint of the restored state: %v", k, err)
			}
			if cp6[0] != binaryCheckpoint || !reflect.DeepEqual(s5, s6) {
				t.Fatalf("after record %d: %s decodes from format 5 to\n%+v\nand from format %d to\n%+v", k, s5.VehicleID, s5, cp6[0], s6)
			}
			bytes5, bytes6 = bytes5+len(cp), bytes6+len(cp6)
		}
		restored.Resume(record.Shard{})
		var got, want []string
		for j := k + 1; j < len(journey); j++ {
			restored.Reset()
			journey[j].process(restored)
			got = append(got, summary(restored.Changes())...)
			want = append(want, after[j]...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("restored from format 5 after record %d, the rest of the journey gave\n%s\nwant\n%s", k, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	if bytes6 >= bytes5 {
		t.Errorf("the journey's checkpoints are %d bytes in format 6, %d in format 5: not fewer", bytes6, bytes5)
	}
	t.Logf("the journey's checkpoints: %d bytes in format 5, %d in format 6", bytes5, bytes6)
}
