package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/backoff"
	"github.com/muckwatch/muckwatch/internal/chinsert"
	"github.com/muckwatch/muckwatch/record"
)

func count(t *testing.T, c *ClickHouse, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := c.Conn().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenClickHouse(t *testing.T) {
	c := openTestDB(t, nil, nil)
	if v := c.ServerVersion(); !regexpVersion.MatchString(v) {
		t.Errorf("ServerVersion() = %q", v)
	}
	t.Logf("ClickHouse %s", c.ServerVersion())
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestOpenClickHouseFails(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry() // shared: a failed open registers nothing, so it can be retried
	f := func(cfg ClickHouseConfig, want string) {
		t.Helper()
		_, err := OpenClickHouse(ctx, cfg, nil, reg)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenClickHouse(%+v) = %v, want an error with %q", cfg, err, want)
		}
	}
	f(ClickHouseConfig{}, "addr: at least one")
	f(ClickHouseConfig{Addr: []string{chAddr}, PasswordEnv: "MUCKWATCH_TEST_UNSET_PASSWORD"}, "MUCKWATCH_TEST_UNSET_PASSWORD")
	// nothing listens there
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f(ClickHouseConfig{Addr: []string{addr}, DialTimeout: time.Second}, "cannot ping ClickHouse")
	f(ClickHouseConfig{Addr: []string{addr}, DialTimeout: time.Second}, "cannot ping ClickHouse")
	c, err := OpenClickHouse(ctx, ClickHouseConfig{Addr: []string{chAddr}}, nil, reg)
	if err != nil {
		t.Fatalf("OpenClickHouse after failed attempts: %v", err)
	}
	c.Close()
}

func TestMigrateIdempotent(t *testing.T) {
	ctx := context.Background()
	c := openTestDB(t, nil, nil) // migrated once
	if err := c.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	got, err := c.AppliedMigrations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Migrations(c.Database())
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, m := range ms[1:] {
		want = append(want, m.Version)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("applied migrations = %v, want %v", got, want)
	}
	if n := count(t, c, "SELECT count() FROM "+c.Database()+".schema_migrations FINAL"); n != uint64(len(want)) {
		t.Errorf("schema_migrations has %d rows, want %d", n, len(want))
	}
	rows, err := c.Conn().Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ? ORDER BY name", c.Database())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	tables := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		tables[name] = engine
	}
	wantTables := map[string]string{
		"schema_migrations":        "ReplacingMergeTree",
		"positions":                "ReplacingMergeTree",
		"events":                   "ReplacingMergeTree",
		"officer_positions":        "ReplacingMergeTree",
		"rejects":                  "ReplacingMergeTree",
		"alerts":                   "ReplacingMergeTree",
		"alert_changes":            "ReplacingMergeTree",
		"violations_daily":         "AggregatingMergeTree",
		"violations_daily_mv":      "MaterializedView",
		"alert_actions":            "ReplacingMergeTree",
		"api_audit":                "MergeTree",
		"alert_feed":               "ReplacingMergeTree",
		"vehicle_km_daily":         "ReplacingMergeTree",
		"alert_handling":           "ReplacingMergeTree",
		"kpi_rollups":              "ReplacingMergeTree",
		"handling_daily":           "ReplacingMergeTree",
		"vehicle_violations_daily": "ReplacingMergeTree",
		"vehicle_exits_daily":      "ReplacingMergeTree",
		"vehicle_km_hourly":        "ReplacingMergeTree",
	}
	if !reflect.DeepEqual(tables, wantTables) {
		t.Errorf("tables = %v, want %v", tables, wantTables)
	}
}

