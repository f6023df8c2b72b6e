package main

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestEvaluate runs a smaller simulated day with realistic noise through the embedded broker, the
// real pipeline and ClickHouse, and holds every rule to precision and recall of at least 0.98, a
// median detection delay of at most two reporting intervals, and one alert per episode (at most
// 2 % of episodes split into several alerts).
func TestEvaluate(t *testing.T) {
	env := startEnv(t, nil)
	c := env.started.engine.City()
	interval := 30 * time.Second
	start, err := evalStart(time.Now(), "06:00", 6*time.Hour, c.Location)
	if err != nil {
		t.Fatal(err)
	}
	o := evalOptions(11, start, 6*time.Hour, interval, 150)
	written := func() time.Time { read, _ := eventTimes(env.started.metrics); return read }
	r, err := runEvaluation(context.Background(), c, o, env.broker, env.cfg, env.conn, written)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		printEvaluation(os.Stdout, r, o)
	}
	for _, s := range r.scores {
		if s.Precision < 0.98 || s.Recall < 0.98 || s.DelayMedian > 2*interval || s.Split*50 > s.Episodes {
			t.Errorf("%s: precision %.3f recall %.3f median delay %s (TP %d FP %d FN %d, %d of %d episodes split)",
				s.Rule, s.Precision, s.Recall, s.DelayMedian, s.TP, s.FP, s.FN, s.Split, s.Episodes)
		}
	}
	rules := map[string]bool{}
	for _, s := range r.scores {
		rules[s.Rule] = s.Episodes > 0
	}
	for _, want := range []string{"route_deviation", "speeding", "restricted_zone", "overload", "dwell", "unlicensed",
		"cover_open", "spillage", "signal_lost", "site_exit_risk", "trip_unclosed"} {
		if !rules[want] {
			t.Errorf("the evaluation day has no %s episode", want)
		}
	}
}

func TestEvalStart(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  string // UTC
		hhmm string
		d    time.Duration
		want string // Shanghai
	}{
		{"2026-11-23T09:00:00Z", "06:00", 6 * time.Hour, "2026-11-23T06:00:00+08:00"}, // 17:00 local: today's 06:00–12:00 is past
		{"2026-11-23T03:00:00Z", "06:00", 6 * time.Hour, "2026-11-22T06:00:00+08:00"}, // 11:00 local: yesterday's
		{"2026-11-23T03:00:00Z", "06:00", 24 * time.Hour, "2026-11-22T06:00:00+08:00"},
		{"2026-11-23T16:30:00Z", "22:00", 2 * time.Hour, "2026-11-22T22:00:00+08:00"}, // 00:30 local: 22:00–00:00 is not an hour past
	}
	for _, tc := range tests {
		now, _ := time.Parse(time.RFC3339, tc.now)
		got, err := evalStart(now, tc.hhmm, tc.d, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := time.Parse(time.RFC3339, tc.want); !got.Equal(want) || got.Add(tc.d).After(now) {
			t.Errorf("evalStart(%s, %s, %s) = %s, want %s", tc.now, tc.hhmm, tc.d, got, tc.want)
		}
	}
	if _, err := evalStart(time.Now(), "6am", time.Hour, shanghai); err == nil {
		t.Error("a malformed time of day is accepted")
	}
}
