package api

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/sink"
	"github.com/muckwatch/muckwatch/tables"
)

// Tokens of the history tests.
const (
	histAnalystToken = "analyst-secret-token"
	histSquadToken   = "squad-secret-token"
	histAdminToken   = "admin-secret-token"
)

// histMaxRows is the servers' MaxRows: small, so that the 422 answers are cheap to reach.
const histMaxRows = 100

type histCity struct{ c *city.City }

func (h histCity) City() *city.City { return h.c }

type histNoRisk struct{}

func (histNoRisk) Risk(string) (detectors.Risk, bool) { return detectors.Risk{}, false }

var (
	histDBSeq   atomic.Int32
	histCityVal atomic.Pointer[city.City]
)

func histLoadCity(t testing.TB) *city.City {
	t.Helper()
	if c := histCityVal.Load(); c != nil {
		return c
	}
	c, err := city.Load("../configs/cities/shenzhen")
	if err != nil {
		t.Fatalf("cannot load the sample city: %v", err)
	}
	histCityVal.Store(c)
	return c
}

func histLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// histEnv is a fresh ClickHouse database with the schema, and an API server over it.
type histEnv struct {
	t    testing.TB
	db   string
	conn driver.Conn
	city *city.City
	srv  *Server
	h    http.Handler
}

func newHistEnv(t testing.TB) *histEnv {
	t.Helper()
	ctx := context.Background()
	db := fmt.Sprintf("api_hist_%d_%d", os.Getpid(), histDBSeq.Add(1))
	ch, err := sink.OpenClickHouse(ctx, sink.ClickHouseConfig{Addr: []string{chServer.TCPAddr}, Database: db}, histLogger(), nil)
	if err != nil {
		t.Fatalf("cannot connect to the test ClickHouse: %v", err)
	}
	t.Cleanup(func() {
		if err := ch.Conn().Exec(context.Background(), "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("cannot drop the test database %s: %v", db, err)
		}
		_ = ch.Close()
	})
	if err := ch.Migrate(ctx); err != nil {
		t.Fatalf("cannot create the schema in %s: %v", db, err)
	}
	// Keep every version of an alert apart, so that the queries must deduplicate them.
	if err := ch.Conn().Exec(ctx, "SYSTEM STOP MERGES "+db+".alerts"); err != nil {
		t.Fatalf("cannot stop merges on %s.alerts: %v", db, err)
	}
	e := &histEnv{t: t, db: db, conn: ch.Conn(), city: histLoadCity(t)}
	e.srv = e.newServer(NewStore(ch.Conn(), db, histLogger()))
	e.h = e.srv.Handler()
	return e
}

func (e *histEnv) newServer(store *Store) *Server {
	e.t.Helper()
	return e.newServerWith(store, nil)
}

// newServerWith is newServer with the configuration edited by edit (nil: unchanged).
func (e *histEnv) newServerWith(store *Store, edit func(*Config)) *Server {
	e.t.Helper()
	e.t.Setenv("MUCKWATCH_API_TOKENS", strings.Join([]string{
		TokenEntry(RoleAnalyst, "ana", histAnalystToken),
		TokenEntry(RoleSquad, "squad-7", histSquadToken),
		TokenEntry(RoleAdmin, "root", histAdminToken),
	}, ","))
	cfg := Config{MaxRows: histMaxRows}
	if edit != nil {
		edit(&cfg)
	}
	cfg = cfg.WithDefaults()
	srv, err := NewServer(cfg, NewLive(cfg), store, histCity{e.city}, histNoRisk{}, nil, histLogger(), nil)
	if err != nil {
		e.t.Fatalf("cannot make the API server: %v", err)
	}
	return srv
}

// histAlert is one stored version of an alert.
type histAlert struct {
	id, rule, severity, status, vehicle, company, place, district string
	start, end                                                    time.Time // end zero: open
	lat, lon                                                      float64
	version                                                       uint64
}

func (e *histEnv) insertAlerts(alerts ...histAlert) {
	e.t.Helper()
	b, err := e.conn.PrepareBatch(context.Background(), tables.Alerts.Insert(e.db))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, a := range alerts {
		endMs, endTime := int64(0), time.Unix(0, 0)
		if !a.end.IsZero() {
			endMs, endTime = a.end.UnixMilli(), a.end
		}
		if err := b.Append(a.id, a.rule, a.severity, "in_event", a.status, a.vehicle, a.company, "P-"+a.vehicle, a.place, a.district,
			a.start, a.start.UnixMilli(), endTime, endMs, a.lat, a.lon, 50.0, 40.0, "evidence of "+a.id, a.version,
			a.start, a.start.UnixMilli()); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		e.t.Fatalf("cannot insert alerts: %v", err)
	}
}

// histFix is one stored position.
type histFix struct {
	id, vehicle string
	at          time.Time
	lat, lon    float64
}

