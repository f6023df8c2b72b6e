package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	dto "github.com/prometheus/client_model/go"

	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/sink"
)

// serve runs one request through h, from remote, and returns the answer.
func serve(h http.Handler, method, path, token, remote, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if remote != "" {
		req.RemoteAddr = remote
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// errorMessage is the message of an error answer.
func errorMessage(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Status != rec.Code {
		t.Fatalf("the answer is not an error body with its status: %v %s", err, rec.Body)
	}
	return e.Error
}

// observeTrucks puts n trucks around (22.54, 114.06), seen now.
func observeTrucks(l *Live, n int) {
	fixes := make([]record.Fix, n)
	for i := range fixes {
		fixes[i] = record.Fix{VehicleID: fmt.Sprintf("粤B%05d", i), Time: time.Now(), Lat: 22.54 + float64(i)*1e-4, Lon: 114.06, SpeedKmh: 30}
	}
	l.Observe(fixes, nil, nil)
}

const nearPath = "/api/v1/vehicles/near?lat=22.54&lon=114.06&radius_m=5000"

// The load of the issue: 9,000 near-by lookups (each listing 30 trucks), 300 requests with a bad
// token and supervisors' lookups of a vehicle's alerts. Every request is one audit row, none is
// lost, and refused authentications are audited too.
func TestAuditUnderLoad(t *testing.T) {
	e := newHistEnv(t)
	store := NewStore(e.conn, e.db, histLogger())
	srv := e.newServerWith(store, func(c *Config) { c.RatePerSecond, c.Burst = 1e6, 1_000_000 })
	h := srv.Handler()
	observeTrucks(srv.live, 30)
	const lookups, badTokens, alertLookups = 9000, 300, 10
	var wg sync.WaitGroup
	var notOK atomic.Int64
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < lookups; i += 8 {
				if rec := serve(h, "GET", nearPath, histSquadToken, "", ""); rec.Code != 200 {
					notOK.Add(1)
				}
			}
		}()
	}
	for range badTokens {
		serve(h, "GET", nearPath, "guessed-token", "198.51.100.7:4000", "")
	}
	for range alertLookups {
		if rec := serve(h, "GET", "/api/v1/alerts?vehicle="+url.QueryEscape("粤B00001"), histAdminToken, "", ""); rec.Code != 200 {
			t.Fatalf("alerts?vehicle=: %d %s", rec.Code, rec.Body)
		}
	}
	wg.Wait()
	if n := notOK.Load(); n != 0 {
		t.Fatalf("%d near-by lookups were not answered 200", n)
	}
	if err := store.FlushAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	count := func(where string) uint64 {
		var n uint64
		if err := e.conn.QueryRow(context.Background(), "SELECT count() FROM "+e.db+".api_audit WHERE "+where).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		what, where string
		want        uint64
	}{
		{"all", "1", lookups + badTokens + alertLookups},
		{"near-by lookups, each listing its 30 trucks", "path = '/api/v1/vehicles/near' AND status = 200 AND length(splitByChar(',', plate)) = 30", lookups},
		{"bad tokens refused", "actor = '(unauthenticated)' AND status = 401", 30},
		{"bad tokens rate-limited", "actor = '(unauthenticated)' AND status = 429", badTokens - 30},
		{"alerts of a vehicle", "path = '/api/v1/alerts' AND plate = '粤B00001' AND actor = 'root'", alertLookups},
	} {
		if got := count(c.where); got != c.want {
			t.Errorf("%s: %d audit rows, want %d", c.what, got, c.want)
		}
	}
}

