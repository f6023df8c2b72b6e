package pipeline

import (
	"net"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/sim"
)

// TestBrokerRestart stops the Kafka broker under a running pipeline and starts it again on the same
// address and log: the consumer keeps retrying, reconnects, resumes from the committed offsets, and
// every fix is stored once.
func TestBrokerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dataDir := t.TempDir()
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	bk, _, err := broker.Start(broker.Options{Listen: addr, Partitions: 4, Topics: cfg.Topics(), DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	env := startEnv(t, func(c *Config) {
		c.Kafka.Brokers, c.Outputs.Brokers = []string{addr}, []string{addr}
		c.API.Listen = ""
	})
	c := env.started.Engine.City()
	start, err := sim.PastStart(time.Now(), "07:00", time.Hour, c.Location)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(c, sim.Options{Seed: 4, Start: start, Duration: time.Hour, Interval: 10 * time.Second, Vehicles: 60, ViolationRate: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	msgs, res := simMessages(t, s, env.cfg)
	half := len(msgs) / 2
	produce(t, addr, msgs[:half]...)
	stored := func() uint64 { return env.count("SELECT uniqExact(fix_id) FROM positions") }
	env.waitFor("the first half stored", time.Minute, func() bool { return stored() >= uint64(res.Fixes/3) })

	bk.Close()
	time.Sleep(3 * time.Second) // the broker is down this long
	bk, _, err = broker.Start(broker.Options{Listen: addr, Partitions: 4, Topics: cfg.Topics(), DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	produce(t, addr, msgs[half:]...)
	env.waitFor("every fix stored after the broker restart", 2*time.Minute, func() bool { return stored() >= uint64(res.Fixes) })
	if n := env.count("SELECT count() FROM positions FINAL"); n != uint64(res.Fixes) {
		t.Errorf("positions FINAL: %d rows for %d fixes", n, res.Fixes)
	}
	retries := scrape(t, env.started.MetricsURL, "muckwatch_consumer_fetch_errors_total")
	t.Logf("%d fixes stored once across a broker restart; %g fetches retried while it was down", res.Fixes, retries)
}
