package pipeline

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/sim"
)

// BenchmarkVehicleLookup measures the squads' lookup (GET /api/v1/vehicles/{plate}) at 200
// concurrent clients against a running pipeline holding an hour of the sample city, and reports
// the latency percentiles:
//
//	go test -run '^$' -bench VehicleLookup -benchtime 20000x ./cmd/muckwatch
func BenchmarkVehicleLookup(b *testing.B) {
	tokens := map[api.Role]string{}
	tok, entry, err := api.NewToken(api.RoleSquad, "bench-squad")
	if err != nil {
		b.Fatal(err)
	}
	tokens[api.RoleSquad] = tok
	b.Setenv("MUCKWATCH_API_TOKENS", entry)
	env := startEnv(b, func(c *Config) { c.API.RatePerSecond, c.API.Burst = 1e6, 1e6 })
	c := env.started.Engine.City()
	s, err := sim.New(c, sim.Options{Seed: 3, Start: time.Now().Add(-2 * time.Hour), Duration: time.Hour, Interval: 30 * time.Second,
		ViolationRate: 0.5, Officers: 5})
	if err != nil {
		b.Fatal(err)
	}
	em := sim.NewKafkaEmitter(context.Background(), []string{env.broker}, env.cfg.Kafka.Topics)
	res, err := s.Run(em)
	if err == nil {
		err = em.Flush()
	}
	em.Close()
	if err != nil {
		b.Fatal(err)
	}
	env.waitFor("the simulated hour stored", 5*time.Minute, func() bool {
		return env.count("SELECT count() FROM positions") >= uint64(res.Fixes)
	})
	plates := make([]string, 0, len(c.Vehicles)+1)
	for _, v := range c.Vehicles {
		plates = append(plates, url.PathEscape(v.Plate))
	}
	plates = append(plates, url.PathEscape("粤B00000X")) // an unknown plate now and then
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	const concurrency = 200
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					return
				}
				req, _ := http.NewRequest("GET", env.started.APIURL+"/api/v1/vehicles/"+plates[i%len(plates)], nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = resp.Body.Read(make([]byte, 64<<10))
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode != 200 && resp.StatusCode != 404 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d lookups failed", n, b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}
