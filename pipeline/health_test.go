package pipeline

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type fakePing struct{ err error }

func (f *fakePing) Ping(context.Context) error { return f.err }

// TestHealthProbes drives the health checks through the states of an instance's life on a fake
// clock and reads both probes as an orchestrator does.
func TestHealthProbes(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	type state struct {
		step      string
		restoring bool
		joinedAt  time.Duration // since t0; the loop turned then (restore done)
		turnedAt  time.Duration // since t0; the last batch or idle tick
		holding   time.Duration // since t0 the pipeline holds back; < 0: not holding
		chDown    bool
		noCH      bool // ClickHouse not opened yet
	}
	running := state{joinedAt: 0, turnedAt: 0, holding: -1}
	f := func(name string, s state, at time.Duration, wantLive, wantReady int, wantLiveBody, wantReadyBody string) {
		t.Helper()
		now := t0
		h := newHealth(MetricsConfig{HealthzStall: time.Minute, ReadyzHolding: 30 * time.Second}, func() time.Time { return now }, slog.New(slog.DiscardHandler))
		h.setStep(stepJoin)
		if !s.noCH {
			ping := &fakePing{}
			if s.chDown {
				ping.err = errors.New("dial tcp 10.0.0.7:9000: connection refused")
			}
			h.setClickHouse(ping)
		}
		if s.step != stepJoin {
			now = t0.Add(s.joinedAt)
			h.setRestoring(true, false)
			h.setRestoring(false, true)
			now = t0.Add(s.turnedAt)
			h.turn()
		}
		if s.holding >= 0 {
			now = t0.Add(s.holding)
			h.setHolding(true)
		}
		h.setStep(s.step)
		if s.restoring {
			h.setRestoring(true, false)
		}
		now = t0.Add(at)
		for _, probe := range []struct {
			path     string
			serve    http.HandlerFunc
			code     int
			contains string
		}{{"/healthz", h.serveLive, wantLive, wantLiveBody}, {"/readyz", h.serveReady, wantReady, wantReadyBody}} {
			rec := httptest.NewRecorder()
			probe.serve(rec, httptest.NewRequest(http.MethodGet, probe.path, nil))
			body := rec.Body.String()
			if rec.Code != probe.code || !strings.Contains(body, probe.contains) {
				t.Errorf("%s: %s answered %d %q, want %d containing %q", name, probe.path, rec.Code, body, probe.code, probe.contains)
			}
			if strings.Contains(body, "10.0.0.7") || strings.Contains(body, "refused") {
				t.Errorf("%s: %s shows internals: %q", name, probe.path, body)
			}
		}
	}
	f("joining", state{step: stepJoin, holding: -1}, 10*time.Minute, 200, 503, "ok", "starting: joining the consumer group")
	f("migrating", state{step: stepSchema, noCH: true, holding: -1}, 0, 200, 503, "ok", "starting: connecting to ClickHouse")
	f("consuming", running, 30*time.Second, 200, 200, "ok", "ready")
	f("idle ticks stopped", running, 61*time.Second, 503, 200, "no batch and no idle tick for 1m1s", "ready")
	f("restoring a partition taken over", state{restoring: true, holding: -1}, 10*time.Minute, 200, 503, "ok", "restoring the detector state")
	f("holding briefly", state{turnedAt: 0, holding: 50 * time.Second}, 70*time.Second, 200, 200, "ok", "ready")
	f("holding long", state{turnedAt: 0, holding: 10 * time.Second}, 5*time.Minute, 200, 503, "ok", "holding back for 4m50s")
	f("ClickHouse down", state{holding: -1, chDown: true}, time.Second, 200, 503, "ok", "ClickHouse does not answer")
	f("stopping", state{step: stepStopping, holding: -1}, 10*time.Minute, 200, 503, "ok", "stopping")
	both := state{holding: 0, chDown: true}
	f("holding for ClickHouse", both, time.Minute, 200, 503, "ok", "holding back for 1m0s: writes to ClickHouse or Kafka keep failing\nClickHouse does not answer")
}

// TestHealthAfterHolding: once the pipeline stops holding back, the consumer's loop is given a
// fresh stall period (it was waiting for the sink, not stuck).
func TestHealthAfterHolding(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	h := newHealth(MetricsConfig{HealthzStall: time.Minute}, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	h.setStep(stepJoin)
	h.setRestoring(true, false)
	h.setRestoring(false, true)
	reg := prometheus.NewRegistry()
	p := newStages(StagesConfig{}, nil, nil, nil, slog.New(slog.DiscardHandler), nil)
	p.health = h
	reg.MustRegister(p.metrics.holding)
	now = now.Add(time.Second)
	p.hold(true)
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 1 || mfs[0].GetMetric()[0].GetGauge().GetValue() != 1 {
		t.Fatalf("muckwatch_pipeline_holding through hold: %v %v, want 1", mfs, err)
	}
	now = now.Add(10 * time.Minute)
	if why := h.live(); why != nil {
		t.Errorf("not alive while holding back: %q", why)
	}
	p.hold(false)
	now = now.Add(59 * time.Second)
	if why := h.live(); why != nil {
		t.Errorf("not alive 59 s after holding ended: %q", why)
	}
	now = now.Add(2 * time.Second)
	if why := h.live(); len(why) != 1 {
		t.Errorf("alive 61 s after holding ended with no turn of the loop: %q", why)
	}
}

// probe GETs a probe URL and returns its status code and body.
func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := testHTTP.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// probeURL is the URL of a probe beside a pipeline's /metrics.
func probeURL(metricsURL, path string) string {
	return strings.TrimSuffix(metricsURL, "/metrics") + path
}
