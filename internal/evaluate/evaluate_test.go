package evaluate

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/watchdog"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
)

// TestEvaluate runs a smaller simulated day with realistic noise through the embedded broker, the
// real pipeline and ClickHouse, and holds every rule to precision and recall of at least 0.98, a
// median detection delay of at most two reporting intervals, and one alert per episode (at most
// 2 % of episodes split into several alerts).
func TestEvaluate(t *testing.T) {
	watchdog.Start(t, 10*time.Minute, nil)
	cfg, err := pipeline.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: 4, Topics: cfg.Topics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bk.Close)
	cfg.City = "../../configs/cities/shenzhen"
	cfg.CityReloadInterval = 0
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{addr}, []string{addr}
	cfg.ClickHouse.Addr = []string{chServer.TCPAddr}
	cfg.ClickHouse.Database = fmt.Sprintf("mw_eval_%d", os.Getpid())
	cfg.Metrics.Listen, cfg.API.Listen = "", ""
	cfg.Log.Level = "warn"
	c, err := pipeline.LoadCity(cfg.City)
	if err != nil {
		t.Fatal(err)
	}
	interval := 30 * time.Second
	start, err := sim.PastStart(time.Now(), "06:00", 6*time.Hour, c.Location)
	if err != nil {
		t.Fatal(err)
	}
	o := sim.Noisy(11, start, 6*time.Hour, interval, 150)
	r, err := runDay(context.Background(), c, o, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		printResult(os.Stdout, r, o)
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

// TestModes: the street, no-speed and away flags give the simulated day they name.
func TestModes(t *testing.T) {
	start := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	f := func(o Options, interval time.Duration, spread time.Duration, noSpeed bool, snaps bool, away float64) {
		t.Helper()
		so := o.simOptions(start, interval)
		if so.Interval != interval || so.IntervalSpread != spread || so.NoSpeed != noSpeed || (so.SnapRate > 0) != snaps || (so.ParkedJitterRate > 0) != snaps || so.AwayRate != away {
			t.Errorf("%+v at %s: interval %s+%s, no speed %v, snaps %g, jitter %g, away %g", o, interval, so.Interval, so.IntervalSpread, so.NoSpeed, so.SnapRate, so.ParkedJitterRate, so.AwayRate)
		}
	}
	f(Options{}, 30*time.Second, 0, false, false, 0)
	f(Options{NoSpeed: true}, 10*time.Second, 0, true, false, 0)
	f(Options{Street: true}, time.Second, 4*time.Second, false, true, 0)
	f(Options{Street: true, NoSpeed: true}, 5*time.Second, 0, true, true, 0)
	f(Options{Street: true, NoSpeed: true, Away: 0.1}, 30*time.Second, 0, true, true, 0.1)
}
