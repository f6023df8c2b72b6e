package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/sim"
)

// lagSum sums muckwatch_consumer_lag over every partition.
func lagSum(t *testing.T, url string) float64 {
	t.Helper()
	vs, err := metricSamples(url, "muckwatch_consumer_lag{")
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	return sum
}

// TestBacklog starts the pipeline on a backlog of ten minutes of the whole city at 1 s reporting:
// the lag falls to zero, and the time-driven rules judge event time, not arrival time, so working
// off the backlog raises no signal_lost without a silent truck behind it.
func TestBacklog(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: 4, Topics: cfg.Topics()})
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	start, err := sim.PastStart(time.Now(), "07:00", 10*time.Minute, c.Location)
	if err != nil {
		t.Fatal(err)
	}
	o := sim.Noisy(6, start, 10*time.Minute, time.Second, 0)
	s, err := sim.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	em := sim.NewKafkaEmitter(context.Background(), []string{addr}, cfg.Kafka.Topics)
	res, err := s.Run(em)
	if err == nil {
		err = em.Flush()
	}
	em.Close()
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, func(rc *Config) {
		rc.Kafka.Brokers, rc.Outputs.Brokers = []string{addr}, []string{addr}
		rc.API.Listen = ""
	})
	var lags []float64
	stored := func() uint64 { return env.count("SELECT uniqExact(fix_id) FROM positions") }
	env.waitFor("the backlog worked off", 3*time.Minute, func() bool {
		lags = append(lags, lagSum(t, env.started.MetricsURL))
		return stored() >= uint64(res.Fixes)
	})
	env.waitFor("lag zero", 30*time.Second, func() bool { return lagSum(t, env.started.MetricsURL) == 0 })
	peak := 0.0
	for _, l := range lags {
		peak = max(peak, l)
	}
	t.Logf("%d fixes of 10 minutes of the city worked off; lag samples (100 ms apart) peaked at %.0f and fell to 0: %v", res.Fixes, peak, lags[:min(len(lags), 12)])
	if peak == 0 {
		t.Error("the lag metric never showed the backlog")
	}
	dets, err := sim.ReadDetections(context.Background(), env.conn, env.cfg.ClickHouse.Database)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range sim.Score(res.Truth, dets, 2*time.Second+5*time.Second) {
		if sc.Rule == "signal_lost" && sc.FP > 0 {
			t.Errorf("working off a backlog raised %d signal_lost alerts without a silent truck", sc.FP)
		}
	}
}
