// Package api is muckwatch's HTTP API for the people it serves: inspection squads look up a
// vehicle's risk on their handhelds, supervisors follow and handle the live alert feed and
// dispatch officers, analysts query the history in ClickHouse.
//
// Every endpoint but /api/v1/openapi.json and /healthz needs a bearer token whose role may use it
// (squad, supervisor, analyst, admin); tokens are configured hashed, from the environment.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/detectors"
)

// CitySource gives the reference data in force (it changes on reload).
type CitySource interface {
	City() *city.City
}

// RiskSource gives a vehicle's live risk score.
type RiskSource interface {
	Risk(vehicle string) (detectors.Risk, bool)
}

// Announcer publishes the API's own alert changes (handling, overdue) beside the detectors' on
// the alerts topic.
type Announcer interface {
	Announce(ctx context.Context, items []FeedItem) error
}

// Server serves the API.
type Server struct {
	cfg      Config
	log      *slog.Logger
	tokens   *Tokens
	limit    *limiter
	live     *Live
	store    *Store
	city     CitySource
	risk     RiskSource
	announce Announcer
	hook     *Webhook
	console  http.Handler // the browser console, served outside /api/ (SetConsole)
	metrics  *serverMetrics
	mux      *http.ServeMux
	now      func() time.Time
	// routes lists every route with the roles that may use it, for the OpenAPI check.
	routes []route
}

type route struct {
	method, path string
	roles        []Role // empty: public
}

// NewServer returns a server over live state and ClickHouse history. Tokens are read from the
// environment variable cfg.TokensEnv. announce may be nil.
func NewServer(cfg Config, live *Live, store *Store, cs CitySource, risk RiskSource, announce Announcer, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tokens, err := ParseTokens(os.Getenv(cfg.TokensEnv), "$"+cfg.TokensEnv)
	if err != nil {
		return nil, err
	}
	if tokens.Len() == 0 {
		log.Warn("no API tokens configured: every request but /api/v1/openapi.json will be refused", "env", cfg.TokensEnv)
	}
	s := &Server{cfg: cfg, log: log, tokens: tokens, limit: newLimiter(cfg.RatePerSecond, cfg.Burst), live: live, store: store,
		city: cs, risk: risk, announce: announce, metrics: newServerMetrics(reg), mux: http.NewServeMux(), now: time.Now}
	if cfg.Webhook.URL != "" {
		secret := os.Getenv(cfg.Webhook.SecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("api.webhook: environment variable %s (the signing secret) is not set", cfg.Webhook.SecretEnv)
		}
		s.hook = NewWebhook(cfg.Webhook, secret, log, reg)
	}
	s.routes = []route{
		{"GET", "/api/v1/openapi.json", nil},
		{"GET", "/healthz", nil},
		{"GET", "/api/v1/vehicles/near", []Role{RoleSquad, RoleSupervisor}},
		{"GET", "/api/v1/vehicles/{plate}", []Role{RoleSquad, RoleSupervisor, RoleAnalyst}},
		{"GET", "/api/v1/vehicles/{plate}/track", []Role{RoleSupervisor, RoleAnalyst}},
		{"GET", "/api/v1/alerts", []Role{RoleSupervisor}},
		{"GET", "/api/v1/alerts/stream", []Role{RoleSupervisor}},
		{"GET", "/api/v1/alerts/{id}", []Role{RoleSupervisor}},
		{"POST", "/api/v1/alerts/{id}/actions", []Role{RoleSupervisor}},
		{"GET", "/api/v1/violations", []Role{RoleAnalyst, RoleSupervisor}},
		{"GET", "/api/v1/heatmap", []Role{RoleAnalyst, RoleSupervisor}},
	}
	handlers := map[string]http.HandlerFunc{
		"/api/v1/openapi.json":           s.handleOpenAPI,
		"/healthz":                       func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") },
		"/api/v1/vehicles/near":          s.handleNear,
		"/api/v1/vehicles/{plate}":       s.handleVehicle,
		"/api/v1/vehicles/{plate}/track": s.handleTrack,
		"/api/v1/alerts":                 s.handleAlerts,
		"/api/v1/alerts/stream":          s.handleStream,
		"/api/v1/alerts/{id}":            s.handleAlert,
		"/api/v1/alerts/{id}/actions":    s.handleAction,
		"/api/v1/violations":             s.handleViolations,
		"/api/v1/heatmap":                s.handleHeatmap,
	}
	consoleRoutes, consoleHandlers := s.consoleRoutes()
	s.routes = append(s.routes, consoleRoutes...)
	maps.Copy(handlers, consoleHandlers)
	for _, rt := range s.routes {
		h := handlers[rt.path]
		if h == nil {
			return nil, fmt.Errorf("api: no handler for %s %s", rt.method, rt.path)
		}
		s.mux.Handle(rt.method+" "+rt.path, s.guard(rt, h))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if s.console != nil && !strings.HasPrefix(r.URL.Path, "/api/") {
			s.console.ServeHTTP(w, r)
			return
		}
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s (see /api/v1/openapi.json)", r.Method, r.URL.Path))
	})
	return s, nil
}