// With ClickHouse not taking the audit log, requests that would be audited are refused with 503
// once the queue is full; none is served unaudited, and every queued record is written once
// ClickHouse takes it again.
func TestAuditFullRefuses(t *testing.T) {
	e := newHistEnv(t)
	later := fmt.Sprintf("api_audit_later_%d", os.Getpid())
	store := NewStore(e.conn, later, histLogger()) // the database does not exist yet
	srv := e.newServerWith(store, func(c *Config) { c.AuditQueue = 100 })
	h := srv.Handler()
	observeTrucks(srv.live, 3)
	served, refused := 0, 0
	for i := range 150 {
		rec := serve(h, "GET", nearPath, histSquadToken, "", "")
		switch rec.Code {
		case 200:
			served++
		case 503:
			refused++
			if !strings.Contains(rec.Body.String(), "audit log") || rec.Header().Get("Retry-After") == "" {
				t.Errorf("503 %s (Retry-After %q), want it to name the audit log", rec.Body, rec.Header().Get("Retry-After"))
			}
		default:
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
		if i%40 == 0 {
			if err := store.FlushAudit(context.Background()); err == nil {
				t.Fatal("the audit log was written to a database that does not exist")
			}
		}
	}
	if served != 100 || refused != 50 {
		t.Errorf("%d served, %d refused; want 100 and 50", served, refused)
	}
	if rec := serve(h, "GET", nearPath, "guessed-token", "", ""); rec.Code != 503 {
		t.Errorf("a bad token with the audit log full: %d, want 503", rec.Code)
	}
	if rec := serve(h, "GET", "/api/v1/violations?from=0&to=1000", histAnalystToken, "", ""); rec.Code == 503 && strings.Contains(rec.Body.String(), "audit") {
		t.Errorf("a request that is not audited was refused for the audit log: %s", rec.Body)
	}
	ch, err := sink.OpenClickHouse(context.Background(), sink.ClickHouseConfig{Addr: []string{chServer.TCPAddr}, Database: later}, histLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+later); _ = ch.Close() })
	if err := ch.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// the server flushes every second and keeps what a failed flush did not write; a connection
	// the driver closed after the failed inserts may fail one more attempt
	var err2 error
	for range 3 {
		if err2 = store.FlushAudit(context.Background()); err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Fatal(err2)
	}
	var n uint64
	if err := ch.Conn().QueryRow(context.Background(), "SELECT count() FROM "+later+".api_audit").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != uint64(served) {
		t.Errorf("%d audit rows written, want one per served request: %d", n, served)
	}
}

// silentServer accepts connections and never answers, like a ClickHouse server stopped with
// SIGSTOP.
func silentServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

// Every endpoint that queries ClickHouse answers within its timeout when ClickHouse hangs: 504,
// saying what happened without the driver's internals. The lookups and the history are bounded by
// api.query_timeout; the KPIs' reports by api.kpi.query_timeout, not by the lookups' (their server
// here has the lookups' timeout long and the KPIs' short).
func TestQueriesBoundedWhenClickHouseHangs(t *testing.T) {
	e := newHistEnv(t)
	addr := silentServer(t)
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Minute, ReadTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	const timeout = 300 * time.Millisecond
	lookups := e.newServerWith(NewStore(conn, "muckwatch", histLogger()), func(c *Config) { c.QueryTimeout = timeout })
	reports := e.newServerWith(NewStore(conn, "muckwatch", histLogger()), func(c *Config) {
		c.QueryTimeout = 5 * time.Minute
		c.KPI.QueryTimeout = timeout
	})
	win := "from=2026-11-22T00:00:00%2B08:00&to=2026-11-25T00:00:00%2B08:00"
	month := "from=2026-11-01T00:00:00%2B08:00&to=2026-12-01T00:00:00%2B08:00"
	for _, tc := range []struct {
		srv  *Server
		path string
	}{
		{lookups, "/api/v1/violations?" + win},
		{lookups, "/api/v1/violations?group_by=day&" + win},
		{lookups, "/api/v1/heatmap?" + win},
		{lookups, "/api/v1/vehicles/" + url.PathEscape("粤B10001") + "/track?" + win},
		{lookups, "/api/v1/vehicles/" + url.PathEscape("粤B77777")}, // unknown here: its last position is looked up in ClickHouse
		{reports, "/api/v1/kpis/handling?" + month},
		{reports, "/api/v1/scorecards?of=company&" + month},
		{reports, "/api/v1/rankings?of=districts&period=month&at=2026-11-15T00:00:00%2B08:00"},
	} {
		t.Run(tc.path[:min(len(tc.path), 40)], func(t *testing.T) {
			start := time.Now()
			rec := serve(tc.srv.Handler(), "GET", tc.path, histAdminToken, "", "")
			took := time.Since(start)
			if rec.Code != http.StatusGatewayTimeout || took > timeout+2*time.Second {
				t.Fatalf("%d after %s: %s; want 504 within about %s", rec.Code, took, rec.Body, timeout)
			}
			body := rec.Body.String()
			if !strings.Contains(body, "did not answer within 300ms") || strings.Contains(body, "127.0.0.1") || strings.Contains(body, "tcp") {
				t.Errorf("body %s: want what happened, naming the timeout that passed, without addresses", body)
			}
		})
	}
}