func TestWriteReadBack(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	c := openTestDB(t, reg, nil)
	db := c.Database()
	b := testBatch()
	if err := c.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	wantCounts := map[string]uint64{"positions": 6, "events": 1, "officer_positions": 1, "alerts": 1, "alert_changes": 1, "rejects": 1}
	for table, want := range wantCounts {
		if n := count(t, c, "SELECT count() FROM "+db+"."+table); n != want {
			t.Errorf("%s has %d rows, want %d", table, n, want)
		}
		if got := metricValue(t, c.m.rows.WithLabelValues(table)); got != float64(want) {
			t.Errorf("muckwatch_clickhouse_rows_total{table=%q} = %v, want %d", table, got, want)
		}
	}
	if up := metricValue(t, c.m.up); up != 1 {
		t.Errorf("muckwatch_clickhouse_up = %v", up)
	}

	// every fix under its id: its event_id, or the id derived from plate and device time
	var ids []string
	idRows, err := c.Conn().Query(ctx, "SELECT fix_id FROM "+db+".positions FINAL ORDER BY fix_id")
	if err != nil {
		t.Fatal(err)
	}
	for idRows.Next() {
		var id string
		if err := idRows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(idRows.Err(), idRows.Close()); err != nil {
		t.Fatal(err)
	}
	var wantIDs []string
	for i := range b.Fixes {
		wantIDs = append(wantIDs, b.Fixes[i].ID())
	}
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) || !slices.Contains(ids, "粤B12345@"+strconv.FormatInt(b.Fixes[3].Time.UnixMilli(), 10)) {
		t.Errorf("fix ids stored %q, want %q", ids, wantIDs)
	}

	// a fix sent without event_id, exactly, with its millisecond device time
	f := b.Fixes[3]
	var (
		fixID, vehicle, topic             string
		ts, ingested                      time.Time
		tsMs, offset                      int64
		lat, lon                          float64
		speed, heading                    float32
		hasSpeed, hasHeading, acc, lifted uint8
		alarm                             uint32
		partition                         int32
	)
	err = c.Conn().QueryRow(ctx, `SELECT fix_id, vehicle_id, ts, ts_ms, lat, lon, speed_kmh, has_speed, heading,
		has_heading, acc, lifted, alarm, topic, kafka_partition, kafka_offset, ingested_at
		FROM `+db+`.positions FINAL WHERE vehicle_id = ? AND fix_id = ?`, f.VehicleID, f.ID()).
		Scan(&fixID, &vehicle, &ts, &tsMs, &lat, &lon, &speed, &hasSpeed, &heading, &hasHeading, &acc, &lifted,
			&alarm, &topic, &partition, &offset, &ingested)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{fixID, vehicle, ts.Unix(), time.UnixMilli(tsMs).UTC(), lat, lon, speed, hasSpeed, heading, hasHeading, acc, lifted, alarm, topic, partition, offset}
	want := []any{f.ID(), f.VehicleID, f.Time.Unix(), f.Time, f.Lat, f.Lon, f.SpeedKmh, uint8(1), f.Heading, uint8(0), uint8(1), uint8(0), f.Alarm, f.Src.Topic, f.Src.Partition, f.Src.Offset}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("positions row\n got %v\nwant %v", got, want)
	}
	if d := time.Since(ingested); d < -time.Minute || d > time.Minute {
		t.Errorf("ingested_at = %v, not now", ingested)
	}

	// the event, the officer position and the reject's original bytes
	var kind, site string
	var loadKg float64
	var conf float32
	var evMs int64
	if err := c.Conn().QueryRow(ctx, "SELECT kind, site_id, load_kg, confidence, ts_ms FROM "+db+".events FINAL").
		Scan(&kind, &site, &loadKg, &conf, &evMs); err != nil {
		t.Fatal(err)
	}
	if e := b.Events[0]; kind != "weigh" || site != e.SiteID || loadKg != e.LoadKg || conf != e.Confidence || evMs != e.Time.UnixMilli() {
		t.Errorf("events row = %q %q %v %v %v", kind, site, loadKg, conf, evMs)
	}
	var officer string
	var available uint8
	var offMs int64
	if err := c.Conn().QueryRow(ctx, "SELECT officer_id, available, ts_ms FROM "+db+".officer_positions FINAL").
		Scan(&officer, &available, &offMs); err != nil {
		t.Fatal(err)
	}
	if o := b.Officers[0]; officer != o.OfficerID || available != 1 || offMs != o.Time.UnixMilli() {
		t.Errorf("officer_positions row = %q %v %v", officer, available, offMs)
	}
	var key, value, reason string
	if err := c.Conn().QueryRow(ctx, "SELECT key, value, reason FROM "+db+".rejects FINAL").Scan(&key, &value, &reason); err != nil {
		t.Fatal(err)
	}
	if r := b.Rejects[0]; key != string(r.Key) || value != string(r.Value) || reason != string(r.Reason) {
		t.Errorf("rejects row = %q %q %q", key, value, reason)
	}
	var endTime time.Time
	var endMs, startMs int64
	var company string
	if err := c.Conn().QueryRow(ctx, "SELECT end_time, end_ms, start_ms, company FROM "+db+".alerts FINAL").
		Scan(&endTime, &endMs, &startMs, &company); err != nil {
		t.Fatal(err)
	}
	if endTime.Unix() != 0 || endMs != 0 || startMs != base.UnixMilli() || company != b.Changes[0].Alert.Company {
		t.Errorf("alerts row of an open alert = end %v %d start %d %q", endTime, endMs, startMs, company)
	}

	// A replay of the same batch collapses: exact counts with FINAL now, plain counts after the
	// merge that OPTIMIZE … FINAL forces (ClickHouse runs it in the background on its own).
	if err := c.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	for table, want := range wantCounts {
		if n := count(t, c, "SELECT count() FROM "+db+"."+table+" FINAL"); n != want {
			t.Errorf("after a replay %s FINAL has %d rows, want %d", table, n, want)
		}
		if err := c.Conn().Exec(ctx, "OPTIMIZE TABLE "+db+"."+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
		if n := count(t, c, "SELECT count() FROM "+db+"."+table); n != want {
			t.Errorf("after a replay and OPTIMIZE FINAL %s has %d rows, want %d", table, n, want)
		}
	}
	if n := count(t, c, "SELECT uniqExact(fix_id) FROM "+db+".positions"); n != 6 {
		t.Errorf("uniqExact(fix_id) = %d", n)
	}
}