func (e *histEnv) insertFixes(fixes ...histFix) {
	e.t.Helper()
	t := tables.Positions
	b, err := e.conn.PrepareBatch(context.Background(), "INSERT INTO "+t.In(e.db)+" ("+t.List("fix_id", "vehicle_id", "ts", "ts_ms", "lat", "lon", "speed_kmh")+")")
	if err != nil {
		e.t.Fatal(err)
	}
	for _, f := range fixes {
		if err := b.Append(f.id, f.vehicle, f.at, f.at.UnixMilli(), f.lat, f.lon, float32(30)); err != nil {
			e.t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		e.t.Fatalf("cannot insert positions: %v", err)
	}
}

// get requests path with token and returns the status, the headers and the body.
func (e *histEnv) get(token, path string) (int, http.Header, []byte) {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header(), body
}

// getJSON requests path as the analyst, wants 200 and ct, and decodes the answer into v.
func (e *histEnv) getJSON(path, ct string, v any) {
	e.t.Helper()
	code, h, body := e.get(histAnalystToken, path)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: status %d, want 200: %s", path, code, body)
	}
	if got := h.Get("Content-Type"); got != ct {
		e.t.Fatalf("GET %s: Content-Type %q, want %q", path, got, ct)
	}
	if err := json.Unmarshal(body, v); err != nil {
		e.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// The fixture: times in the city's zone (+08:00).
var histZone = time.FixedZone("CST", 8*3600)

func histAt(day, hour, minute, sec, ms int) time.Time {
	return time.Date(2026, 11, day, hour, minute, sec, ms*int(time.Millisecond), histZone)
}

var (
	histFrom = histAt(22, 0, 0, 0, 0)
	histTo   = histAt(25, 0, 0, 0, 0)
	// A1 has two versions: it opened as a warning and was resolved as severe.
	histA1v1 = histAlert{id: "A1", rule: "speeding", severity: "warning", status: "open", vehicle: "粤B10001", company: "Alpha Haulage",
		place: "site-A", district: "futian", start: histAt(23, 8, 15, 0, 250), lat: 22.6400, lon: 114.1000, version: 1}
	histA1v2 = histAlert{id: "A1", rule: "speeding", severity: "severe", status: "resolved", vehicle: "粤B10001", company: "Alpha Haulage",
		place: "site-A", district: "futian", start: histAt(23, 8, 15, 0, 250), end: histAt(23, 8, 20, 0, 0), lat: 22.6400, lon: 114.1000, version: 2}
	histA2 = histAlert{id: "A2", rule: "speeding", severity: "warning", status: "open", vehicle: "粤B10002", company: "Beta Transport",
		place: "route-7", district: "nanshan", start: histAt(23, 9, 5, 0, 0), lat: 22.6410, lon: 114.1010, version: 1}
	histA3 = histAlert{id: "A3", rule: "overload", severity: "severe", status: "resolved", vehicle: "粤B10001", company: "Alpha Haulage",
		place: "site-A", district: "futian", start: histAt(24, 10, 0, 0, 0), end: histAt(24, 10, 30, 0, 0), lat: 22.7000, lon: 114.2000, version: 3}
	// A4 started on the 24th in the city but on the 23rd in UTC.
	histA4 = histAlert{id: "A4", rule: "restricted_zone", severity: "info", status: "open", vehicle: "粤B10003", company: "Beta Transport",
		place: "zone-1", district: "nanshan", start: histAt(24, 2, 0, 0, 0), lat: 22.6000, lon: 114.0500, version: 1}
	// A5 started exactly at from: in the window, and on the 21st in UTC.
	histA5 = histAlert{id: "A5", rule: "dwell", severity: "info", status: "resolved", vehicle: "粤B10004", company: "Gamma Earthworks",
		place: "site-B", district: "luohu", start: histFrom, end: histAt(22, 0, 40, 0, 0), lat: 22.5500, lon: 114.1200, version: 1}
	// outside the window: exactly at to, and before from
	histA6 = histAlert{id: "A6", rule: "speeding", severity: "warning", status: "open", vehicle: "粤B10001", company: "Alpha Haulage",
		place: "site-A", district: "futian", start: histTo, lat: 22.6400, lon: 114.1000, version: 1}
	histA7 = histAlert{id: "A7", rule: "speeding", severity: "warning", status: "resolved", vehicle: "粤B10002", company: "Beta Transport",
		place: "route-7", district: "nanshan", start: histAt(21, 12, 0, 0, 0), end: histAt(21, 12, 5, 0, 0), lat: 22.6400, lon: 114.1000, version: 1}
	// histInWindow are the distinct alerts in [histFrom, histTo), newest version.
	histInWindow = []histAlert{histA1v2, histA2, histA3, histA4, histA5}
)

func (e *histEnv) insertFixture() {
	e.t.Helper()
	e.insertAlerts(histA1v1, histA2, histA5, histA7)
	e.insertAlerts(histA1v2, histA3, histA4, histA6) // a second part: A1's versions stay apart
	var rows uint64
	if err := e.conn.QueryRow(context.Background(), "SELECT count() FROM "+e.db+".alerts WHERE id = 'A1'").Scan(&rows); err != nil {
		e.t.Fatal(err)
	}
	if rows != 2 {
		e.t.Fatalf("the fixture must keep A1's two versions apart, found %d rows", rows)
	}
}

func histQuery(path string, kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return path + "?" + v.Encode()
}

func histWindow(kv ...string) []string {
	return append([]string{"from", histFrom.Format(time.RFC3339), "to", histTo.Format(time.RFC3339)}, kv...)
}

type histViolationsAnswer struct {
	From       string           `json:"from"`
	To         string           `json:"to"`
	Total      uint64           `json:"total"`
	Violations []map[string]any `json:"violations"`
}

func TestViolationsList(t *testing.T) {
	e := newHistEnv(t)
	e.insertFixture()
	tests := []struct {
		name      string
		params    []string
		wantTotal uint64
		wantIDs   []string
	}{
		{"all, newest first", histWindow(), 5, []string{"A3", "A4", "A2", "A1", "A5"}},
		{"limit pages, total counts all", histWindow("limit", "2"), 5, []string{"A3", "A4"}},
		{"rule", histWindow("rule", "speeding"), 2, []string{"A2", "A1"}},
		{"rules", histWindow("rule", "overload, dwell"), 2, []string{"A3", "A5"}},
		{"severity of the newest version", histWindow("severity", "severe"), 2, []string{"A3", "A1"}},
		{"an older version's severity does not match", histWindow("severity", "warning"), 1, []string{"A2"}},
		{"severities", histWindow("severity", "info,warning"), 3, []string{"A4", "A2", "A5"}},
		{"company", histWindow("company", "Alpha Haulage"), 2, []string{"A3", "A1"}},
		{"site", histWindow("site", "site-A"), 2, []string{"A3", "A1"}},
		{"district", histWindow("district", "nanshan"), 2, []string{"A4", "A2"}},
		{"vehicle normalised", histWindow("vehicle", "粤b 10001"), 2, []string{"A3", "A1"}},
		{"filters combine", histWindow("vehicle", "粤B10001", "rule", "speeding"), 1, []string{"A1"}},
		{"nothing matches", histWindow("company", "Nobody"), 0, []string{}},
		{"from is inclusive to the millisecond", []string{"from", fmt.Sprint(histA1v1.start.UnixMilli()), "to", fmt.Sprint(histA2.start.UnixMilli())}, 1, []string{"A1"}},
		{"to is exclusive, from after the start", []string{"from", fmt.Sprint(histA1v1.start.UnixMilli() + 1), "to", fmt.Sprint(histA2.start.UnixMilli() + 1)}, 1, []string{"A2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ans histViolationsAnswer
			e.getJSON(histQuery("/api/v1/violations", tc.params...), "application/json; charset=utf-8", &ans)
			if ans.Total != tc.wantTotal {
				t.Errorf("total %d, want %d", ans.Total, tc.wantTotal)
			}
			ids := []string{}
			for _, v := range ans.Violations {
				ids = append(ids, v["alert_id"].(string))
			}
			if !slices.Equal(ids, tc.wantIDs) {
				t.Errorf("alerts %v, want %v", ids, tc.wantIDs)
			}
		})
	}

	t.Run("fields of the newest version", func(t *testing.T) {
		var ans histViolationsAnswer
		e.getJSON(histQuery("/api/v1/violations", histWindow("rule", "speeding")...), "application/json; charset=utf-8", &ans)
		if ans.From != "2026-11-22T00:00:00+08:00" || ans.To != "2026-11-25T00:00:00+08:00" {
			t.Errorf("from %q to %q, want the window in the city's zone", ans.From, ans.To)
		}
		want := map[string]any{"alert_id": "A1", "rule": "speeding", "severity": "severe", "status": "resolved", "vehicle_id": "粤B10001",
			"company": "Alpha Haulage", "permit_id": "P-粤B10001", "place": "site-A", "district": "futian",
			"start": "2026-11-23T08:15:00.250+08:00", "end": "2026-11-23T08:20:00+08:00", "lat": 22.64, "lon": 114.1,
			"value": 50.0, "limit": 40.0, "evidence": "evidence of A1"}
		got := ans.Violations[1]
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s = %v, want %v", k, got[k], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("fields %v, want those of %v", got, want)
		}
		if end, ok := ans.Violations[0]["end"]; !ok || end != nil {
			t.Errorf("open alert A2: end = %v, want null", end)
		}
	})
}

func TestViolationsGrouped(t *testing.T) {
	e := newHistEnv(t)
	e.insertFixture()
	tests := []struct {
		name   string
		params []string
		want   []map[string]any
	}{
		{"day in the city's zone", histWindow("group_by", "day"), []map[string]any{
			{"day": "2026-11-22", "violations": 1.0}, {"day": "2026-11-23", "violations": 2.0}, {"day": "2026-11-24", "violations": 2.0}}},
		{"rule", histWindow("group_by", "rule"), []map[string]any{
			{"rule": "dwell", "violations": 1.0}, {"rule": "overload", "violations": 1.0},
			{"rule": "restricted_zone", "violations": 1.0}, {"rule": "speeding", "violations": 2.0}}},
		{"day and rule", histWindow("group_by", "day,rule"), []map[string]any{
			{"day": "2026-11-22", "rule": "dwell", "violations": 1.0}, {"day": "2026-11-23", "rule": "speeding", "violations": 2.0},
			{"day": "2026-11-24", "rule": "overload", "violations": 1.0}, {"day": "2026-11-24", "rule": "restricted_zone", "violations": 1.0}}},
		{"hour of one rule", histWindow("group_by", "hour", "rule", "speeding"), []map[string]any{
			{"hour": "2026-11-23T08:00:00+08:00", "violations": 1.0}, {"hour": "2026-11-23T09:00:00+08:00", "violations": 1.0}}},
		{"severity counts each alert once, at its newest", histWindow("group_by", "severity"), []map[string]any{
			{"severity": "info", "violations": 2.0}, {"severity": "severe", "violations": 2.0}, {"severity": "warning", "violations": 1.0}}},
		{"company and district", histWindow("group_by", "company,district"), []map[string]any{
			{"company": "Alpha Haulage", "district": "futian", "violations": 2.0},
			{"company": "Beta Transport", "district": "nanshan", "violations": 2.0},
			{"company": "Gamma Earthworks", "district": "luohu", "violations": 1.0}}},
		{"site, filtered", histWindow("group_by", "site", "district", "nanshan"), []map[string]any{
			{"site": "route-7", "violations": 1.0}, {"site": "zone-1", "violations": 1.0}}},
		{"no match", histWindow("group_by", "rule", "vehicle", "粤Z99999"), []map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ans struct {
				GroupBy   []string         `json:"group_by"`
				Rows      []map[string]any `json:"rows"`
				Truncated bool             `json:"truncated"`
			}
			path := histQuery("/api/v1/violations", tc.params...)
			e.getJSON(path, "application/json; charset=utf-8", &ans)
			if len(ans.Rows) != len(tc.want) {
				t.Fatalf("rows %v, want %v", ans.Rows, tc.want)
			}
			for i := range tc.want {
				if fmt.Sprint(ans.Rows[i]) != fmt.Sprint(tc.want[i]) {
					t.Errorf("row %d: %v, want %v", i, ans.Rows[i], tc.want[i])
				}
			}
			if ans.Truncated {
				t.Error("truncated, want every group")
			}
		})
	}

	t.Run("limit truncates the groups", func(t *testing.T) {
		var ans struct {
			Rows      []map[string]any `json:"rows"`
			Truncated bool             `json:"truncated"`
		}
		e.getJSON(histQuery("/api/v1/violations", histWindow("group_by", "rule", "limit", "3")...), "application/json; charset=utf-8", &ans)
		if len(ans.Rows) != 3 || !ans.Truncated {
			t.Errorf("%d rows, truncated %v; want 3, true", len(ans.Rows), ans.Truncated)
		}
	})
}

