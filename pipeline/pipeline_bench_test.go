package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/sim"
)

// BenchmarkPipeline measures the whole pipeline: b.N simulated fixes (300 trucks reporting every
// second, with their events) are preloaded into the embedded broker, then the pipeline consumes,
// detects, writes them to the real ClickHouse, publishes alerts and commits. It reports fixes/s
// from the pipeline's start to the last fix stored. Run it with a fixed count, e.g.
//
//	go test -run '^$' -bench Pipeline -benchtime 300000x ./cmd/muckwatch
func BenchmarkPipeline(b *testing.B) {
	if b.N < 10000 {
		return // the probing run with b.N = 1; the measured run needs -benchtime of at least 10000x
	}
	ctx := context.Background()
	cfg, err := LoadConfig("")
	if err != nil {
		b.Fatal(err)
	}
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: 8, Topics: cfg.Topics()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bk.Close) // after the pipeline has stopped (cleanups run last in, first out)
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		b.Fatal(err)
	}
	const trucks = 300
	s, err := sim.New(c, sim.Options{Seed: 3, Start: time.Now().Add(-48 * time.Hour).Truncate(time.Second),
		Duration: time.Duration(b.N/trucks) * time.Second, Interval: time.Second, Vehicles: trucks, Unregistered: -1})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Kafka.Brokers = []string{addr}
	em := sim.NewKafkaEmitter(ctx, []string{addr}, cfg.Kafka.Topics)
	res, err := s.Run(em)
	if err == nil {
		err = em.Flush()
	}
	em.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	env := startEnv(b, func(c *Config) {
		c.Kafka.Brokers = []string{addr}
		c.Outputs.Brokers = []string{addr}
	})
	for env.count("SELECT count() FROM positions") < uint64(res.Fixes) {
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(res.Fixes)/elapsed.Seconds(), "fixes/s")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d fixes and %d events through the pipeline into ClickHouse in %s", res.Fixes, res.Events, elapsed.Round(time.Millisecond))
}
