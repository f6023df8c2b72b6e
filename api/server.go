// Package api is muckwatch's HTTP API for the people it serves: inspection squads look up a
// vehicle's risk on their handhelds, supervisors follow and handle the live alert feed and
// dispatch officers, analysts query the history in ClickHouse.
//
// Every endpoint but /api/v1/openapi.json and /healthz needs a bearer token whose role may use it
// (squad, supervisor, analyst, admin); tokens are configured hashed, from the environment.
package api

import (
	"cmp"
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
	"sync"
	"sync/atomic"
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
	cfg    Config
	log    *slog.Logger
	tokens *Tokens
	limit  *limiter
	// badTokens limits the refused authentications per client address.
	badTokens *failureLimiter
	// streams counts each token's open alert streams.
	streams streamCounter
	// auditWarned is when (Unix ns) the last "audit log full" error was logged.
	auditWarned atomic.Int64
	// queries bounds the history queries running at once (a query that outlives its request's
	// timeout still holds its slot until ClickHouse answers or the driver gives up).
	queries  chan struct{}
	live     *Live
	store    *Store
	city     CitySource
	risk     RiskSource
	announce Announcer
	hook     *Webhook
	// levelHooks are the escalation levels' webhooks (distinct URLs); levelHookIdx[level] the
	// indexes of a level's (1-based) in levelHooks.
	levelHooks   []*Webhook
	levelHookIdx [][]int
	digest       *digestSchedule
	// journalPending are feed items whose journal write failed, for the next flush.
	journalPending []FeedItem
	console        http.Handler // the browser console, served outside /api/ (SetConsole)
	metrics        *serverMetrics
	mux            *http.ServeMux
	now            func() time.Time
	// routes lists every route with the roles that may use it, for the OpenAPI check.
	routes []route
}