func TestViolationsCSV(t *testing.T) {
	e := newHistEnv(t)
	e.insertFixture()
	tests := []struct {
		name   string
		params []string
		header []string
		rows   [][]string
		// wantTotal and wantTruncated are the X-Total-Count and X-Truncated headers ("": absent)
		wantTotal, wantTruncated string
	}{
		{"alerts", histWindow("format", "csv", "rule", "speeding"),
			[]string{"alert_id", "rule", "severity", "status", "vehicle_id", "company", "permit_id", "place", "district", "start", "end", "lat", "lon", "value", "limit", "evidence"},
			[][]string{
				{"A2", "speeding", "warning", "open", "粤B10002", "Beta Transport", "P-粤B10002", "route-7", "nanshan", "2026-11-23T09:05:00+08:00", "", "22.641", "114.101", "50", "40", "evidence of A2"},
				{"A1", "speeding", "severe", "resolved", "粤B10001", "Alpha Haulage", "P-粤B10001", "site-A", "futian", "2026-11-23T08:15:00.250+08:00", "2026-11-23T08:20:00+08:00", "22.64", "114.1", "50", "40", "evidence of A1"},
			}, "2", ""},
		{"a page of alerts", histWindow("format", "csv", "limit", "1"),
			[]string{"alert_id", "rule", "severity", "status", "vehicle_id", "company", "permit_id", "place", "district", "start", "end", "lat", "lon", "value", "limit", "evidence"},
			[][]string{{"A3", "overload", "severe", "resolved", "粤B10001", "Alpha Haulage", "P-粤B10001", "site-A", "futian", "2026-11-24T10:00:00+08:00", "2026-11-24T10:30:00+08:00", "22.7", "114.2", "50", "40", "evidence of A3"}},
			"5", ""},
		{"groups", histWindow("format", "csv", "group_by", "day,rule"), []string{"day", "rule", "violations"},
			[][]string{{"2026-11-22", "dwell", "1"}, {"2026-11-23", "speeding", "2"}, {"2026-11-24", "overload", "1"}, {"2026-11-24", "restricted_zone", "1"}}, "", "false"},
		{"empty", histWindow("format", "csv", "company", "Nobody"),
			[]string{"alert_id", "rule", "severity", "status", "vehicle_id", "company", "permit_id", "place", "district", "start", "end", "lat", "lon", "value", "limit", "evidence"},
			nil, "0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := histQuery("/api/v1/violations", tc.params...)
			code, h, body := e.get(histAnalystToken, path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			if ct := h.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if cd := h.Get("Content-Disposition"); cd != `attachment; filename="violations.csv"` {
				t.Errorf("Content-Disposition %q", cd)
			}
			if got := h.Get("X-Total-Count"); got != tc.wantTotal {
				t.Errorf("X-Total-Count %q, want %q", got, tc.wantTotal)
			}
			if got := h.Get("X-Truncated"); got != tc.wantTruncated {
				t.Errorf("X-Truncated %q, want %q", got, tc.wantTruncated)
			}
			// a byte-order mark first, so that Excel reads UTF-8 whatever the system's code page
			text, bom := strings.CutPrefix(string(body), "\ufeff")
			if !bom {
				t.Errorf("the CSV does not start with a byte-order mark: %q", body[:min(len(body), 8)])
			}
			recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
			if err != nil {
				t.Fatalf("the answer is not CSV: %v\n%s", err, body)
			}
			if !slices.Equal(recs[0], tc.header) {
				t.Errorf("header %v, want %v", recs[0], tc.header)
			}
			if len(recs)-1 != len(tc.rows) {
				t.Fatalf("%d rows, want %d:\n%s", len(recs)-1, len(tc.rows), body)
			}
			for i, want := range tc.rows {
				if !slices.Equal(recs[i+1], want) {
					t.Errorf("row %d: %q, want %q", i+1, recs[i+1], want)
				}
			}
		})
	}
}

