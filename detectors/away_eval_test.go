package detectors

import (
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/sim"
)

// TestAccuracyAway scores every rule on the street's GPS with 10 % of the licensed trips leaving
// the city's map on a long haul of 50–300 km (sim.Options.AwayRate): off their route, speeding
// out there, stopping at another city's site, their trips running out of time. Speed and distance
// are the ground's out there, so the rules the hauls bring in (route_deviation, dwell,
// trip_unclosed, speeding) hold precision and recall ≥ 0.98 at 5 s without a reported speed and
// at 30 s with one, but speeding without reported speed (the street's known shortfall,
// TestAccuracyStreet), and every other rule at least awayFloor: a different day's traffic, with
// the street's shortfalls (zone borders at 30 s, a trip deadline in the run's last minute).
const awayFloor = 0.95

func TestAccuracyAway(t *testing.T) {
	c, err := city.Load("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		interval time.Duration
		speed    bool
	}{
		{5 * time.Second, false},
		{30 * time.Second, true},
	} {
		name := tc.interval.String() + "/without_speed"
		if tc.speed {
			name = tc.interval.String() + "/with_speed"
		}
		t.Run(name, func(t *testing.T) {
			o := sim.Street(seed(), start, 8*time.Hour, tc.interval, vehicles(), tc.speed)
			o.AwayRate = 0.1
			scores := evalEngine(t, c, o)
			held := map[string]bool{"route_deviation": true, "dwell": true, "trip_unclosed": tc.interval < 30*time.Second, "speeding": tc.speed}
			for _, s := range scores {
				floor := awayFloor
				if held[s.Rule] {
					floor = 0.98
				}
				if s.Precision < floor || s.Recall < floor || s.Split*50 > s.Episodes {
					t.Errorf("%s: precision %.3f recall %.3f (floor %.2f) median delay %s (TP %d FP %d FN %d, %d of %d episodes split)",
						s.Rule, s.Precision, s.Recall, floor, s.DelayMedian, s.TP, s.FP, s.FN, s.Split, s.Episodes)
				}
			}
		})
	}
}
