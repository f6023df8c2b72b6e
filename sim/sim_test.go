package sim

import (
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
)

func loadSample(t testing.TB) *city.City {
	t.Helper()
	c, err := city.Load("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func run(t *testing.T, c *city.City, o Options) (Result, [32]byte, []Record) {
	t.Helper()
	s, err := New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	var recs []Record
	res, err := s.Run(EmitterFunc(func(r Record) error {
		h.Write([]byte(r.Topic + r.Key))
		h.Write(r.Value)
		recs = append(recs, r)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return res, sum, recs
}

func TestDeterministic(t *testing.T) {
	c := loadSample(t)
	o := Options{Seed: 5, Start: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC), Duration: 30 * time.Minute, Vehicles: 40}
	r1, h1, _ := run(t, c, o)
	r2, h2, _ := run(t, c, o)
	if h1 != h2 || len(r1.Truth) != len(r2.Truth) {
		t.Fatal("the same seed gave different traffic")
	}
	o.Seed = 6
	if _, h3, _ := run(t, c, o); h3 == h1 {
		t.Fatal("a different seed gave the same traffic")
	}
}

// The records are wire-valid, in time order per vehicle, and every kind of violation is injected
// in a few simulated hours.
func TestRecordsAndTruth(t *testing.T) {
	c := loadSample(t)
	start := time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC)
	res, _, recs := run(t, c, Options{Seed: 9, Start: start, Duration: 3 * time.Hour, Vehicles: 100, Unregistered: 2, Officers: 2, ViolationRate: 0.5})
	last := map[string]time.Time{}
	for _, r := range recs {
		if !json.Valid(r.Value) {
			t.Fatalf("not JSON: %s", r.Value)
		}
		if r.Topic == "gps" {
			if r.Time.Before(last[r.Key]) {
				t.Fatalf("fixes of %s out of order at %s", r.Key, r.Time)
			}
			last[r.Key] = r.Time
		}
	}
	if res.Fixes < 100*3*360*9/10 {
		t.Errorf("only %d fixes for 100 trucks over 3 h at 10 s", res.Fixes)
	}
	seen := map[string]int{}
	for _, ep := range res.Truth {
		seen[ep.Rule]++
		if ep.End.Before(ep.Start) {
			t.Errorf("episode ends before it starts: %+v", ep)
		}
	}
	for _, rule := range []string{"route_deviation", "speeding", "restricted_zone", "overload", "dwell", "unlicensed", "cover_open", "spillage", "site_exit_risk"} {
		if seen[rule] == 0 {
			t.Errorf("no %s episode in 3 simulated hours: %v", rule, seen)
		}
	}
}

func BenchmarkSimulate(b *testing.B) {
	c := loadSample(b)
	s, err := New(c, Options{Seed: 1, Start: time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC), Duration: 1000 * time.Hour, Interval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	stop := errStop{}
	b.ReportAllocs()
	_, err = s.Run(EmitterFunc(func(r Record) error {
		if r.Topic == "gps" {
			n++
			if n >= b.N {
				return stop
			}
		}
		return nil
	}))
	if err != stop {
		b.Fatal(err)
	}
}

type errStop struct{}

func (errStop) Error() string { return "stop" }