func TestCSVText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"粤B10001", "粤B10001"},
		{"=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := csvText(tc.in); got != tc.want {
			t.Errorf("csvText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

type histGeoJSON struct {
	Type     string `json:"type"`
	Features []struct {
		Type     string `json:"type"`
		Geometry *struct {
			Type        string          `json:"type"`
			Coordinates json.RawMessage `json:"coordinates"`
		} `json:"geometry"`
		Properties map[string]any `json:"properties"`
	} `json:"features"`
}

func TestTrack(t *testing.T) {
	e := newHistEnv(t)
	e.insertFixture()
	const plate = "粤B10001"
	var fixes []histFix
	for i := range 5 {
		fixes = append(fixes, histFix{id: fmt.Sprintf("f%d", i), vehicle: plate, at: histAt(23, 8, 10+5*i, 0, 0),
			lat: 22.64 + float64(i)*0.001, lon: 114.10 + float64(i)*0.002})
	}
	// stored out of order, one fix twice, plus a fix outside the window and another vehicle's
	e.insertFixes(fixes[3], fixes[0], fixes[4], fixes[1])
	e.insertFixes(fixes[2], fixes[1],
		histFix{id: "f-late", vehicle: plate, at: histAt(23, 9, 0, 0, 0), lat: 22.7, lon: 114.3},
		histFix{id: "g0", vehicle: "粤B10002", at: histAt(23, 8, 12, 0, 0), lat: 22.5, lon: 114.0})
	// more fixes than the server's MaxRows
	var many []histFix
	for i := range histMaxRows + 1 {
		many = append(many, histFix{id: fmt.Sprintf("m%d", i), vehicle: "粤B20000", at: histAt(23, 12, 0, i, 0), lat: 22.6, lon: 114.1})
	}
	e.insertFixes(many...)

	tests := []struct {
		name       string
		plate      string
		from, to   time.Time
		wantPoints int // 0: no track feature
		firstFix   int // index in fixes of the first point
		wantFirst  string
		wantAlerts []string
	}{
		{"track and its alert", url.PathEscape("粤b·10001"), histAt(23, 8, 0, 0, 0), histAt(23, 9, 0, 0, 0), 5, 0, "2026-11-23T08:10:00+08:00", []string{"A1"}},
		{"window ends before a fix", plate, histAt(23, 8, 0, 0, 0), histAt(23, 8, 20, 0, 0), 2, 0, "2026-11-23T08:10:00+08:00", []string{"A1"}},
		{"one fix is a point", plate, histAt(23, 8, 30, 0, 0), histAt(23, 8, 31, 0, 0), 1, 4, "2026-11-23T08:30:00+08:00", nil},
		{"an open alert started before the window", url.PathEscape("粤B10002"), histAt(24, 0, 0, 0, 0), histAt(24, 1, 0, 0, 0), 0, 0, "", []string{"A2"}},
		{"nothing in the window", url.PathEscape("粤B10004"), histAt(23, 0, 0, 0, 0), histAt(24, 0, 0, 0, 0), 0, 0, "", nil},
	}
	t.Run("never seen", func(t *testing.T) {
		path := histQuery("/api/v1/vehicles/"+url.PathEscape("粤Z99999")+"/track", "from", histFrom.Format(time.RFC3339), "to", histTo.Format(time.RFC3339))
		if status, _, body := e.get(histAnalystToken, path); status != http.StatusNotFound || !strings.Contains(string(body), "never seen") {
			t.Errorf("track of a plate never seen: %d %s, want 404", status, body)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fc histGeoJSON
			path := histQuery("/api/v1/vehicles/"+tc.plate+"/track", "from", tc.from.Format(time.RFC3339), "to", tc.to.Format(time.RFC3339))
			e.getJSON(path, "application/geo+json", &fc)
			if fc.Type != "FeatureCollection" || fc.Features == nil {
				t.Fatalf("not a FeatureCollection with features: %+v", fc)
			}
			var alerts []string
			points := 0
			for _, f := range fc.Features {
				switch f.Properties["kind"] {
				case "track":
					points = int(f.Properties["points"].(float64))
					var coords [][2]float64
					if f.Geometry.Type == "Point" {
						var c [2]float64
						if err := json.Unmarshal(f.Geometry.Coordinates, &c); err != nil {
							t.Fatal(err)
						}
						coords = [][2]float64{c}
					} else if f.Geometry.Type != "LineString" {
						t.Fatalf("track geometry %s", f.Geometry.Type)
					} else if err := json.Unmarshal(f.Geometry.Coordinates, &coords); err != nil {
						t.Fatal(err)
					}
					if len(coords) != points {
						t.Errorf("%d coordinates, points says %d", len(coords), points)
					}
					for i, c := range coords {
						fx := fixes[tc.firstFix+i]
						if c != [2]float64{fx.lon, fx.lat} {
							t.Errorf("point %d: %v, want [lon, lat] of fix %s %v", i, c, fx.id, [2]float64{fx.lon, fx.lat})
						}
					}
					if f.Properties["plate"] != plate || f.Properties["first"] != tc.wantFirst ||
						f.Properties["from"] != tc.from.Format(time.RFC3339) || f.Properties["to"] != tc.to.Format(time.RFC3339) {
						t.Errorf("track properties %v", f.Properties)
					}
					last := fixes[tc.firstFix+points-1].at.Format(time.RFC3339)
					if f.Properties["last"] != last {
						t.Errorf("last %v, want %s", f.Properties["last"], last)
					}
				case "alert":
					alerts = append(alerts, f.Properties["alert_id"].(string))
					if f.Geometry == nil || f.Geometry.Type != "Point" {
						t.Errorf("alert geometry %+v, want a Point", f.Geometry)
					}
				default:
					t.Errorf("feature of kind %v", f.Properties["kind"])
				}
			}
			if points != tc.wantPoints {
				t.Errorf("%d points, want %d", points, tc.wantPoints)
			}
			if !slices.Equal(alerts, tc.wantAlerts) {
				t.Errorf("alerts %v, want %v", alerts, tc.wantAlerts)
			}
		})
	}

	t.Run("alert properties", func(t *testing.T) {
		var fc histGeoJSON
		e.getJSON(histQuery("/api/v1/vehicles/"+url.PathEscape(plate)+"/track", "from", fmt.Sprint(histAt(23, 8, 0, 0, 0).UnixMilli()),
			"to", fmt.Sprint(histAt(23, 9, 0, 0, 0).UnixMilli())), "application/geo+json", &fc)
		f := fc.Features[len(fc.Features)-1]
		want := map[string]any{"kind": "alert", "alert_id": "A1", "rule": "speeding", "severity": "severe", "status": "resolved",
			"start": "2026-11-23T08:15:00.250+08:00", "end": "2026-11-23T08:20:00+08:00", "evidence": "evidence of A1"}
		if fmt.Sprint(f.Properties) != fmt.Sprint(want) {
			t.Errorf("properties %v, want %v", f.Properties, want)
		}
		if string(f.Geometry.Coordinates) != "[114.1,22.64]" {
			t.Errorf("coordinates %s, want [114.1,22.64]", f.Geometry.Coordinates)
		}
	})

	t.Run("too many points", func(t *testing.T) {
		path := histQuery("/api/v1/vehicles/"+url.PathEscape("粤B20000")+"/track", "from", histAt(23, 0, 0, 0, 0).Format(time.RFC3339),
			"to", histAt(24, 0, 0, 0, 0).Format(time.RFC3339))
		code, _, body := e.get(histAnalystToken, path)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "narrow the window") {
			t.Errorf("status %d %s, want 422 telling to narrow the window", code, body)
		}
	})

	t.Run("lookups are audited", func(t *testing.T) {
		e.srv.store.mu.Lock()
		recs := slices.Clone(e.srv.store.audit)
		e.srv.store.mu.Unlock()
		found := false
		for _, r := range recs {
			if r.Plate == plate && r.Actor == "ana" && r.Role == "analyst" && r.Status == http.StatusOK && strings.HasSuffix(r.Path, "/track") {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit record of ana's look at %s's track in %+v", plate, recs)
		}
	})
}

func TestHeatmap(t *testing.T) {
	e := newHistEnv(t)
	e.insertFixture()
	// alerts in 101 cells of 50 m, in October
	var spread []histAlert
	for i := range histMaxRows + 1 {
		spread = append(spread, histAlert{id: fmt.Sprintf("S%d", i), rule: "spillage", severity: "warning", status: "open", vehicle: "粤B30000",
			start: time.Date(2026, 10, 1, 0, i, 0, 0, histZone), lat: 22.5 + float64(i)*0.01, lon: 114.0, version: 1})
	}
	e.insertAlerts(spread...)

	originLat := e.city.Origin.Lat()
	tests := []struct {
		name   string
		params []string
		cellM  float64
		alerts []histAlert
	}{
		{"default cells", histWindow(), 500, histInWindow},
		{"one rule", histWindow("rule", "speeding"), 500, []histAlert{histA1v2, histA2}},
		{"large cells", histWindow("cell_m", "20000"), 20000, histInWindow},
		{"small cells", histWindow("cell_m", "50", "rule", "speeding,overload"), 50, []histAlert{histA1v2, histA2, histA3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dlat := tc.cellM / 111320
			dlon := tc.cellM / (111320 * math.Cos(originLat*math.Pi/180))
			want := map[[2]int64]float64{}
			for _, a := range tc.alerts {
				want[[2]int64{int64(math.Floor(a.lat / dlat)), int64(math.Floor(a.lon / dlon))}]++
			}
			var fc histGeoJSON
			e.getJSON(histQuery("/api/v1/heatmap", tc.params...), "application/geo+json", &fc)
			sum := 0.0
			for _, f := range fc.Features {
				if f.Geometry == nil || f.Geometry.Type != "Polygon" {
					t.Fatalf("cell geometry %+v, want a Polygon", f.Geometry)
				}
				var rings [][][2]float64
				if err := json.Unmarshal(f.Geometry.Coordinates, &rings); err != nil {
					t.Fatal(err)
				}
				if len(rings) != 1 || len(rings[0]) != 5 || rings[0][0] != rings[0][4] {
					t.Fatalf("cell %v is not one closed ring of 4 corners", rings)
				}
				if f.Properties["cell_m"] != tc.cellM {
					t.Errorf("cell_m %v, want %g", f.Properties["cell_m"], tc.cellM)
				}
				n := f.Properties["violations"].(float64)
				sum += n
				// the cell is the one of the alerts it counts
				sw := rings[0][0]
				key := [2]int64{int64(math.Round(sw[1] / dlat)), int64(math.Round(sw[0] / dlon))}
				if want[key] != n {
					t.Errorf("cell %v counts %g violations, want %g", key, n, want[key])
				}
				delete(want, key)
			}
			if int(sum) != len(tc.alerts) {
				t.Errorf("the cells count %g violations, want the %d distinct alerts", sum, len(tc.alerts))
			}
			if len(want) > 0 {
				t.Errorf("cells missing: %v", want)
			}
		})
	}

	t.Run("too many cells", func(t *testing.T) {
		path := histQuery("/api/v1/heatmap", "from", "2026-10-01T00:00:00+08:00", "to", "2026-10-02T00:00:00+08:00", "cell_m", "50")
		code, _, body := e.get(histAnalystToken, path)
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "cell_m") {
			t.Errorf("status %d %s, want 422 suggesting larger cells", code, body)
		}
	})
}

func TestHistoryBadRequests(t *testing.T) {
	e := newHistEnv(t)
	win := "from=2026-11-22T00:00:00%2B08:00&to=2026-11-25T00:00:00%2B08:00"
	track := "/api/v1/vehicles/" + url.PathEscape("粤B10001") + "/track?"
	tests := []struct {
		name, path string
		wantStatus int
		wantInMsg  string
	}{
		{"violations without from", "/api/v1/violations?to=2026-11-25T00:00:00Z", 400, "from is required"},
		{"violations with a bad to", "/api/v1/violations?from=2026-11-22T00:00:00Z&to=tomorrow", 400, "to must be RFC 3339"},
		{"from after to", "/api/v1/violations?from=2026-11-25T00:00:00Z&to=2026-11-22T00:00:00Z", 400, "from (2026-11-25T00:00:00Z) must be before to"},
		{"window too long", "/api/v1/violations?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "longer than"},
		{"unknown rule", "/api/v1/violations?" + win + "&rule=speeding,flying", 400, `rule "flying" is not one of`},
		{"unknown severity", "/api/v1/violations?" + win + "&severity=critical", 400, `severity "critical"`},
		{"unknown group", "/api/v1/violations?" + win + "&group_by=day,week", 400, `group_by: "week" is not one of day, hour, rule`},
		{"group twice", "/api/v1/violations?" + win + "&group_by=rule,rule", 400, `group_by lists "rule" twice`},
		{"format", "/api/v1/violations?" + win + "&format=xml", 400, `format must be json or csv, got "xml"`},
		{"limit zero", "/api/v1/violations?" + win + "&limit=0", 400, "limit must be an integer within [1, 100]"},
		{"limit over max_rows", "/api/v1/violations?" + win + "&limit=101", 400, "limit must be an integer within [1, 100]"},
		{"bad vehicle", "/api/v1/violations?" + win + "&vehicle=%20-%20", 400, "vehicle"},
		{"long company", "/api/v1/violations?" + win + "&company=" + strings.Repeat("x", 300), 400, "company must be at most 256 bytes"},
		{"errors together", "/api/v1/violations?rule=x&format=y", 400, "format must be"},
		{"track without window", track, 400, "from is required"},
		{"track with a bad plate", "/api/v1/vehicles/%20-%20/track?" + win, 400, "plate"},
		{"heatmap cell too small", "/api/v1/heatmap?" + win + "&cell_m=10", 400, "cell_m must be a number within [50, 20000]"},
		{"heatmap cell not a number", "/api/v1/heatmap?" + win + "&cell_m=big", 400, "cell_m"},
		{"heatmap unknown rule", "/api/v1/heatmap?" + win + "&rule=nope", 400, `rule "nope"`},
		{"heatmap without to", "/api/v1/heatmap?from=2026-11-22T00:00:00Z", 400, "to is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := e.get(histAnalystToken, tc.path)
			if code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", code, tc.wantStatus, body)
			}
			var eb errorBody
			if err := json.Unmarshal(body, &eb); err != nil || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Fatalf("not a JSON error: %v %s", err, body)
			}
			if !strings.Contains(eb.Error, tc.wantInMsg) {
				t.Errorf("error %q does not say %q", eb.Error, tc.wantInMsg)
			}
		})
	}
}

