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