// Error answers say what was wrong in the client's terms, never Go types, addresses or driver
// messages.
func TestErrorBodiesWithoutInternals(t *testing.T) {
	e := newHistEnv(t)
	srv := e.newServerWith(NewStore(e.conn, "api_hist_missing_db", histLogger()), nil)
	h := srv.Handler()
	win := "from=2026-11-22T00:00:00%2B08:00&to=2026-11-25T00:00:00%2B08:00"
	tests := []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"POST", "/api/v1/alerts/a1/actions", `["dismiss"]`, 400, "the body must be a JSON object, got a JSON array"},
		{"POST", "/api/v1/alerts/a1/actions", `{"action": 5}`, 400, `field "action" must be a string, got a JSON number`},
		{"POST", "/api/v1/alerts/a1/actions", `{"action": "dismiss",`, 400, "ends in the middle"},
		{"POST", "/api/v1/alerts/a1/actions", `{"action": "dismiss", "why": "x"}`, 400, `unknown field "why"`},
		{"POST", "/api/v1/alerts/a1/actions", `{"action" "dismiss"}`, 400, "not valid JSON (at byte 11)"},
		{"POST", "/api/v1/alerts/a1/actions", ``, 400, "the body is empty"},
		{"GET", "/api/v1/violations?" + win, "", 503, "the history (ClickHouse) is not available now"},
		{"GET", "/api/v1/heatmap?" + win, "", 503, "the history (ClickHouse) is not available now"},
		{"GET", "/api/v1/vehicles/" + url.PathEscape("粤B77777"), "", 503, "the history (ClickHouse) is not available now"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.body, func(t *testing.T) {
			rec := serve(h, tc.method, tc.path, histAdminToken, "", tc.body)
			body := errorMessage(t, rec)
			if rec.Code != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("%d %s, want %d saying %q", rec.Code, body, tc.status, tc.says)
			}
			for _, internal := range []string{"Go value", "api.", "unmarshal", "127.0.0.1", "code:", "UNKNOWN_DATABASE", "api_hist_missing_db"} {
				if strings.Contains(body, internal) {
					t.Errorf("body %s shows %q", body, internal)
				}
			}
		})
	}
}

// One token may open at most api.max_streams_per_token alert streams at once.
func TestStreamsPerToken(t *testing.T) {
	e := newHistEnv(t)
	srv := e.newServerWith(nil, func(c *Config) { c.MaxStreamsPerToken = 2 })
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	open := func() (*http.Response, error) {
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/alerts/stream", nil)
		req.Header.Set("Authorization", "Bearer "+histAdminToken)
		return http.DefaultClient.Do(req)
	}
	var streams []*http.Response
	for i := range 2 {
		resp, err := open()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, err, resp.Status)
		}
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil { // the stream is registered
			t.Fatal(err)
		}
		streams = append(streams, resp)
	}
	resp, err := open()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "already has 2 alert streams open") {
		t.Fatalf("third stream: %s %s, want 429", resp.Status, body)
	}
	streams[0].Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := open()
		if err == nil && resp.StatusCode == 200 {
			resp.Body.Close()
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatal("a stream closed does not make room for another")
		}
		time.Sleep(20 * time.Millisecond) // the server notices the closed stream asynchronously
	}
	streams[1].Body.Close()
}