func TestWriteAlertVersions(t *testing.T) {
	ctx := context.Background()
	c := openTestDB(t, nil, nil)
	db := c.Database()
	opened := testAlert("a-1", 1, detectors.ChangeOpened)
	escalated := testAlert("a-1", 2, detectors.ChangeEscalated)
	escalated.Alert.Severity = detectors.SeveritySevere
	resolved := testAlert("a-1", 3, detectors.ChangeResolved)
	resolved.Alert.Severity = detectors.SeveritySevere
	other := testAlert("a-2", 1, detectors.ChangeOpened)
	other.Alert.VehicleID = "粤BD7788"
	// the opened change is written twice, as after a replay
	for _, changes := range [][]detectors.Change{{opened}, {opened, escalated}, {resolved, other}} {
		if err := c.Write(ctx, &Batch{Changes: changes}); err != nil {
			t.Fatal(err)
		}
	}
	var status, severity string
	var version uint64
	var endMs int64
	if err := c.Conn().QueryRow(ctx, `SELECT argMax(status, version), argMax(severity, version), max(version),
		argMax(end_ms, version) FROM `+db+`.alerts WHERE id = ?`, "a-1").Scan(&status, &severity, &version, &endMs); err != nil {
		t.Fatal(err)
	}
	if status != "resolved" || severity != "severe" || version != 3 || endMs != resolved.Alert.End.UnixMilli() {
		t.Errorf("latest version of a-1 = %s %s v%d end %d", status, severity, version, endMs)
	}
	if n := count(t, c, "SELECT count() FROM "+db+".alerts FINAL"); n != 2 {
		t.Errorf("alerts FINAL has %d rows, want 2", n)
	}
	if n := count(t, c, "SELECT count() FROM "+db+".alert_changes FINAL"); n != 4 {
		t.Errorf("alert_changes FINAL has %d rows, want 4", n)
	}
	var day time.Time
	var n uint64
	if err := c.Conn().QueryRow(ctx, `SELECT day, uniqExactMerge(alerts) FROM `+db+`.violations_daily
		WHERE rule = 'speeding' GROUP BY day`).Scan(&day, &n); err != nil {
		t.Fatal(err)
	}
	if n != 2 || day.Format(time.DateOnly) != base.Format(time.DateOnly) {
		t.Errorf("violations_daily = %v: %d alerts, want %s: 2", day, n, base.Format(time.DateOnly))
	}
	if n := count(t, c, `SELECT uniqExactMerge(alerts) FROM `+db+`.violations_daily WHERE company = ? AND district = ?`,
		opened.Alert.Company, opened.Alert.District); n != 2 {
		t.Errorf("violations_daily by company and district = %d, want 2", n)
	}
}