type route struct {
	method, path string
	roles        []Role // empty: public
	// audit: every request is a vehicle lookup, written to the audit log.
	audit bool
	// params are the query parameters the route takes; any other is refused with 400.
	params []string
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
	if store != nil {
		store.auditMax = cfg.AuditQueue
	}
	s := &Server{cfg: cfg, log: log, tokens: tokens, limit: newLimiter(cfg.RatePerSecond, cfg.Burst), badTokens: newFailureLimiter(cfg.AuthFailuresPerMinute),
		streams: streamCounter{open: map[string]int{}}, queries: make(chan struct{}, cfg.MaxQueries), live: live, store: store,
		city: cs, risk: risk, announce: announce, metrics: newServerMetrics(reg), mux: http.NewServeMux(), now: time.Now,
		digest: newDigestSchedule(cfg.Digest)}
	if cfg.Webhook.URL != "" {
		secret := os.Getenv(cfg.Webhook.SecretEnv)
		if secret == "" {
			return nil, fmt.Errorf("api.webhook: environment variable %s (the signing secret) is not set", cfg.Webhook.SecretEnv)
		}
		s.hook = NewWebhook(cfg.Webhook, secret, log, reg)
	}
	if err := s.makeLevelHooks(reg); err != nil {
		return nil, err
	}
	s.routes = []route{
		{method: "GET", path: "/api/v1/openapi.json"},
		{method: "GET", path: "/healthz"},
		{method: "GET", path: "/api/v1/vehicles/near", roles: []Role{RoleSquad, RoleSupervisor}, audit: true,
			params: []string{"lat", "lon", "radius_m", "limit", "max_age"}},
		{method: "GET", path: "/api/v1/vehicles/{plate}", roles: []Role{RoleSquad, RoleSupervisor, RoleAnalyst}, audit: true},
		{method: "GET", path: "/api/v1/vehicles/{plate}/track", roles: []Role{RoleSupervisor, RoleAnalyst}, audit: true,
			params: []string{"from", "to"}},
		{method: "GET", path: "/api/v1/alerts", roles: []Role{RoleSupervisor},
			params: []string{"rule", "severity", "district", "vehicle", "state", "overdue", "limit", "offset", "cursor"}},
		{method: "GET", path: "/api/v1/alerts/stream", roles: []Role{RoleSupervisor},
			params: []string{"rule", "severity", "district", "last_event_id", "snapshot"}},
		{method: "GET", path: "/api/v1/alerts/digest", roles: []Role{RoleSupervisor, RoleAnalyst}, audit: true,
			params: []string{"district", "current"}},
		{method: "GET", path: "/api/v1/alerts/{id}", roles: []Role{RoleSupervisor}},
		{method: "POST", path: "/api/v1/alerts/{id}/actions", roles: []Role{RoleSupervisor}},
		{method: "GET", path: "/api/v1/officers", roles: []Role{RoleSupervisor}},
		{method: "GET", path: "/api/v1/violations", roles: []Role{RoleAnalyst, RoleSupervisor},
			params: []string{"from", "to", "rule", "severity", "company", "site", "district", "vehicle", "group_by", "format", "limit", "offset"}},
		{method: "GET", path: "/api/v1/heatmap", roles: []Role{RoleAnalyst, RoleSupervisor},
			params: []string{"from", "to", "rule", "severity", "district", "cell_m"}},
		{method: "GET", path: "/api/v1/kpis/handling", roles: []Role{RoleAnalyst, RoleSupervisor},
			params: []string{"from", "to", "by", "interval", "district", "format"}},
		{method: "GET", path: "/api/v1/scorecards", roles: []Role{RoleAnalyst, RoleSupervisor},
			params: []string{"from", "to", "of", "interval", "company", "vehicle", "format"}},
		{method: "GET", path: "/api/v1/rankings", roles: []Role{RoleAnalyst, RoleSupervisor},
			params: []string{"of", "period", "at", "format"}},
	}
	handlers := map[string]http.HandlerFunc{
		"/api/v1/openapi.json":           s.handleOpenAPI,
		"/healthz":                       func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") },
		"/api/v1/vehicles/near":          s.handleNear,
		"/api/v1/vehicles/{plate}":       s.handleVehicle,
		"/api/v1/vehicles/{plate}/track": s.handleTrack,
		"/api/v1/alerts":                 s.handleAlerts,
		"/api/v1/alerts/stream":          s.handleStream,
		"/api/v1/alerts/digest":          s.handleDigest,
		"/api/v1/alerts/{id}":            s.handleAlert,
		"/api/v1/alerts/{id}/actions":    s.handleAction,
		"/api/v1/officers":               s.handleOfficers,
		"/api/v1/violations":             s.handleViolations,
		"/api/v1/heatmap":                s.handleHeatmap,
		"/api/v1/kpis/handling":          s.handleHandlingKPIs,
		"/api/v1/scorecards":             s.handleScorecards,
		"/api/v1/rankings":               s.handleRankings,
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

// background checks overdue alerts and their escalation, makes the daily digest, journals the
// feed to ClickHouse and feeds the webhooks, until ctx is cancelled; a last journal flush follows.
func (s *Server) background(ctx context.Context) {
	var hooks sync.WaitGroup
	for _, h := range append([]*Webhook{s.hook}, s.levelHooks...) {
		if h != nil {
			hooks.Go(func() { h.Run(ctx) })
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var rollup kpiRollup
	defer rollup.wait()
	for {
		select {
		case <-ctx.Done():
			s.flushJournal(context.Background())
			if n := len(s.journalPending); n > 0 {
				s.log.Error("cannot journal the alert feed on shutdown; after the restart these items' overdue and escalation steps may be notified again", "items", n)
			}
			if s.store != nil {
				if err := s.store.FlushAudit(context.Background()); err != nil {
					s.log.Error("cannot write the API audit log on shutdown; these records are lost", "records", s.store.AuditQueued(), "err", err)
				}
			}
			hooks.Wait()
			return
		case <-tick.C:
		}
		s.tick(ctx)
		rollup.maybe(ctx, s) // the KPI roll-ups, at most one at a time, in the background
	}
}

// tick is one second of background work, at the server's clock: overdue alerts and escalation
// steps (announced on the alerts topic, journaled, handed to the webhooks), the daily digest, the
// audit log.
func (s *Server) tick(ctx context.Context) {
	if over := s.live.CheckOverdue(); len(over) > 0 {
		if s.announce != nil {
			if err := s.announce.Announce(ctx, over); err != nil {
				s.log.Warn("cannot announce overdue alerts on the alerts topic", "alerts", len(over), "err", err)
			}
		}
		s.enqueueLevelHooks(over)
	}
	s.checkDigest(ctx)
	s.flushJournal(ctx)
	if s.store != nil {
		if err := s.store.FlushAudit(ctx); err != nil {
			s.metrics.auditErrors.Inc()
			s.log.Warn("cannot write the API audit log; kept for the next attempt", "queued", s.store.AuditQueued(), "err", err)
		}
	}
}

// makeLevelHooks makes a webhook for each distinct URL of the escalation levels, signed with
// the escalation's secret (or api.webhook's), timed as api.webhook.
func (s *Server) makeLevelHooks(reg prometheus.Registerer) error {
	urls, byLevel := levelWebhooks(s.cfg.Escalation.Levels)
	if len(urls) == 0 {
		return nil
	}
	env := cmp.Or(s.cfg.Escalation.SecretEnv, s.cfg.Webhook.SecretEnv)
	secret := os.Getenv(env)
	if secret == "" {
		return fmt.Errorf("api.escalation: environment variable %s (the signing secret of the levels' webhooks) is not set", env)
	}
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_escalation_webhook_deliveries_total",
		Help: "Escalation webhook deliveries by URL (its index in the order the levels name them) and outcome: delivered, failed, dropped."},
		[]string{"webhook", "result"})
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_escalation_webhook_attempts_total",
		Help: "Escalation webhook delivery attempts (HTTP requests), retries included."}, []string{"webhook"})
	queueLen := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "muckwatch_escalation_webhook_queue_length",
		Help: "Escalation steps waiting for webhook delivery."}, []string{"webhook"})
	if reg != nil {
		reg.MustRegister(deliveries, attempts, queueLen)
	}
	for i, u := range urls {
		cfg := s.cfg.Webhook
		cfg.URL, cfg.MinSeverity = u, string(detectors.SeverityInfo)
		k := strconv.Itoa(i)
		s.levelHooks = append(s.levelHooks, newWebhook(cfg, secret, s.log, webhookMetrics{
			delivered: deliveries.WithLabelValues(k, "delivered"), failed: deliveries.WithLabelValues(k, "failed"),
			dropped: deliveries.WithLabelValues(k, "dropped"), attempts: attempts.WithLabelValues(k), queueLen: queueLen.WithLabelValues(k),
		}))
	}
	s.levelHookIdx = byLevel
	return nil
}

