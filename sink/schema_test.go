package sink

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/muckwatch/muckwatch/tables"
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
	if want := []string{"bootstrap", "raw_history", "alerts", "violations_daily", "api", "kpi", "kpi_daily", "km_hourly"}; !reflect.DeepEqual(names, want) {
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
	names := func(cols int, name func(i int) string) []string {
		out := make([]string, cols)
		for i := range out {
			out[i] = name(i)
		}
		return out
	}
	p, e, o, r, a, ch := positionColumns(), eventColumns(), officerColumns(), rejectColumns(), alertColumns(), changeColumns()
	return map[string][]string{
		tables.Positions.Name:        names(len(p), func(i int) string { return p[i].name }),
		tables.Events.Name:           names(len(e), func(i int) string { return e[i].name }),
		tables.OfficerPositions.Name: names(len(o), func(i int) string { return o[i].name }),
		tables.Rejects.Name:          names(len(r), func(i int) string { return r[i].name }),
		tables.Alerts.Name:           names(len(a), func(i int) string { return a[i].name }),
		tables.AlertChanges.Name:     names(len(ch), func(i int) string { return ch[i].name }),
	}
}

// ddlColumns returns the columns ("name Type") of every table the migrations create, by table.
func ddlColumns(t *testing.T) map[string][]string {
	t.Helper()
	ms, err := Migrations("mw")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, m := range ms {
		for _, st := range m.Statements {
			ct := createTableRE.FindStringSubmatch(st)
			if ct == nil {
				continue
			}
			for _, line := range strings.Split(ct[2], "\n") {
				if line = strings.TrimSuffix(strings.TrimSpace(line), ","); line != "" {
					name, typ, _ := strings.Cut(line, " ")
					out[ct[1]] = append(out[ct[1]], name+" "+strings.TrimSpace(typ))
				}
			}
		}
	}
	return out
}

// TestTablesMatchMigrations checks the table descriptions, which the writer and the readers build
// their SQL from, against the DDL of the migrations.
func TestTablesMatchMigrations(t *testing.T) {
	ddl := ddlColumns(t)
	described := map[string]bool{}
	for _, tbl := range tables.All() {
		described[tbl.Name] = true
		var got []string
		for _, c := range tbl.Columns {
			got = append(got, c.Name+" "+c.Type)
			if c.Seconds != "" {
				if ms, ok := tbl.Column(c.Seconds); !ok || ms.Type != "Int64" || c.Type != "DateTime" || ms.Fixed != c.Fixed {
					t.Errorf("%s.%s: the seconds of %q, which is not a column of the same kind", tbl.Name, c.Name, c.Seconds)
				}
			}
		}
		if want := ddl[tbl.Name]; !slices.Equal(got, want) {
			t.Errorf("table %s is described as\n%q\nits DDL has\n%q", tbl.Name, got, want)
		}
		if tbl.Version != "" {
			if _, ok := tbl.Column(tbl.Version); !ok {
				t.Errorf("table %s: version column %q missing", tbl.Name, tbl.Version)
			}
		}
	}
	for name := range ddl {
		if !described[name] {
			t.Errorf("table %s of the migrations is not described in package tables", name)
		}
	}
	for name, cols := range insertColumns() {
		if tbl := tableNamed(name); tbl == nil || !slices.Equal(cols, tbl.Names()) {
			t.Errorf("the insert into %s lists %v", name, cols)
		}
	}
}

func tableNamed(name string) *tables.Table {
	for _, t := range tables.All() {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// TestTablesOnServer checks the descriptions against the tables the migrations made on the test
// server (ClickHouse 18.16).
func TestTablesOnServer(t *testing.T) {
	c := openTestDB(t, nil, nil)
	ctx := context.Background()
	for _, tbl := range tables.All() {
		rows, err := c.Conn().Query(ctx, "SELECT name, type FROM system.columns WHERE database = ? AND table = ?", c.Database(), tbl.Name)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				t.Fatal(err)
			}
			got = append(got, name+" "+typ)
		}
		rows.Close()
		var want []string
		for _, col := range tbl.Columns {
			want = append(want, col.Name+" "+col.Type)
		}
		if !slices.Equal(got, want) {
			t.Errorf("table %s on ClickHouse %s has\n%q\ndescribed as\n%q", tbl.Name, c.ServerVersion(), got, want)
		}
	}
}
