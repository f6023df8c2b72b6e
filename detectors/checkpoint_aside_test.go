package detectors

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
		if tr.held != nil || !tr.last.time().Equal(fixes[len(fixes)-1].Time) {
			t.Errorf("%s: held %v, last fix at %s", name, tr.held, tr.last.time())
		}
		if !tr.motion.hasBefore || !tr.motion.before.time().Equal(fixes[len(fixes)-2].Time) {
			t.Errorf("%s: the fix before the last is %v, want the one at %s: the snap was judged", name, tr.motion.before, fixes[len(fixes)-2].Time)
		}
	}
	if a, b := ran.checkpoint(ran.tracks["粤B00001"]), restarted.checkpoint(restarted.tracks["粤B00001"]); string(a) != string(b) {
		t.Errorf("the restarted engine ends in another state than the one that ran on:\n%x\n%x", a, b)
	}
}

// streetJourney is a truck without a reported speed, reporting every 1–2 s with 8 m of noise:
// through the 30 km/h school zone at 54 km/h (speeding, derived over the window), a 20 s loss of
// the fix ending in a 200 m snap, then stopped outside every site for 12 minutes, its receiver
// jittering 30–45 m off now and then (dwell), and driving off.
func streetJourney(c *city.City) []record.Fix {
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(20, 5))
	var fixes []record.Fix
	at := time.Duration(0)
	add := func(x, y float64) {
		ll := c.Proj.Inverse([2]float64{x + rng.NormFloat64()*8, y + rng.NormFloat64()*8})
		fixes = append(fixes, record.Fix{VehicleID: "粤B00001", Time: start.Add(at), Lat: ll[1], Lon: ll[0],
			Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: 1}}})
	}
	step := func() { at += time.Second + time.Duration(rng.IntN(2))*time.Second }
	for x := 1000.0; x < 3400; x += 15 * float64(step2(&at, rng)) {
		add(x, 0)
	}
	at += 20 * time.Second // a loss of the fix
	add(3700, 200)         // the snap
	for x := 3720.0; x < 4700; x += 10 * float64(step2(&at, rng)) {
		add(x, 0)
	}
	for stop := at + 12*time.Minute; at < stop; step() {
		if rng.IntN(40) == 0 {
			add(4700+30+rng.Float64()*15, 0) // jitter
			continue
		}
		add(4700, 0)
	}
	for x := 4700.0; x < 5600; x += 10 * float64(step2(&at, rng)) {
		add(x, 0)
	}
	return fixes
}

// step2 moves at on by 1 or 2 s and returns how many seconds.
func step2(at *time.Duration, rng *rand.Rand) int {
	s := 1 + rng.IntN(2)
	*at += time.Duration(s) * time.Second
	return s
}

// A restart after any fix of a street journey carries on exactly as the engine that ran on: the
// same changes (ids, versions, values, times). The kinematics' memory is in the checkpoint
// (format 5): the speed window's recent fixes (without them a speeding episode pending across the
// restart is dropped for want of a speed, and one opens later under another id), the track's
// stay, and dwell's stop whole (without its fix set aside, a jitter fix after the restart moves
// the stop and restarts its clock).
func TestCheckpointKeepsKinematics(t *testing.T) {
	c := loadTestCity(t)
	fixes := streetJourney(c)
	newEngine := func() *Engine {
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	render := func(chs []Change) []string {
		var out []string
		for _, ch := range chs {
			a := ch.Alert
			out = append(out, fmt.Sprintf("%s %s v%d %s %s start %s end %s value %.3f updated %s", ch.Kind, a.Rule, a.Version, a.ID, a.Severity,
				a.Start.Format(time.TimeOnly), a.End.Format(time.TimeOnly), a.Value, a.Updated.Format(time.TimeOnly)))
		}
		return out
	}
	ran := newEngine()
	var want []Change
	for i := range fixes {
		ran.Reset()
		ran.ProcessFix(&fixes[i])
		want = append(want, ran.Changes()...)
	}
	for _, r := range []Rule{RuleSpeeding, RuleDwell} {
		if !slices.ContainsFunc(want, func(ch Change) bool { return ch.Alert.Rule == r && ch.Kind == ChangeOpened }) {
			t.Fatalf("the journey raised no %s alert: the test does not cover it (%v)", r, render(want))
		}
	}
	// restarted after every fix: checkpointed, and restored into a new engine that reads on
	eng := newEngine()
	var got []Change
	for i := range fixes {
		eng.Reset()
		eng.ProcessFix(&fixes[i])
		got = append(got, eng.Changes()...)
		var cp []byte
		eng.Dirty(nil, func(_ string, _ record.Shard, b []byte) { cp = slices.Clone(b) })
		next := newEngine()
		if err := next.Restore(cp, nil); err != nil {
			t.Fatalf("after fix %d: %v", i, err)
		}
		if a, b := string(cp), string(next.checkpoint(next.tracks["粤B00001"])); a != b {
			t.Fatalf("after fix %d the restored state checkpoints differently:\n%x\n%x", i, a, b)
		}
		eng = next
	}
	if g, w := render(got), render(want); !slices.Equal(g, w) {
		t.Errorf("restarted after every fix:\n%s\nran on:\n%s", strings.Join(g, "\n"), strings.Join(w, "\n"))
	}
}