// Refused authentications are counted and, past api.auth_failures_per_minute from one address,
// answered 429; other addresses, and valid tokens from the same address, are not held up.
func TestBadTokensLimited(t *testing.T) {
	e := newHistEnv(t)
	srv := e.newServerWith(nil, func(c *Config) { c.AuthFailuresPerMinute = 5 })
	h := srv.Handler()
	var codes []int
	for range 8 {
		codes = append(codes, serve(h, "GET", "/api/v1/violations", "guess", "203.0.113.9:1111", "").Code)
	}
	if want := []int{401, 401, 401, 401, 401, 429, 429, 429}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("codes %v, want %v", codes, want)
	}
	if rec := serve(h, "GET", "/api/v1/violations", "guess", "203.0.113.10:1111", ""); rec.Code != 401 {
		t.Errorf("another address: %d, want 401", rec.Code)
	}
	if rec := serve(h, "GET", "/api/v1/officers", histAdminToken, "203.0.113.9:2222", ""); rec.Code != 200 {
		t.Errorf("a valid token from the limited address: %d %s", rec.Code, rec.Body)
	}
	var m dto.Metric
	if err := srv.metrics.authFailures.WithLabelValues("rate_limited").Write(&m); err != nil {
		t.Fatal(err)
	}
	if metric := m.GetCounter().GetValue(); metric != 3 {
		t.Errorf("muckwatch_api_auth_failures_total{reason=rate_limited} = %g, want 3", metric)
	}
}

// A query parameter a route does not take, or one given twice, is refused with 400 naming it.
func TestQueryParameters(t *testing.T) {
	e := newHistEnv(t)
	h := e.srv.Handler()
	for _, tc := range []struct {
		path, says string
	}{
		{"/api/v1/alerts?rule=speeding&rule=dwell", `"rule" is given 2 times`},
		{"/api/v1/alerts?severty=severe", `unknown query parameter "severty"`},
		{"/api/v1/heatmap?from=0&to=1&cellm=50", `unknown query parameter "cellm"`},
		{"/api/v1/vehicles/" + url.PathEscape("粤B1") + "?x=1", "takes no query parameters"},
	} {
		rec := serve(h, "GET", tc.path, histAdminToken, "", "")
		if rec.Code != 400 || !strings.Contains(errorMessage(t, rec), tc.says) {
			t.Errorf("%s: %d %s, want 400 saying %s", tc.path, rec.Code, rec.Body, tc.says)
		}
	}
}

// The history endpoints answer 504 within api.query_timeout while the ClickHouse server is
// stopped with SIGSTOP (its connections open, nothing answering), and work again once it
// continues.
func TestHistoryWhenClickHouseIsStopped(t *testing.T) {
	srvCH, err := chlocal.Start()
	if err != nil {
		t.Fatalf("cannot start a ClickHouse server of its own for this test: %v", err)
	}
	t.Cleanup(func() { _ = srvCH.Destroy() })
	raw, err := os.ReadFile(filepath.Join(srvCH.Dir, "server.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ch, err := sink.OpenClickHouse(ctx, sink.ClickHouseConfig{Addr: []string{srvCH.TCPAddr}, Database: "stopped"}, histLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	if err := ch.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	e := &histEnv{t: t, city: histLoadCity(t)}
	const timeout = 500 * time.Millisecond
	srv := e.newServerWith(NewStore(ch.Conn(), "stopped", histLogger()), func(c *Config) { c.QueryTimeout = timeout })
	win := "from=2026-11-22T00:00:00%2B08:00&to=2026-11-25T00:00:00%2B08:00"
	paths := []string{"/api/v1/violations?" + win, "/api/v1/heatmap?" + win, "/api/v1/vehicles/" + url.PathEscape("粤B70214") + "/track?" + win}
	for _, p := range paths { // warm: connections in the pool
		if rec := serve(srv.Handler(), "GET", p, histAdminToken, "", ""); rec.Code != 200 {
			t.Fatalf("%s before the stop: %d %s", p, rec.Code, rec.Body)
		}
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	continued := false
	cont := func() {
		if !continued {
			continued = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(cont)
	for _, p := range paths {
		start := time.Now()
		rec := serve(srv.Handler(), "GET", p, histAdminToken, "", "")
		if took := time.Since(start); rec.Code != http.StatusGatewayTimeout || took > timeout+2*time.Second {
			t.Errorf("%s with ClickHouse stopped: %d after %s (%s), want 504 within about %s", p, rec.Code, took, rec.Body, timeout)
		}
	}
	cont()
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range paths {
		for {
			rec := serve(srv.Handler(), "GET", p, histAdminToken, "", "")
			if rec.Code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after ClickHouse continued: %d %s", p, rec.Code, rec.Body)
			}
			time.Sleep(100 * time.Millisecond) // queries stuck while it was stopped are still finishing
		}
	}
}
