package detectors

import (
	"bufio"
	"encoding/hex"
	"maps"
	"os"
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
// fields) restore to the same memos: a fleet restored from them at any point of a journey carries
// on as if there had been no restart, and this build checkpoints it as it checkpoints its own.
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
	// the journey without a restart: the changes of each record, this build's checkpoints
	eng := newEngine()
	want := make([][]Change, len(journey))
	own := make([]map[string][]byte, len(journey)) // the newest checkpoint of every vehicle after each record
	latest := map[string][]byte{}
	for k, r := range journey {
		eng.Reset()
		for v, cp := range r.process(eng) {
			latest[v] = cp
		}
		want[k] = slices.Clone(eng.Changes())
		own[k] = maps.Clone(latest)
	}
	earlier := readJourneyCheckpoints(t, "testdata/checkpoints_v3_journey.txt", len(journey))
	// From the journey's first tick on, the earlier build's checkpoints hold decisions of the
	// time-driven rules stamped with the event time of the tick that took them; this build
	// stamps them with the time they fell due (the same whatever the inputs' progress), so their
	// alerts differ from this build's own; what is restored is still carried on alike.
	decided := slices.IndexFunc(journey, func(r journeyRecord) bool { return r.tick })
	var stops, lifted, trips, sightings, waiting int
	for k := range journey {
		restored := newEngine()
		for _, cp := range earlier[k] {
			if err := restored.Restore(cp, nil); err != nil {
				t.Fatalf("after record %d: %v", k, err)
			}
		}
		restored.Resume(record.Shard{}) // the journey's one input is read again at once
		for v, tr := range restored.tracks {
			if got := restored.checkpoint(tr); k < decided && string(got) != string(own[k][v]) {
				t.Errorf("after record %d: %s restored from the earlier build's checkpoint checkpoints to\n%x\nits own state to\n%x", k, v, got, own[k][v])
			}
			for _, ep := range tr.episodes {
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
		var got, rest []Change
		for j := k + 1; j < len(journey); j++ {
			restored.Reset()
			journey[j].process(restored)
			got = append(got, restored.Changes()...)
			rest = append(rest, want[j]...)
		}
		if len(got) != len(rest) {
			t.Fatalf("restored after record %d: %s\nwithout a restart: %s", k, kinds(got), kinds(rest))
		}
		for i, w := range rest {
			g := got[i]
			if g.Kind != w.Kind || g.Alert.ID != w.Alert.ID || g.Alert.Version != w.Alert.Version || g.Alert.Severity != w.Alert.Severity ||
				!g.Alert.End.Equal(w.Alert.End) || !g.Alert.Updated.Equal(w.Alert.Updated) || g.Alert.Value != w.Alert.Value {
				t.Errorf("restored after record %d, change %d: %s %s v%d, without a restart %s %s v%d", k, i, g.Kind, g.Alert.ID, g.Alert.Version, w.Kind, w.Alert.ID, w.Alert.Version)
			}
		}
	}
	if stops == 0 || lifted == 0 || trips == 0 || sightings == 0 || waiting == 0 {
		t.Errorf("the journey's checkpoints restored %d stops (%d with the body raised), %d trips under way, %d sightings, %d waiting decisions; want some of each",
			stops, lifted, trips, sightings, waiting)
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
