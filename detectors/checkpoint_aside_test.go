package detectors

import (
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// snapJourney is a truck at 36 km/h reporting every 2 s, silent for 20 s, whose first fix after
// the gap is a re-acquisition snap 200 m north of the road (held back), then back on the road.
func snapJourney(c *city.City) []record.Fix {
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	var fixes []record.Fix
	add := func(sec int, x, y float64) {
		ll := c.Proj.Inverse([2]float64{x, y})
		fixes = append(fixes, record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0],
			SpeedKmh: 36, HasSpeed: true, Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: 1}}})
	}
	for sec := 0; sec <= 40; sec += 2 {
		add(sec, 500+float64(sec)*10, 0)
	}
	add(60, 500+600, 200) // the snap
	add(62, 500+620, 0)
	add(64, 500+640, 0)
	return fixes
}

// A restart between a fix held back and the next one keeps the hold: the restored engine drops
// the snap when the next fix refutes it, as the engine that ran on did, and ends in the same state.
func TestCheckpointKeepsHeldFix(t *testing.T) {
	c := loadTestCity(t)
	fixes := snapJourney(c)
	held := len(fixes) - 3
	ran, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cp []byte
	for i := range fixes[:held+1] {
		ran.ProcessFix(&fixes[i])
		ran.Dirty(nil, func(_ string, _ record.Shard, b []byte) { cp = append(cp[:0], b...) })
	}
	tr := ran.tracks["粤B00001"]
	if tr.held == nil || !tr.held.fix.Time.Equal(fixes[held].Time) {
		t.Fatalf("the snap after the gap is not held back (held %v)", tr.held)
	}
	if cp[0] != binaryCheckpoint {
		t.Fatalf("checkpoint written in format %d, want %d", cp[0], binaryCheckpoint)
	}
	restarted, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := restarted.Restore(cp, nil); err != nil {
		t.Fatal(err)
	}
	if h := restarted.tracks["粤B00001"].held; h == nil || !h.fix.Time.Equal(fixes[held].Time) || h.fix.Lat != fixes[held].Lat {
		t.Fatalf("the held fix is not restored: %+v", h)
	}
	for _, eng := range []*Engine{ran, restarted} {
		for i := held + 1; i < len(fixes); i++ {
			eng.ProcessFix(&fixes[i])
		}
	}
	for name, eng := range map[string]*Engine{"ran on": ran, "restarted": restarted} {
		tr := eng.tracks["粤B00001"]
		if tr.held != nil || !tr.last.Time.Equal(fixes[len(fixes)-1].Time) {
			t.Errorf("%s: held %v, last fix at %s", name, tr.held, tr.last.Time)
		}
		if !tr.motion.hasBefore || !tr.motion.before.t.Equal(fixes[len(fixes)-2].Time) {
			t.Errorf("%s: the fix before the last is %v, want the one at %s: the snap was judged", name, tr.motion.before, fixes[len(fixes)-2].Time)
		}
	}
	if a, b := ran.checkpoint(ran.tracks["粤B00001"]), restarted.checkpoint(restarted.tracks["粤B00001"]); string(a) != string(b) {
		t.Errorf("the restarted engine ends in another state than the one that ran on:\n%x\n%x", a, b)
	}
}
