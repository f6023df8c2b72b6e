package detectors

import (
	"math"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/sim"
)

// speedValued are the rules whose alert's value is a speed in km/h.
var speedValued = map[Rule]bool{RuleSpeeding: true, RuleUnlicensed: true, RuleRestrictedZone: true}

// checkPlausible fails the test for an alert change that says what cannot be: a speed above the
// engine's physical maximum (max_speed_kmh) or not a number, or a speeding alert opened on less
// than its rule's hold (10 s and two fixes: never one pair of fixes).
func checkPlausible(t *testing.T, eng *Engine, ch Change) {
	t.Helper()
	a := &ch.Alert
	if speedValued[a.Rule] && (math.IsNaN(a.Value) || a.Value < 0 || a.Value > eng.cfg.MaxSpeedKmh) {
		t.Errorf("%s %s alert %s of %s at %s says %.1f km/h, beyond the physical maximum of %.0f km/h",
			ch.Kind, a.Rule, a.ID, a.VehicleID, a.Updated.Format(time.TimeOnly), a.Value, eng.cfg.MaxSpeedKmh)
	}
	if a.Rule == RuleSpeeding && ch.Kind == ChangeOpened && a.Updated.Sub(a.Start) < eng.fixes[eng.slot[RuleSpeeding]].timing.For {
		t.Errorf("%s speeding alert %s of %s opened %s after its start, under the rule's hold", a.Severity, a.ID, a.VehicleID, a.Updated.Sub(a.Start))
	}
}

// TestNoImpossibleSpeed drives the engine with the simulator's street modes, the feeds that
// fooled derived speeds on real traces (no reported speed, 1–5 s reporting, re-acquisition snaps
// after losses of the fix, parked jitter, 1 % jumps of 0.3–3 km, trucks 50–300 km off the map,
// and the snaps, jitter and jumps five to ten times as often), and holds every alert change to
// checkPlausible: no speed above the physical maximum of 150 km/h, no speeding alert from one
// pair of fixes.
func TestNoImpossibleSpeed(t *testing.T) {
	c, err := city.Load("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC) // 08:00 in the city
	for _, tc := range []struct {
		name     string
		interval time.Duration
		speed    bool
		away     float64
		harsh    bool // snaps and jumps ten times as often, parked jitter five times
	}{
		{"1-5s/without_speed", time.Second, false, 0, false},
		{"1-5s/with_speed", time.Second, true, 0, false},
		{"5s/without_speed/away", 5 * time.Second, false, 0.3, false},
		{"30s/without_speed/harsh", 30 * time.Second, false, 0, true},
		{"1-5s/without_speed/harsh", time.Second, false, 0, true},
		{"5s/without_speed/harsh/away", 5 * time.Second, false, 0.3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := sim.Street(7, start, 2*time.Hour, tc.interval, 50, tc.speed)
			o.AwayRate, o.ViolationRate = tc.away, 0.8
			if tc.harsh {
				o.SnapRate, o.ParkedJitterRate, o.JumpRate = 10*o.SnapRate, 5*o.ParkedJitterRate, 10*o.JumpRate
			}
			speeding, fastest := 0, 0.0
			replayEngine(t, c, o, func(eng *Engine, ch Change) {
				if eng.cfg.MaxSpeedKmh != 150 {
					t.Fatalf("the engine's physical maximum is %g km/h, the README says 150", eng.cfg.MaxSpeedKmh)
				}
				checkPlausible(t, eng, ch)
				if ch.Alert.Rule == RuleSpeeding && ch.Kind == ChangeOpened {
					speeding++
				}
				if speedValued[ch.Alert.Rule] {
					fastest = max(fastest, ch.Alert.Value)
				}
			})
			t.Logf("%d speeding alerts; the highest speed an alert said: %.1f km/h", speeding, fastest)
			if speeding == 0 {
				t.Error("the day raised no speeding alert: the test does not cover derived speeds")
			}
		})
	}
}
