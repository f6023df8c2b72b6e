package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health answers an orchestrator's probes on the metrics listener.
//
// /healthz (liveness) fails only when restarting the process could help: the consumer's loop has
// stopped turning (no batch and no idle tick for metrics.healthz_stall) while nothing explains it.
// Starting up, restoring detector state and holding back for a failing sink explain it: a restart
// would not make ClickHouse answer.
//
// /readyz (readiness) fails while the instance cannot do its work: while it starts (city, schema,
// consumer group), restores the detector state of partitions taken over, has held back for a
// failing sink for longer than metrics.readyz_holding, or cannot reach ClickHouse, and once it
// stops.
//
// Both bodies are plain text for a person: "ok" / "ready", or one line per reason, never an
// address or an error's internals (those are in the log).
type health struct {
	now          func() time.Time
	stallAfter   time.Duration
	holdingLimit time.Duration
	pingTimeout  time.Duration
	log          *slog.Logger

	mu           sync.Mutex
	step         string // the start-up step under way, "" once consuming, "stopping" at the end
	clickhouse   interface{ Ping(context.Context) error }
	joined       bool      // a generation's detector state has been restored
	restoring    bool      // a generation's detector state is being restored
	turned       time.Time // when the consumer's loop last turned (batch, idle tick, restore done)
	holdingSince time.Time // zero unless the pipeline holds back for a failing sink
	unreachable  bool      // the last ping of ClickHouse failed (logged once per outage)
}

// Start-up steps, as /readyz names them.
const (
	stepCity     = "loading the city"
	stepSchema   = "connecting to ClickHouse and migrating its schema"
	stepJoin     = "joining the consumer group"
	stepStopping = "stopping"
)

func newHealth(cfg MetricsConfig, now func() time.Time, log *slog.Logger) *health {
	cfg = cfg.withDefaults()
	return &health{now: now, stallAfter: cfg.HealthzStall, holdingLimit: cfg.ReadyzHolding, pingTimeout: 2 * time.Second,
		log: log, step: stepCity}
}

func (h *health) setStep(step string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.step = step
}

// setClickHouse gives the readiness check the ClickHouse to ping.
func (h *health) setClickHouse(c interface{ Ping(context.Context) error }) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clickhouse = c
}

// turn records that the consumer's loop turned.
func (h *health) turn() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.turned = h.now()
}

func (h *health) setRestoring(restoring, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.restoring = restoring
	if !restoring {
		h.turned = h.now()
		if ok {
			h.joined = true
			if h.step == stepJoin {
				h.step = ""
			}
		}
	}
}

func (h *health) setHolding(holding bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case holding && h.holdingSince.IsZero():
		h.holdingSince = h.now()
	case !holding && !h.holdingSince.IsZero():
		h.holdingSince = time.Time{}
		h.turned = h.now() // the loop was waiting for the sink; it turns again from now
	}
}

// live reports what keeps the process from being alive: nothing, or the stall.
func (h *health) live() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.step != "" || h.restoring || !h.holdingSince.IsZero() {
		return nil
	}
	if idle := h.now().Sub(h.turned); idle > h.stallAfter {
		return []string{fmt.Sprintf("the consumer has handled no batch and no idle tick for %s", idle.Round(time.Second))}
	}
	return nil
}

// ready reports what keeps the instance from being ready, one reason a line; none when ready.
func (h *health) ready(ctx context.Context) []string {
	h.mu.Lock()
	var why []string
	if h.step != "" {
		why = append(why, "starting: "+h.step)
		if h.step == stepStopping {
			why[0] = "stopping"
		}
	}
	if h.restoring {
		why = append(why, "restoring the detector state of the partitions taken over")
	}
	if !h.holdingSince.IsZero() {
		if held := h.now().Sub(h.holdingSince); held > h.holdingLimit {
			why = append(why, fmt.Sprintf("holding back for %s: writes to ClickHouse or Kafka keep failing", held.Round(time.Second)))
		}
	}
	ch := h.clickhouse
	h.mu.Unlock()
	if ch == nil {
		return why
	}
	pctx, cancel := context.WithTimeout(ctx, h.pingTimeout)
	defer cancel()
	err := ch.Ping(pctx)
	h.mu.Lock()
	was := h.unreachable
	h.unreachable = err != nil
	h.mu.Unlock()
	if err != nil {
		why = append(why, "ClickHouse does not answer")
		if !was {
			h.log.Warn("readiness: ClickHouse does not answer a ping", "err", err)
		}
	} else if was {
		h.log.Info("readiness: ClickHouse answers again")
	}
	return why
}

func (h *health) serveLive(w http.ResponseWriter, _ *http.Request) {
	answer(w, h.live(), "ok")
}

func (h *health) serveReady(w http.ResponseWriter, r *http.Request) {
	answer(w, h.ready(r.Context()), "ready")
}

// answer writes 200 and ok when there is no reason, else 503 and the reasons, one a line.
func answer(w http.ResponseWriter, why []string, ok string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(why) == 0 {
		fmt.Fprintln(w, ok)
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintln(w, strings.Join(why, "\n"))
}

// metricsServer serves /metrics, /healthz and /readyz on the metrics listener.
type metricsServer struct {
	URL    string // the /metrics URL
	srv    *http.Server
	failed chan error // the server's failure, if it fails
}

func serveMetrics(listen string, reg *prometheus.Registry, h *health) (*metricsServer, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("cannot listen for metrics on %s: %w", listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", h.serveLive)
	mux.HandleFunc("GET /readyz", h.serveReady)
	m := &metricsServer{URL: "http://" + ln.Addr().String() + "/metrics",
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		failed: make(chan error, 1)}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.failed <- fmt.Errorf("metrics server: %w", err)
		}
	}()
	return m, nil
}

// Close stops the server, letting requests under way finish for a few seconds.
func (m *metricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.srv.Shutdown(ctx)
}