// Handler is the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves on ln until ctx is cancelled, with TLS when a certificate is configured, and runs
// the overdue checks, the journal writer and the webhook.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.cfg.TLSCertFile != "" {
			err = srv.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); s.background(bg) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // SSE streams end with ctx
	stopBG()
	<-done
	if err != nil {
		return fmt.Errorf("api server: %w", err)
	}
	return nil
}

// background checks overdue alerts, journals the feed to ClickHouse and feeds the webhook, until
// ctx is cancelled; a last journal flush follows.
func (s *Server) background(ctx context.Context) {
	var hookDone chan struct{}
	if s.hook != nil {
		hookDone = make(chan struct{})
		go func() { defer close(hookDone); s.hook.Run(ctx) }()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.flushJournal(context.Background())
			if s.store != nil {
				_ = s.store.FlushAudit(context.Background())
			}
			if hookDone != nil {
				<-hookDone
			}
			return
		case <-tick.C:
		}
		if over := s.live.CheckOverdue(); len(over) > 0 && s.announce != nil {
			if err := s.announce.Announce(ctx, over); err != nil {
				s.log.Warn("cannot announce overdue alerts on the alerts topic", "alerts", len(over), "err", err)
			}
		}
		s.flushJournal(ctx)
		if s.store != nil {
			if err := s.store.FlushAudit(ctx); err != nil {
				s.log.Warn("cannot write the API audit log; kept for the next attempt", "err", err)
			}
		}
	}
}

func (s *Server) flushJournal(ctx context.Context) {
	items := s.live.takeJournal()
	if len(items) == 0 {
		return
	}
	if s.hook != nil {
		s.hook.Enqueue(items)
	}
	if s.store == nil {
		return
	}
	if err := s.store.WriteFeed(ctx, items); err != nil {
		s.metrics.journalErrors.Inc()
		s.log.Warn("cannot journal the alert feed; SSE clients resuming from before the in-memory buffer may miss these", "items", len(items), "err", err)
	}
}

type ctxKey struct{}

// principal returns who the request is from (set by guard).
func principal(r *http.Request) Principal {
	p, _ := r.Context().Value(ctxKey{}).(Principal)
	return p
}

// guard authenticates, authorises, rate-limits and bounds a request before h.
func (s *Server) guard(rt route, h http.HandlerFunc) http.Handler {
	pattern := rt.method + " " + rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			s.metrics.requests.WithLabelValues(pattern, strconv.Itoa(rec.status)).Inc()
			s.metrics.seconds.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		r.Body = http.MaxBytesReader(rec, r.Body, s.cfg.MaxBodyBytes)
		if rt.roles == nil {
			h(rec, r)
			return
		}
		token, ok := bearer(r)
		if !ok {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="muckwatch"`)
			writeError(rec, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer TOKEN")
			return
		}
		p, ok := s.tokens.Lookup(token)
		if !ok {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="muckwatch", error="invalid_token"`)
			writeError(rec, http.StatusUnauthorized, "unknown or revoked token")
			return
		}
		if p.Role != RoleAdmin && !slices.Contains(rt.roles, p.Role) {
			writeError(rec, http.StatusForbidden, fmt.Sprintf("role %s may not use %s %s (allowed: %s)", p.Role, rt.method, rt.path, rolesList(rt.roles)))
			return
		}
		if ok, wait := s.limit.allow(p.Name); !ok {
			rec.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(rec, http.StatusTooManyRequests, fmt.Sprintf("rate limit of %g requests/s for %s exceeded; retry in %s", s.cfg.RatePerSecond, p.Name, wait.Round(time.Millisecond)))
			return
		}
		h(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, p)))
	})
}

func rolesList(roles []Role) string {
	parts := make([]string, 0, len(roles)+1)
	for _, r := range roles {
		parts = append(parts, string(r))
	}
	return strings.Join(append(parts, string(RoleAdmin)), ", ")
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets SSE through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// errorBody is every error answer.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Status: status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

type serverMetrics struct {
	requests      *prometheus.CounterVec
	seconds       *prometheus.HistogramVec
	journalErrors prometheus.Counter
	auditDropped  prometheus.Counter
	sseClients    prometheus.Gauge
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_api_requests_total",
			Help: "API requests by route and status."}, []string{"route", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "muckwatch_api_request_seconds",
			Help: "API request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		journalErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_api_feed_journal_errors_total",
			Help: "Failed writes of the alert feed journal to ClickHouse."}),
		auditDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_api_audit_errors_total",
			Help: "Audit records that could not be written to ClickHouse."}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_api_sse_clients",
			Help: "Connected alert-stream clients."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds, m.journalErrors, m.auditDropped, m.sseClients)
	}
	return m
}