func TestWriteEmptyBatch(t *testing.T) {
	c := openTestDB(t, nil, nil)
	if err := c.Write(context.Background(), &Batch{}); err != nil {
		t.Fatal(err)
	}
}

// flakyProxy forwards TCP connections to ClickHouse, except that it can cut every open
// connection and refuse the next ones, as a restarting server or a broken network would.
type flakyProxy struct {
	l       net.Listener
	target  string
	refuse  atomic.Int64 // connections still to refuse
	stall   atomic.Bool  // hold new connections open without forwarding (a server that hangs)
	mu      sync.Mutex
	conns   []net.Conn
	wg      sync.WaitGroup
	accepts atomic.Int64
}

func newFlakyProxy(t *testing.T, target string) *flakyProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{l: l, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *flakyProxy) serve() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.accepts.Add(1)
		if p.refuse.Add(-1) >= 0 {
			in.Close()
			continue
		}
		if p.stall.Load() {
			p.mu.Lock()
			p.conns = append(p.conns, in)
			p.mu.Unlock()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { defer p.wg.Done(); io.Copy(out, in); out.Close() }()
		go func() { defer p.wg.Done(); io.Copy(in, out); in.Close() }()
	}
}

// cut closes every open connection.
func (p *flakyProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// writeAsPipeline writes b again until it succeeds, as the pipeline does with a failed write,
// within a bound.
func writeAsPipeline(ctx context.Context, c *ClickHouse, b *Batch) error {
	return backoff.Retry(ctx, backoff.Policy{Min: 20 * time.Millisecond, Attempts: 10}, func() error { return c.Write(ctx, b) }, nil)
}

// Write makes one attempt and fails fast, saying the table and the row count: the pipeline
// retries. A write after a transient failure counts as a retry and gets through once ClickHouse
// is back.
func TestWriteFailsFastThroughOutage(t *testing.T) {
	ctx := context.Background()
	p := newFlakyProxy(t, chAddr)
	reg := prometheus.NewRegistry()
	c := openTestDB(t, reg, func(cfg *ClickHouseConfig) { cfg.Addr = []string{p.l.Addr().String()} })
	retries := func() float64 { return metricValue(t, c.m.retries.WithLabelValues("positions")) }
	errs := func() float64 { return metricValue(t, c.m.errors.WithLabelValues("positions")) }

	// cut the pooled connections and refuse the next ones: the write fails at once
	p.cut()
	p.refuse.Store(1 << 40)
	b := testBatch()
	err := c.Write(ctx, b)
	if err == nil || !strings.Contains(err.Error(), "cannot insert 6 rows into positions: ") {
		t.Errorf("Write during an outage = %v", err)
	}
	if r, e := retries(), errs(); r != 0 || e != 1 {
		t.Errorf("one Write during an outage: %v retries, %v errors; want none and one: the caller retries", r, e)
	}
	if up := metricValue(t, c.m.up); up != 0 {
		t.Errorf("muckwatch_clickhouse_up = %v during an outage", up)
	}

	// The caller retries: a write gets through once the connections are accepted again.
	p.refuse.Store(1)
	if err := writeAsPipeline(ctx, c, b); err != nil {
		t.Fatalf("Write after the outage: %v", err)
	}
	if n := count(t, c, "SELECT count() FROM "+c.Database()+".positions FINAL"); n != uint64(len(b.Fixes)) {
		t.Errorf("positions has %d rows, want %d", n, len(b.Fixes))
	}
	if r, e := retries(), errs(); r < 1 || e != r {
		t.Errorf("positions: %v retries, %v errors; want at least 1 retry and one error per retry", r, e)
	}
	if up := metricValue(t, c.m.up); up != 1 {
		t.Errorf("muckwatch_clickhouse_up = %v after recovery", up)
	}

	// A write with its context ended fails at once with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.Write(cctx, b); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with an ended context = %v, want context.Canceled", err)
	}
}