func TestHistoryAccessAndFailures(t *testing.T) {
	e := newHistEnv(t)
	e.insertFixture()
	win := "from=2026-11-22T00:00:00%2B08:00&to=2026-11-25T00:00:00%2B08:00"
	paths := []string{"/api/v1/violations?" + win, "/api/v1/vehicles/" + url.PathEscape("粤B10001") + "/track?" + win, "/api/v1/heatmap?" + win}
	noStore := e.newServer(nil).Handler()
	badDB := e.newServer(NewStore(e.conn, "api_hist_missing_db", histLogger())).Handler()
	tests := []struct {
		name       string
		h          http.Handler
		token      string
		wantStatus int
		wantInMsg  string
	}{
		{"analyst", e.h, histAnalystToken, 200, ""},
		{"admin", e.h, histAdminToken, 200, ""},
		{"squad is refused", e.h, histSquadToken, 403, "role squad may not use"},
		{"no token", e.h, "", 401, "missing bearer token"},
		{"no store", noStore, histAnalystToken, 503, "no ClickHouse store configured"},
		{"ClickHouse fails", badDB, histAnalystToken, 503, "the history (ClickHouse) is not available now"},
	}
	for _, tc := range tests {
		for _, p := range paths {
			t.Run(tc.name+" "+p[:strings.IndexByte(p, '?')], func(t *testing.T) {
				req := httptest.NewRequest(http.MethodGet, p, nil)
				if tc.token != "" {
					req.Header.Set("Authorization", "Bearer "+tc.token)
				}
				rec := httptest.NewRecorder()
				tc.h.ServeHTTP(rec, req)
				if rec.Code != tc.wantStatus {
					t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
				}
				if tc.wantInMsg != "" && !strings.Contains(rec.Body.String(), tc.wantInMsg) {
					t.Errorf("answer %s does not say %q", rec.Body, tc.wantInMsg)
				}
			})
		}
	}
}