// enqueueLevelHooks hands each renotified item to the webhooks of the level it announces.
func (s *Server) enqueueLevelHooks(items []FeedItem) {
	if len(s.levelHooks) == 0 {
		return
	}
	for _, it := range items {
		if it.Change != ChangeRenotified {
			continue
		}
		step, ok := lastStep(&it.Alert)
		if !ok || step.Level >= len(s.levelHookIdx) {
			continue
		}
		for _, k := range s.levelHookIdx[step.Level] {
			s.levelHooks[k].Enqueue([]FeedItem{it})
		}
	}
}

// flushJournal hands the feed items published since the last flush to the webhook and writes
// them, with any a failed write left, to the ClickHouse journal. Items whose write fails are kept
// for the next flush (at most api.feed_buffer, the oldest dropped beyond): the journal is what
// tells a restarted API which alerts went overdue and which escalation steps were taken, so that
// it does not notify them again. Called from the background goroutine only.
func (s *Server) flushJournal(ctx context.Context) {
	items := s.live.takeJournal()
	if s.hook != nil && len(items) > 0 {
		s.hook.Enqueue(items)
	}
	if s.store == nil {
		return
	}
	if len(s.journalPending) > 0 {
		items = append(s.journalPending, items...)
		s.journalPending = nil
	}
	if len(items) == 0 {
		return
	}
	if err := s.store.WriteFeed(ctx, items); err != nil {
		s.metrics.journalErrors.Inc()
		if drop := len(items) - s.cfg.FeedBuffer; drop > 0 {
			s.log.Error("the alert feed journal is behind by more than api.feed_buffer items; dropping the oldest: after a restart their overdue and escalation steps may be notified again",
				"dropped", drop)
			items = items[drop:]
		}
		s.journalPending = items
		s.log.Warn("cannot journal the alert feed; kept for the next attempt", "items", len(items), "err", err)
	}
}