// TestWriteReusesSentBatches: a table's insert is sent again with its column buffers emptied
// (nothing of the last insert goes with it); the caller's context ends a hung insert; and a batch
// kept across an outage is dropped when its send fails, the write retried with a new one.
func TestWriteReusesSentBatches(t *testing.T) {
	ctx := context.Background()
	p := newFlakyProxy(t, chAddr)
	c := openTestDB(t, nil, func(cfg *ClickHouseConfig) {
		cfg.Addr = []string{p.l.Addr().String()}
	})
	kept := func(what string, rows int) {
		t.Helper()
		batches := c.positions.ins.KeptRows()
		if n := len(batches); n != 1 {
			t.Fatalf("%s: %d positions batches kept, want 1", what, n)
		}
		for i, n := range batches[0] {
			if n != rows {
				t.Fatalf("%s: the kept batch's column %s holds %d rows, want the last insert's %d", what, c.positions.cols[i].name, n, rows)
			}
		}
	}
	fixes := func(from, n int) *Batch {
		b := &Batch{}
		for i := from; i < from+n; i++ {
			b.Fixes = append(b.Fixes, record.Fix{FixID: fmt.Sprintf("粤B00001-%d", i), VehicleID: "粤B00001",
				Time: base.Add(time.Duration(i) * time.Second), Lat: 22.5 + float64(i)*1e-3, Lon: 114,
				Src: record.Source{Shard: record.Shard{Topic: "muck.gps", Partition: 1}, Offset: int64(i)}})
		}
		return b
	}
	stored := func(what string, want int) {
		t.Helper()
		var got []string
		rows, err := c.Conn().Query(ctx, "SELECT fix_id, lat FROM "+c.Database()+".positions FINAL ORDER BY kafka_offset")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var lat float64
			if err := rows.Scan(&id, &lat); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%s %.3f", id, lat))
		}
		var wantRows []string
		for i := range want {
			wantRows = append(wantRows, fmt.Sprintf("粤B00001-%d %.3f", i, 22.5+float64(i)*1e-3))
		}
		if !reflect.DeepEqual(got, wantRows) {
			t.Fatalf("%s: positions holds %q, want %q", what, got, wantRows)
		}
	}

	if err := c.Write(ctx, fixes(0, 3)); err != nil {
		t.Fatal(err)
	}
	kept("first insert", 3)
	if err := c.Write(ctx, fixes(3, 2)); err != nil {
		t.Fatal(err)
	}
	kept("second insert", 2)
	stored("two inserts", 5)

	// A server that hangs under a kept batch: the insert is sent again on a new connection, which
	// never gets an answer; the caller's context ends the wait, at its deadline, not the
	// connection's timeouts (and no watch of clickhouse-go's reads the connection being set, which
	// the race detector would report).
	p.stall.Store(true)
	p.cut()
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	began := time.Now()
	err := c.Write(sctx, fixes(5, 2))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write to a hanging server = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Write to a hanging server returned %s after its context's deadline of 300ms", d)
	}
	p.stall.Store(false)
	p.cut() // the hung insert fails now; the next write starts afresh
	if err := c.Write(ctx, fixes(5, 2)); err != nil {
		t.Fatal(err)
	}
	kept("after a hung insert", 2)
	stored("after a hung insert", 7)
	errsBefore := metricValue(t, c.m.errors.WithLabelValues("positions"))

	// An outage under a kept batch: its send fails, it is dropped, a retry gets through.
	p.cut()
	p.refuse.Store(2)
	if err := writeAsPipeline(ctx, c, fixes(7, 4)); err != nil {
		t.Fatalf("Write through an outage: %v", err)
	}
	if e := metricValue(t, c.m.errors.WithLabelValues("positions")) - errsBefore; e < 1 {
		t.Errorf("%v failed positions inserts during the outage, want at least 1", e)
	}
	kept("after the outage", 4)
	stored("after the outage", 11)
}

