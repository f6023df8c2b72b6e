package sim

import (
	"testing"
	"time"
)

func TestScore(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	truth := []Episode{
		{Rule: "speeding", VehicleID: "A", Start: at(0), End: at(5)},   // alerted once, 1 min late
		{Rule: "speeding", VehicleID: "A", Start: at(20), End: at(30)}, // alerted twice: split
		{Rule: "speeding", VehicleID: "B", Start: at(0), End: at(5)},   // missed
		{Rule: "dwell", VehicleID: "A", Start: at(0), End: at(60)},     // alerted by an alert still open
	}
	dets := []Detection{
		{Rule: "speeding", VehicleID: "A", Start: at(0), End: at(4), Opened: at(1)},
		{Rule: "speeding", VehicleID: "A", Start: at(20), End: at(24), Opened: at(21)},
		{Rule: "speeding", VehicleID: "A", Start: at(26), End: at(30), Opened: at(27)},
		{Rule: "speeding", VehicleID: "A", Start: at(45), End: at(46), Opened: at(45)}, // no truth
		{Rule: "speeding", VehicleID: "C", Start: at(0), End: at(5), Opened: at(0)},    // other truck
		{Rule: "dwell", VehicleID: "A", Start: at(0), Opened: at(0)},
	}
	got := map[string]RuleScore{}
	for _, s := range Score(truth, dets, 30*time.Second) {
		got[s.Rule] = s
	}
	tests := []struct {
		rule              string
		episodes, alerts  int
		tp, fp, fn, split int
		precision, recall float64
		delayMedian       time.Duration
	}{
		{"speeding", 3, 5, 2, 2, 1, 1, 3.0 / 5, 2.0 / 3, time.Minute},
		{"dwell", 1, 1, 1, 0, 0, 0, 1, 1, 0},
	}
	for _, tc := range tests {
		s := got[tc.rule]
		if s.Episodes != tc.episodes || s.Alerts != tc.alerts || s.TP != tc.tp || s.FP != tc.fp || s.FN != tc.fn ||
			s.Split != tc.split || s.Precision != tc.precision || s.Recall != tc.recall || s.DelayMedian != tc.delayMedian {
			t.Errorf("%s: got %+v", tc.rule, s)
		}
	}
	missed, unmatched := Unmatched(truth, dets, 30*time.Second, "speeding")
	if len(missed) != 1 || missed[0].VehicleID != "B" || len(unmatched) != 2 {
		t.Errorf("Unmatched: missed %v, unmatched %v", missed, unmatched)
	}
}

// Observable leaves out only the alerts that start after the horizon and match no episode.
func TestObservable(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	r := Result{Horizon: at(600), Truth: []Episode{{Rule: "speeding", VehicleID: "A", Start: at(500), End: at(640)}}}
	f := func(d Detection, kept bool) {
		t.Helper()
		got := r.Observable([]Detection{d}, 10*time.Second)
		if (len(got) == 1) != kept {
			t.Errorf("%+v: kept %v, want %v", d, len(got) == 1, kept)
		}
	}
	f(Detection{Rule: "speeding", VehicleID: "A", Start: at(620), Opened: at(630)}, true)                // after the horizon, matching
	f(Detection{Rule: "trip_unclosed", VehicleID: "A", Start: at(620), Opened: at(620)}, false)          // after the horizon, no episode
	f(Detection{Rule: "trip_unclosed", VehicleID: "A", Start: at(590), Opened: at(590)}, true)           // before it: a false alert still
	f(Detection{Rule: "speeding", VehicleID: "B", Start: at(601), End: at(610), Opened: at(605)}, false) // another truck
	if got := (Result{}).Observable([]Detection{{Start: at(1 << 20)}}, time.Second); len(got) != 1 {
		t.Error("a result without a horizon drops alerts")
	}
}
