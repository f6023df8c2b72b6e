package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/sim"
)

// outageLength is how long ClickHouse is down: 15 s in `make test`, 60 s in `make chaos`
// (MUCKWATCH_OUTAGE=60s).
func outageLength() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MUCKWATCH_OUTAGE")); err == nil {
		return d
	}
	return 15 * time.Second
}

// scrape reads one sample (name with its labels, as exposed) from a /metrics page.
func scrape(t *testing.T, url, sample string) float64 {
	t.Helper()
	vs, err := metricSamples(url, sample+" ")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		return 0
	}
	return vs[0]
}

// metricSamples fetches a /metrics page and returns the values of the samples whose line starts
// with prefix (a name and a space, or a name and "{" for every label set).
func metricSamples(url, prefix string) ([]float64, error) {
	resp, err := testHTTP.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out []float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics %s: %q: %w", url, line, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// TestClickHouseOutage stops ClickHouse while traffic flows and starts it again: the pipeline
// holds back (nothing committed, memory bounded, the outage visible in its metrics), retries, and
// catches up with every fix stored once.
func TestClickHouseOutage(t *testing.T) {
	srv, err := chlocal.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Destroy() }) // after the pipeline has stopped
	env := startEnv(t, func(c *Config) {
		c.ClickHouse.Addr = []string{srv.TCPAddr}
		c.API.Listen = ""
		c.Metrics.ReadyzHolding = 5 * time.Second
	})
	readyz, healthz := probeURL(env.started.MetricsURL, "/readyz"), probeURL(env.started.MetricsURL, "/healthz")
	env.waitFor("ready before the outage", time.Minute, func() bool {
		code, _ := probe(t, readyz)
		return code == 200
	})
	c := env.started.Engine.City()
	start, err := sim.PastStart(time.Now(), "07:00", time.Hour, c.Location)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(c, sim.Options{Seed: 9, Start: start, Duration: time.Hour, Interval: 10 * time.Second, Vehicles: 100, ViolationRate: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	msgs, res := simMessages(t, s, env.cfg)
	outage := outageLength()
	// a steady stream over about twice the outage
	produced := make(chan error, 1)
	go func() {
		w := &kafka.Writer{Addr: kafka.TCP(env.broker), Balancer: &kafka.Hash{}, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll, BatchBytes: 4 << 20}
		defer w.Close()
		chunk := max(1, len(msgs)/int(2*outage/(50*time.Millisecond)))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(msgs); i += chunk {
			<-tick.C
			if err := w.WriteMessages(context.Background(), msgs[i:min(i+chunk, len(msgs))]...); err != nil {
				produced <- err
				return
			}
		}
		produced <- nil
	}()
	stored := func() uint64 { return env.count("SELECT uniqExact(fix_id) FROM positions") }
	env.waitFor("a tenth of the stream stored", time.Minute, func() bool { return stored() >= uint64(res.Fixes/10) })

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	commits := scrape(t, env.started.MetricsURL, "muckwatch_consumer_commits_total")
	// the live heap (after a collection, so that garbage of earlier tests in this process does
	// not count), sampled while the outage lasts
	var peak uint64
	const heapBound = 512 << 20
	var heapProfile string // written the first time the live heap is over heapBound
	// the probes during the outage: not ready (ClickHouse does not answer; and holding back once
	// that has lasted metrics.readyz_holding), alive all along (a restart would not help)
	var unready, unreadyHolding, unalive int
	for time.Since(down) < outage {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		if ms.HeapAlloc > heapBound && heapProfile == "" {
			heapProfile = writeHeapProfile(t)
		}
		code, body := probe(t, readyz)
		if code == 503 && strings.Contains(body, "ClickHouse does not answer") {
			unready++
			if strings.Contains(body, "holding back for") {
				unreadyHolding++
			}
		}
		if code, body := probe(t, healthz); code != 200 {
			unalive++
			t.Logf("/healthz during the outage: %d %q", code, body)
		}
		time.Sleep(500 * time.Millisecond) // the outage lasts; this samples it
	}
	if code, body := probe(t, readyz); code != 503 || !strings.Contains(body, "holding back for") {
		t.Errorf("/readyz at the end of the outage: %d %q, want 503 holding back", code, body)
	}
	t.Logf("probes during the outage: %d not ready (%d of them holding back), %d not alive", unready, unreadyHolding, unalive)
	if unready == 0 || unreadyHolding == 0 || unalive > 0 {
		t.Errorf("probes during the outage: %d times not ready for ClickHouse, %d of them holding back, %d times not alive; want some, some, none", unready, unreadyHolding, unalive)
	}
	holding := scrape(t, env.started.MetricsURL, "muckwatch_pipeline_holding")
	failures := scrape(t, env.started.MetricsURL, "muckwatch_pipeline_write_failures_total")
	commitsDuring := scrape(t, env.started.MetricsURL, "muckwatch_consumer_commits_total") - commits
	if _, err := chlocal.StartIn(srv.Dir); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	t.Logf("ClickHouse down %s: holding=%g, %g failed writes retried, %g commits during the outage (at most the one in flight), peak live heap %d MiB",
		time.Since(down).Round(time.Second), holding, failures, commitsDuring, peak>>20)
	if holding != 1 || failures < 1 {
		t.Errorf("the outage is not visible: muckwatch_pipeline_holding %g, write failures %g", holding, failures)
	}
	if commitsDuring > 1 {
		t.Errorf("%g offset commits while ClickHouse was down", commitsDuring)
	}
	if peak > heapBound {
		t.Errorf("heap grew to %d MiB while holding back; its profile then: %s", peak>>20, heapProfile)
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	env.waitFor("every fix stored after the outage", 3*time.Minute, func() bool { return stored() >= uint64(res.Fixes) })
	if n := env.count("SELECT count() FROM positions FINAL"); n != uint64(res.Fixes) {
		t.Errorf("positions FINAL: %d rows for %d fixes", n, res.Fixes)
	}
	env.waitFor("the pipeline no longer holding", time.Minute, func() bool {
		return scrape(t, env.started.MetricsURL, "muckwatch_pipeline_holding") == 0
	})
	env.waitFor("ready again after the outage", time.Minute, func() bool {
		code, _ := probe(t, readyz)
		return code == 200
	})
	t.Logf("ready again %s after ClickHouse was started", time.Since(up).Round(100*time.Millisecond))
	if code, body := probe(t, healthz); code != 200 {
		t.Errorf("/healthz after the outage: %d %q", code, body)
	}
}

// simMessages runs simulator s and returns its records as Kafka messages for cfg's topics, to be
// produced at the pace a fault test needs.
func simMessages(t *testing.T, s *sim.Simulator, cfg Config) ([]kafka.Message, sim.Result) {
	t.Helper()
	topics := map[string]string{"gps": cfg.Kafka.Topics.GPS, "events": cfg.Kafka.Topics.Events, "officers": cfg.Kafka.Topics.Officers}
	var msgs []kafka.Message
	res, err := s.Run(sim.EmitterFunc(func(r sim.Record) error {
		msgs = append(msgs, kafka.Message{Topic: topics[r.Topic], Key: []byte(r.Key), Value: r.Value})
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return msgs, res
}

// writeHeapProfile writes the process's heap profile to a file that outlives the test (a heap
// that grows once in many runs is to be read afterwards) and returns its path, or why not.
func writeHeapProfile(t *testing.T) string {
	f, err := os.CreateTemp("", "muckwatch-"+t.Name()+"-heap-*.pprof")
	if err != nil {
		return fmt.Sprintf("not written: %v", err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Sprintf("not written: %v", err)
	}
	return f.Name()
}