func TestWriteDoesNotRetryBadData(t *testing.T) {
	ctx := context.Background()
	c := openTestDB(t, nil, nil)
	if err := c.Conn().Exec(ctx, "ALTER TABLE "+c.Database()+".events DROP COLUMN site_id"); err != nil {
		t.Fatal(err)
	}
	err := c.Write(ctx, testBatch())
	if err == nil || !strings.Contains(err.Error(), "cannot insert 1 rows into events: ") {
		t.Errorf("Write into a table without one of the columns = %v", err)
	}
	if err := c.Write(ctx, testBatch()); err == nil {
		t.Error("a second Write into a table without one of the columns succeeded")
	}
	if r := metricValue(t, c.m.retries.WithLabelValues("events")); r != 0 {
		t.Errorf("%v retries counted after a schema error", r)
	}
}

func TestTransient(t *testing.T) {
	f := func(err error, want bool) {
		t.Helper()
		if got := transient(err); got != want {
			t.Errorf("transient(%v) = %v, want %v", err, got, want)
		}
	}
	f(&clickhouse.Exception{Code: 252, Name: "DB::Exception", Message: "Too many parts"}, true)
	f(&clickhouse.Exception{Code: 241, Message: "Memory limit exceeded"}, true)
	f(&clickhouse.Exception{Code: 60, Message: "Table doesn't exist"}, false)
	f(&clickhouse.Exception{Code: 16, Message: "No such column"}, false)
	f(io.EOF, true)
	f(&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true)
	f(clickhouse.ErrBatchInvalid, false)
}

func TestBatchReset(t *testing.T) {
	b := testBatch()
	fixes := cap(b.Fixes)
	b.Reset()
	if b.Len() != 0 || cap(b.Fixes) != fixes {
		t.Errorf("after Reset: len %d, cap %d, want 0 and %d", b.Len(), cap(b.Fixes), fixes)
	}
	if full := b.Fixes[:1]; full[0].VehicleID != "" {
		t.Errorf("Reset kept the old records alive: %+v", full[0])
	}
}

// TestWriteKeepsSmallChangeBatches: the alerts' and alert changes' inserts leave their batches
// for the next insert after a write of up to keptChangeRows changes, and not after a larger one.
func TestWriteKeepsSmallChangeBatches(t *testing.T) {
	ctx := context.Background()
	c := openTestDB(t, nil, nil)
	changes := func(n int) *Batch {
		b := &Batch{}
		for i := range n {
			b.Changes = append(b.Changes, testAlert(fmt.Sprintf("a%d", i), 1, detectors.ChangeOpened))
		}
		return b
	}
	kept := func(what string, rows int) {
		t.Helper()
		for _, in := range []*chinsert.Insert{c.alerts.ins, c.changes.ins} {
			batches := in.KeptRows()
			switch {
			case rows == 0 && len(batches) != 0:
				t.Errorf("%s: %d batches kept, want none", what, len(batches))
			case rows > 0 && (len(batches) != 1 || batches[0][0] != rows):
				t.Errorf("%s: batches kept with %v rows, want one with %d", what, batches, rows)
			}
		}
	}
	if err := c.Write(ctx, changes(3)); err != nil {
		t.Fatal(err)
	}
	kept("a write of 3", 3)
	if err := c.Write(ctx, changes(keptChangeRows+1)); err != nil {
		t.Fatal(err)
	}
	kept("a write of one more than kept", 0)
	if err := c.Write(ctx, changes(2)); err != nil {
		t.Fatal(err)
	}
	kept("a write of 2 after it", 2)
}
