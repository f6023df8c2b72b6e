package sink

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestMigrations(t *testing.T) {
	ms, err := Migrations("mw")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, m := range ms {
		if m.Version != i {
			t.Errorf("migration %d has version %d", i, m.Version)
		}
		names = append(names, m.Name)
		for _, st := range m.Statements {
			if strings.Contains(st, "{db}") || strings.Contains(st, "--") || strings.HasSuffix(st, ";") {
				t.Errorf("migration %d: statement not rendered: %s", m.Version, st)
			}
			if !strings.Contains(st, "IF NOT EXISTS") {
				t.Errorf("migration %d: statement cannot run twice: %s", m.Version, st)
			}
		}
	}
	if want := []string{"bootstrap", "raw_history", "alerts", "violations_daily", "api"}; !reflect.DeepEqual(names, want) {
		t.Errorf("migrations = %v, want %v", names, want)
	}
	for _, bad := range []string{"", "1db", "mw;DROP", "mw.x", "mw`"} {
		if _, err := Migrations(bad); err == nil {
			t.Errorf("Migrations(%q) rendered", bad)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	f := func(text string, want ...string) {
		t.Helper()
		if got := splitStatements(text); !reflect.DeepEqual(got, want) {
			t.Errorf("splitStatements(%q) = %q, want %q", text, got, want)
		}
	}
	f("")
	f("-- only a comment;\n  ;")
	f("SELECT 1", "SELECT 1")
	f("SELECT 1; SELECT 2;\n", "SELECT 1", "SELECT 2")
	f("SELECT 'a;b' -- c;d\n, `x;y`; SELECT \"q\\\";\"", "SELECT 'a;b' \n, `x;y`", "SELECT \"q\\\";\"")
	f("SELECT '--not a comment'", "SELECT '--not a comment'")
}

// analystQueries are the queries the schema's comments promise, run on the 18.16 test server
// and on modern ClickHouse.
var analystQueries = []string{
	"SELECT count() FROM {db}.positions FINAL",
	"SELECT uniqExact(fix_id) FROM {db}.positions",
	"SELECT vehicle_id, ts, ts_ms, lat, lon, speed_kmh FROM {db}.positions FINAL WHERE vehicle_id = '粤B12345' AND ts >= toDateTime('2026-05-17 00:00:00') ORDER BY ts_ms",
	"SELECT id, argMax(status, version) AS status, argMax(end_ms, version) AS end_ms FROM {db}.alerts GROUP BY id ORDER BY id",
	"SELECT rule, severity, count() FROM {db}.alerts FINAL GROUP BY rule, severity ORDER BY rule, severity",
	"SELECT day, rule, uniqExactMerge(alerts) AS alerts FROM {db}.violations_daily GROUP BY day, rule ORDER BY day, rule",
	"SELECT company, district, uniqExactMerge(alerts) AS alerts FROM {db}.violations_daily WHERE day >= toDate('2026-05-01') GROUP BY company, district ORDER BY alerts DESC",
	"SELECT toHour(changed_at) AS hour, count() FROM {db}.alert_changes FINAL WHERE kind = 'opened' GROUP BY hour ORDER BY hour",
	"SELECT reason, count() FROM {db}.rejects FINAL GROUP BY reason ORDER BY reason",
	"SELECT kind, count(), avg(load_kg) FROM {db}.events FINAL WHERE has_load = 1 GROUP BY kind",
	"SELECT officer_id, argMax(lat, ts_ms), argMax(lon, ts_ms) FROM {db}.officer_positions WHERE available = 1 GROUP BY officer_id",
	"OPTIMIZE TABLE {db}.positions FINAL",
}

func TestAnalystQueries(t *testing.T) {
	ctx := context.Background()
	c := openTestDB(t, nil, nil)
	if err := c.Write(ctx, testBatch()); err != nil {
		t.Fatal(err)
	}
	for _, q := range analystQueries {
		q = strings.ReplaceAll(q, "{db}", c.Database())
		if err := c.Conn().Exec(ctx, q); err != nil {
			t.Errorf("ClickHouse %s: %s: %v", c.ServerVersion(), q, err)
		}
	}
}

// chModern returns the path of the embedded modern ClickHouse checker, which lives beside the
// repository in shared/tools, or in $CH_MODERN.
func chModern() string {
	if p := os.Getenv("CH_MODERN"); p != "" {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "shared", "tools", "ch-modern"))
	if err != nil {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// TestSchemaOnModernClickHouse runs every migration (twice), an insert with each table's column
// list, a replayed 'opened' change and the analysts' queries through modern ClickHouse. It
// skips only when the checker, which is not part of the repository, is absent.
func TestSchemaOnModernClickHouse(t *testing.T) {
	tool := chModern()
	if tool == "" {
		t.Skip("ch-modern not found beside the repository (shared/tools/ch-modern) nor in $CH_MODERN")
	}
	const db = "muckwatch"
	ms, err := Migrations(db)
	if err != nil {
		t.Fatal(err)
	}
	var sql strings.Builder
	add := func(st string) { sql.WriteString(strings.ReplaceAll(st, "{db}", db) + ";\n") }
	for range 2 {
		for _, m := range ms {
			for _, st := range m.Statements {
				add(st)
			}
		}
	}
	// the inserts Write makes, with their explicit column lists
	for table, cols := range insertColumns() {
		list := strings.Join(cols, ", ")
		add("INSERT INTO {db}." + table + " (" + list + ") SELECT " + list + " FROM {db}." + table)
	}
	opened := "INSERT INTO {db}.alert_changes (alert_id, version, kind, rule, severity, company, district, changed_at, changed_ms, start_time, start_ms) " +
		"VALUES ('a-1', 1, 'opened', 'speeding', 'warning', '深圳运输', '福田区', toDateTime('2026-05-17 08:30:15'), 1779006615123, toDateTime('2026-05-17 08:30:15'), 1779006615123)"
	add(opened)
	add(opened) // a replay
	add("SELECT 'violations', uniqExactMerge(alerts) FROM {db}.violations_daily")
	for _, q := range analystQueries {
		add(q)
	}
	file := filepath.Join(t.TempDir(), "schema.sql")
	if err := os.WriteFile(file, []byte(sql.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, file).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, file, err, out)
	}
	if !strings.Contains(string(out), "violations\t1\n") {
		t.Errorf("violations_daily on modern ClickHouse did not count the replayed opened change once:\n%s", out)
	}
	t.Logf("%d statements ran on modern ClickHouse", len(splitStatements(sql.String())))
}

// insertColumns returns the column list of every insert Write makes, by table.
func insertColumns() map[string][]string {
	names := func(n int, name func(i int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = name(i)
		}
		return out
	}
	p, e, o, r, a, ch := positionColumns(), eventColumns(), officerColumns(), rejectColumns(), alertColumns(), changeColumns()
	return map[string][]string{
		"positions":         names(len(p), func(i int) string { return p[i].name }),
		"events":            names(len(e), func(i int) string { return e[i].name }),
		"officer_positions": names(len(o), func(i int) string { return o[i].name }),
		"rejects":           names(len(r), func(i int) string { return r[i].name }),
		"alerts":            names(len(a), func(i int) string { return a[i].name }),
		"alert_changes":     names(len(ch), func(i int) string { return ch[i].name }),
	}
}