type ctxKey struct{}

// requestInfo is what guard keeps of a request for its handler: who it is from, and what the
// handler noted for the audit log.
type requestInfo struct {
	who Principal
	// plates are the vehicles the request looked up (the audit row's plate, comma-separated).
	plates []string
}

// principal returns who the request is from (set by guard).
func principal(r *http.Request) Principal {
	if ri, ok := r.Context().Value(ctxKey{}).(*requestInfo); ok {
		return ri.who
	}
	return Principal{}
}

// auditPlates notes the vehicles a request looks up; guard writes the request's one audit row
// with them.
func auditPlates(r *http.Request, plates ...string) {
	if ri, ok := r.Context().Value(ctxKey{}).(*requestInfo); ok {
		ri.plates = append(ri.plates, plates...)
	}
}

// audited reports whether a request to rt is written to the audit log when it is authorised:
// every lookup of a vehicle (rt.audit, or a vehicle filter).
func audited(rt route, r *http.Request) bool {
	return rt.audit || r.URL.Query().Has("vehicle")
}

// guard authenticates, authorises, rate-limits and bounds a request before h, and writes the
// audit row of a vehicle lookup and of a refused authentication. When the audit log cannot take
// the row (ClickHouse down for long), the request is refused with 503 rather than served
// unaudited.
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
			if s.checkParams(rec, r, rt) {
				h(rec, r)
			}
			return
		}
		ri := &requestInfo{}
		audit := false
		defer func() {
			if audit {
				s.writeAudit(r, ri, rec.status)
			}
		}()
		// refuse is a refused authentication or authorisation: audited, or 503 when the audit
		// log is full.
		refuse := func(status int, msg string) {
			if !s.auditRoom(rec) {
				return
			}
			audit = true
			writeError(rec, status, msg)
		}
		// A missing or unknown token is counted per client address; past the limit the answer is
		// 429 instead of 401. A valid token is never held up by others' failures from the same
		// address (a squad behind the same NAT as a misconfigured client).
		badToken := func(reason, challenge, msg string) {
			s.metrics.authFailures.WithLabelValues(reason).Inc()
			remote := remoteHost(r)
			if ok, wait := s.badTokens.allowed(remote); !ok {
				s.metrics.authFailures.WithLabelValues("rate_limited").Inc()
				rec.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
				refuse(http.StatusTooManyRequests, fmt.Sprintf("too many requests with a missing or unknown token from %s; retry in %s", remote, wait.Round(time.Second)))
				return
			}
			s.badTokens.failed(remote)
			rec.Header().Set("WWW-Authenticate", challenge)
			refuse(http.StatusUnauthorized, msg)
		}
		token, ok := bearer(r)
		if !ok {
			badToken("missing", `Bearer realm="muckwatch"`, "missing bearer token: send Authorization: Bearer TOKEN")
			return
		}
		p, ok := s.tokens.Lookup(token)
		if !ok {
			badToken("unknown", `Bearer realm="muckwatch", error="invalid_token"`, "unknown or revoked token")
			return
		}
		ri.who = p
		if p.Role != RoleAdmin && !slices.Contains(rt.roles, p.Role) {
			s.metrics.authFailures.WithLabelValues("forbidden").Inc()
			refuse(http.StatusForbidden, fmt.Sprintf("role %s may not use %s %s (allowed: %s)", p.Role, rt.method, rt.path, rolesList(rt.roles)))
			return
		}
		if ok, wait := s.limit.allow(p.Name); !ok {
			rec.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			writeError(rec, http.StatusTooManyRequests, fmt.Sprintf("rate limit of %g requests/s for %s exceeded; retry in %s", s.cfg.RatePerSecond, p.Name, wait.Round(time.Millisecond)))
			return
		}
		if audited(rt, r) {
			if !s.auditRoom(rec) {
				return
			}
			audit = true
		}
		if !s.checkParams(rec, r, rt) {
			return
		}
		h(rec, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri)))
	})
}

