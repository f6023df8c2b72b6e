package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/tables"
)

// BenchmarkKPIYear times every KPI endpoint over a generated year of a large city (docs/kpis.md,
// Speed): 10,000 trucks of 500 companies in the city's districts, 3,000,000 alerts stored as
// two versions each (6,000,000 rows), about 6,000,000 actions, 11,000,000 gate exits, the km of
// 364 days rolled up (3,640,000 rows of vehicle_km_daily) and one last day of positions at full
// density (10,000 trucks × 1,200 fixes = 12,000,000 rows) that the scorecards read raw. The
// history is generated inside ClickHouse (INSERT … SELECT FROM numbers), which takes a few
// minutes; the scorecards are timed reading the last day raw, from its hours rolled up but the
// last (vehicle_km_hourly) and from vehicle_km_daily. MUCKWATCH_KPI_BENCH_SCALE scales every count (0.01 for a quick run). Not part of
// `make test`:
//
//	go test -run '^$' -bench BenchmarkKPIYear -benchtime 3x -timeout 60m ./api
func BenchmarkKPIYear(b *testing.B) {
	scale := 1.0
	if v := os.Getenv("MUCKWATCH_KPI_BENCH_SCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("MUCKWATCH_KPI_BENCH_SCALE=%q is not a positive number", v)
		}
		scale = f
	}
	n := func(x float64) int64 { return max(1, int64(x*scale)) }
	vehicles, companies, alerts, exits, fixesPerDay := n(10_000), n(500), n(3_000_000), n(11_000_000), int64(1200)

	e := newBenchEnv(b)
	ctx := context.Background()
	loc := kpiZone
	from := time.Date(2025, 12, 1, 0, 0, 0, 0, loc)
	to := from.AddDate(1, 0, 0)
	lastDay := to.AddDate(0, 0, -1)
	yearMs := to.UnixMilli() - from.UnixMilli()
	c := e.city
	var districts, sites []string
	for _, d := range c.Districts {
		districts = append(districts, d.ID)
	}
	sites = constructionSites(c)

	exec := func(what, sql string, args ...any) {
		b.Helper()
		start := time.Now()
		if err := e.conn.Exec(ctx, sql, args...); err != nil {
			b.Fatalf("cannot generate %s: %v", what, err)
		}
		b.Logf("generated %s in %s", what, time.Since(start).Round(time.Millisecond))
	}
	rules := []string{"speeding", "route_deviation", "dwell", ruleUnlicensed, ruleTripUnclosed, "restricted_zone", "overload", "signal_lost"}
	for version := 1; version <= 2; version++ {
		exec(fmt.Sprintf("%d alerts (version %d)", alerts, version), tables.Alerts.Insert(e.db)+
			" SELECT concat('A', toString(number)), arrayElement(?, toUInt32(cityHash64(number, 1) % 8) + 1),"+
			" arrayElement(['severe', 'warning', 'info'], toUInt32(cityHash64(number, 2, ?) % 3) + 1), 'in_event', 'open',"+
			" concat('V', toString(veh)), concat('C', toString(veh % ?)), '', '', arrayElement(?, toUInt32(cityHash64(number, 5) % ?) + 1),"+
			" toDateTime(intDiv(ms, 1000)), ms, toDateTime(0), toInt64(0), 22.6, 114.1, 1.0, 1.0, '', toUInt64(?), toDateTime(intDiv(ms, 1000)), ms"+
			" FROM (SELECT number, cityHash64(number, 3) % ? AS veh, toInt64(? + cityHash64(number, 4) % ?) AS ms FROM system.numbers LIMIT ?)",
			rules, version, companies, districts, len(districts), version, vehicles, from.UnixMilli(), yearMs, alerts)
	}
	// actions: for 5 alerts in 6, a first action (dispatch to one of 300 officers, or acknowledge)
	// 1–90 min after the start, then for 2 in 3 of those a resolve (with an outcome half the time)
	// or a dismissal, 5–240 min later
	exec("actions", tables.AlertActions.Insert(e.db)+
		" SELECT concat('A', toString(a)), act, act, 'sup', 'supervisor', if(act = 'dispatch', concat('OFF-', toString(cityHash64(a, 7) % 300)), ''),"+
		" multiIf(act = 'dismiss', arrayElement(['false_positive', 'gps_error', 'duplicate'], toUInt32(cityHash64(a, 8) % 3) + 1), act = 'resolve' AND cityHash64(a, 9) % 2 = 0, 'fined', ''),"+
		" toDateTime(intDiv(at, 1000)), at FROM (SELECT intDiv(number, 2) AS a, number % 2 AS step,"+
		" toInt64(? + cityHash64(a, 4) % ?) AS start,"+
		" if(step = 0, if(cityHash64(a, 10) % 2 = 0, 'dispatch', 'acknowledge'), if(cityHash64(a, 11) % 4 = 0, 'dismiss', 'resolve')) AS act,"+
		" start + toInt64(60000 + cityHash64(a, 12) % 5340000) + if(step = 1, toInt64(300000 + cityHash64(a, 13) % 14100000), toInt64(0)) AS at"+
		" FROM system.numbers LIMIT ? ) WHERE cityHash64(a, 14) % 6 != 0 AND (step = 0 OR cityHash64(a, 15) % 3 != 0)",
		from.UnixMilli(), yearMs, 2*alerts)
	exec(fmt.Sprintf("%d gate exits", exits), "INSERT INTO "+tables.Events.In(e.db)+" ("+tables.Events.List("event_id", "vehicle_id", "ts", "ts_ms", "kind", "site_id")+")"+
		" SELECT concat('E', toString(number)), concat('V', toString(number % ?)), toDateTime(intDiv(ms, 1000)), ms, 'gate_exit', arrayElement(?, toUInt32(cityHash64(number, 16) % ?) + 1)"+
		" FROM (SELECT number, toInt64(? + cityHash64(number, 17) % ?) AS ms FROM system.numbers LIMIT ?)",
		vehicles, sites, len(sites), from.UnixMilli(), yearMs, exits)
	days := int64(to.Sub(from).Hours()/24) - 1
	exec(fmt.Sprintf("%d rows of vehicle_km_daily (%d days)", vehicles*days, days), tables.VehicleKmDaily.Insert(e.db)+
		" SELECT toDate(?) + intDiv(number, ?), concat('V', toString(number % ?)), toFloat64(50 + cityHash64(number, 18) % 250), toUInt64(1000), now()"+
		" FROM system.numbers LIMIT ?", from.Format(time.DateOnly), vehicles, vehicles, vehicles*days)
	exec("the roll-up's day marks", tables.VehicleKmDaily.Insert(e.db)+" SELECT toDate(?) + number, '', 0.0, toUInt64(0), now() FROM system.numbers LIMIT ?",
		from.Format(time.DateOnly), days)
	exec(fmt.Sprintf("%d positions of the last day", vehicles*fixesPerDay), "INSERT INTO "+tables.Positions.In(e.db)+" ("+tables.Positions.List("fix_id", "vehicle_id", "ts", "ts_ms", "lat", "lon", "speed_kmh")+")"+
		" SELECT concat('F', toString(number)), concat('V', toString(v)), toDateTime(intDiv(ms, 1000)), ms, 22.5 + (v % 100) / 500 + k * 0.00005, 114.0 + intDiv(v, 100) / 500, 30"+
		" FROM (SELECT number, number % ? AS v, intDiv(number, ?) AS k, toInt64(? + 6 * 3600000 + k * 30000) AS ms FROM system.numbers LIMIT ?)",
		vehicles, vehicles, lastDay.UnixMilli(), vehicles*fixesPerDay)
	settled := dayFloor(to.Add(-e.srv.cfg.KPI.HandlingSettle), loc)
	start := time.Now()
	for d := from; d.Before(settled); d = d.AddDate(0, 1, 0) { // a month at a time
		if err := e.srv.store.RollUpDaily(ctx, d, minTime(d.AddDate(0, 1, 0), settled), loc, e.srv.cfg.AckWithin, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("rolled up the alerts and gate exits of %s to %s in %s", from.Format(time.DateOnly), settled.Format(time.DateOnly), time.Since(start).Round(time.Millisecond))
	for _, tbl := range []string{"alerts", "alert_actions", "handling_daily", "vehicle_violations_daily", "events", "vehicle_exits_daily", "vehicle_km_daily", "positions"} {
		var rows uint64
		if err := e.conn.QueryRow(ctx, "SELECT count() FROM "+e.db+"."+tbl).Scan(&rows); err != nil {
			b.Fatal(err)
		}
		b.Logf("%s: %d rows", tbl, rows)
	}

	year := []string{"from", from.Format(time.RFC3339), "to", to.Format(time.RFC3339)}
	month := []string{"from", to.AddDate(0, -1, 0).Format(time.RFC3339), "to", to.Format(time.RFC3339)}
	at := lastDay.Format(time.DateOnly)
	type request struct{ name, path string }
	serve := func(prefix string, reqs []request) {
		for _, tc := range reqs {
			b.Run(prefix+tc.name, func(b *testing.B) {
				var size int
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, tc.path, nil)
					req.Header.Set("Authorization", "Bearer "+histAnalystToken)
					rec := httptest.NewRecorder()
					e.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("GET %s: %d %s", tc.path, rec.Code, rec.Body.String())
					}
					size = rec.Body.Len()
				}
				b.ReportMetric(float64(size), "answer-bytes")
			})
		}
	}
	scorecards := []request{
		{"scorecards/year/company/month", histQuery("/api/v1/scorecards", append(year, "of", "company", "interval", "month")...)},
		{"scorecards/year/vehicle/all", histQuery("/api/v1/scorecards", append(year, "of", "vehicle")...)},
		{"scorecards/month/company/week", histQuery("/api/v1/scorecards", append(month, "of", "company", "interval", "week")...)},
		{"rankings/companies/month", histQuery("/api/v1/rankings", "of", "companies", "period", "month", "at", at)},
		{"rankings/companies/week", histQuery("/api/v1/rankings", "of", "companies", "period", "week", "at", at)},
	}
	serve("", append([]request{
		{"handling/year/district/month", histQuery("/api/v1/kpis/handling", append(year, "by", "district", "interval", "month")...)},
		{"handling/year/unit/week", histQuery("/api/v1/kpis/handling", append(year, "by", "unit", "interval", "week")...)},
		{"handling/month/district/day", histQuery("/api/v1/kpis/handling", append(month, "by", "district", "interval", "day")...)},
		{"rankings/districts/month", histQuery("/api/v1/rankings", "of", "districts", "period", "month", "at", at)},
	}, scorecards...))
	// the same scorecards once the last day's hours up to 15:00 are rolled up (as at 15:30): its
	// fixes run from 06:00 to 16:00, so the hour going on, read from positions, holds a tenth
	// of them
	b.Run("rollup/km-one-hour", func(b *testing.B) {
		for b.Loop() {
			if err := e.srv.store.RollUpKmHour(ctx, lastDay.Add(12*time.Hour), loc, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	start = time.Now()
	for h := lastDay; h.Before(lastDay.Add(15 * time.Hour)); h = h.Add(time.Hour) {
		if err := e.srv.store.RollUpKmHour(ctx, h, loc, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("rolled up 15 hours of the last day's km in %s", time.Since(start).Round(time.Millisecond))
	serve("km-hourly/", scorecards)
	b.Run("rollup/km-one-day", func(b *testing.B) {
		for b.Loop() {
			if err := e.srv.store.RollUpKm(ctx, lastDay, loc, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	// the same scorecards once the last day's km is rolled up too (an hour after it ended)
	serve("km-rolled/", scorecards)
	b.Run("rollup/alerts-one-day", func(b *testing.B) {
		for b.Loop() {
			if err := e.srv.store.RollUpDaily(ctx, settled, settled.AddDate(0, 0, 1), loc, e.srv.cfg.AckWithin, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rollup/handling-one-old-day", func(b *testing.B) { // as after a late action
		for b.Loop() {
			if err := e.srv.store.RollUpHandling(ctx, from.AddDate(0, 0, 30), from.AddDate(0, 0, 31), loc, e.srv.cfg.AckWithin, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rollup/late-actions-check", func(b *testing.B) { // the actions of the last 15 minutes
		for b.Loop() {
			if _, err := e.srv.store.LateHandlingDays(ctx, to.Add(-15*time.Minute), loc, lateMargin); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// newBenchEnv is newHistEnv for a benchmark, with the timeouts of a large query.
func newBenchEnv(b *testing.B) *histEnv {
	b.Helper()
	e := newHistEnv(b)
	store := NewStore(&slowQueryLog{Conn: e.conn, b: b}, e.db, histLogger())
	store.timeout = 5 * time.Minute
	e.srv = e.newServerWith(store, func(c *Config) {
		c.QueryTimeout = 5 * time.Minute
		c.MaxWindow = 400 * 24 * time.Hour
	})
	e.h = e.srv.Handler()
	return e
}

// slowQueryLog logs the queries that take longer than a second (MUCKWATCH_KPI_BENCH_SLOW=1).
type slowQueryLog struct {
	driver.Conn
	b *testing.B
}

func (l *slowQueryLog) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	rows, err := l.Conn.Query(ctx, query, args...)
	if err != nil || os.Getenv("MUCKWATCH_KPI_BENCH_SLOW") == "" {
		return rows, err
	}
	return &timedRows{Rows: rows, start: time.Now(), query: query, b: l.b}, nil
}

// timedRows logs its query's time when it is closed.
type timedRows struct {
	driver.Rows
	start time.Time
	query string
	b     *testing.B
}

func (r *timedRows) Close() error {
	if d := time.Since(r.start); d > 200*time.Millisecond {
		r.b.Logf("%s: %.400s", d.Round(time.Millisecond), r.query)
	}
	return r.Rows.Close()
}