// auditRoom reports whether the audit log can take another row; when it cannot, it answers 503
// and logs (at most every 10 s) that requests are refused.
func (s *Server) auditRoom(w http.ResponseWriter) bool {
	if s.store == nil || s.store.AuditRoom() {
		return true
	}
	s.metrics.auditRefused.Inc()
	if now := time.Now(); now.UnixNano()-s.auditWarned.Load() > int64(10*time.Second) {
		s.auditWarned.Store(now.UnixNano())
		s.log.Error("the API audit log is full (ClickHouse does not take it); refusing the requests it would record", "queued", s.store.AuditQueued())
	}
	w.Header().Set("Retry-After", "10")
	writeError(w, http.StatusServiceUnavailable, "the audit log cannot record this request now; retry later")
	return false
}

// writeAudit queues the request's audit row.
func (s *Server) writeAudit(r *http.Request, ri *requestInfo, status int) {
	if s.store == nil {
		return
	}
	actor, role := ri.who.Name, string(ri.who.Role)
	if actor == "" {
		actor = "(unauthenticated)"
	}
	s.store.Audit(AuditRecord{At: s.now(), Actor: actor, Role: role, Method: r.Method, Path: r.URL.Path,
		Plate: strings.Join(ri.plates, ","), Status: status, Remote: r.RemoteAddr})
}

// remoteHost is the request's peer address without the port.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
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
	auditErrors   prometheus.Counter
	auditRefused  prometheus.Counter
	authFailures  *prometheus.CounterVec
	sseClients    prometheus.Gauge
	streamRefused prometheus.Counter
}

func newServerMetrics(reg prometheus.Registerer) *serverMetrics {
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_api_requests_total",
			Help: "API requests by route and status."}, []string{"route", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "muckwatch_api_request_seconds",
			Help: "API request latency by route.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		journalErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_api_feed_journal_errors_total",
			Help: "Failed writes of the alert feed journal to ClickHouse."}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_api_audit_errors_total",
			Help: "Failed writes of the API audit log to ClickHouse (the records stay queued and are written later)."}),
		auditRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_api_audit_refused_total",
			Help: "Requests refused with 503 because the audit log was full (ClickHouse not taking it)."}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_api_auth_failures_total",
			Help: "Refused authentications and authorisations by reason (missing, unknown, forbidden, rate_limited)."}, []string{"reason"}),
		streamRefused: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_api_sse_refused_total",
			Help: "Alert-stream connections refused because their token had api.max_streams_per_token open."}),
		sseClients: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_api_sse_clients",
			Help: "Connected alert-stream clients."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.seconds, m.journalErrors, m.auditErrors, m.auditRefused, m.authFailures, m.sseClients, m.streamRefused)
	}
	return m
}
