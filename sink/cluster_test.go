package sink

import (
	"context"
	"strings"
	"testing"
)

// The cluster form of the schema: every table of the single-server schema has a Replicated local
// table with the same columns and sorting key and a Distributed table of its own name, sharded
// by vehicle where it has one; the materialised view works shard-locally; everything ON CLUSTER.
func TestClusterDDL(t *testing.T) {
	stmts, err := ClusterDDL("muckwatch", "fleet")
	if err != nil {
		t.Fatal(err)
	}
	single, err := Migrations("muckwatch")
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for _, m := range single {
		for _, s := range m.Statements {
			if strings.HasPrefix(s, "CREATE TABLE") {
				tables++
			}
		}
	}
	var local, dist, views int
	all := strings.Join(stmts, ";\n")
	for _, s := range stmts {
		if !strings.Contains(s, " ON CLUSTER fleet") {
			t.Errorf("not ON CLUSTER: %.80s", s)
		}
		switch {
		case strings.Contains(s, "ENGINE = Replicated"):
			local++
			if !strings.Contains(s, "_local ON CLUSTER") || !strings.Contains(s, "'{replica}'") || !strings.Contains(s, "ORDER BY") {
				t.Errorf("local table: %s", s)
			}
		case strings.Contains(s, "ENGINE = Distributed("):
			dist++
		case strings.HasPrefix(s, "CREATE MATERIALIZED VIEW"):
			views++
			if !strings.Contains(s, "TO muckwatch.violations_daily_local") || !strings.Contains(s, "FROM muckwatch.alert_changes_local") {
				t.Errorf("the view must read and write its shard's local tables: %s", s)
			}
		}
	}
	if local != tables || dist != tables || views != 1 {
		t.Errorf("%d local and %d distributed tables, %d views; the single-server schema has %d tables and 1 view", local, dist, views, tables)
	}
	for _, want := range []string{
		"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/muckwatch/alerts_local', '{replica}', version)",
		"CREATE TABLE IF NOT EXISTS muckwatch.positions ON CLUSTER fleet AS muckwatch.positions_local ENGINE = Distributed(fleet, muckwatch, positions_local, cityHash64(vehicle_id))",
		"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/muckwatch/violations_daily_local', '{replica}')",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("missing %q", want)
		}
	}
	if _, err := ClusterDDL("muckwatch", "bad name"); err == nil {
		t.Error("a cluster name that is not an identifier was accepted")
	}
}

// With clickhouse.cluster set, muckwatch checks the cluster schema instead of migrating, and
// refuses a database the operator has not laid out with the cluster DDL, saying what to run.
func TestCheckClusterSchemaRefuses(t *testing.T) {
	single := openTestDB(t, nil, nil) // the single-server schema
	ctx := context.Background()
	for _, tc := range []struct {
		name, db string
		want     []string
	}{
		{"single-server schema", single.Database(), []string{
			"positions is ReplacingMergeTree, not Distributed over cluster fleet",
			"positions_local is missing", "violations_daily_local is missing",
			"run the statements of `muckwatch migrate --cluster-ddl fleet` once"}},
		{"no database", "mw_no_such_database", []string{"alerts is missing", "alerts_local is missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := OpenClickHouse(ctx, ClickHouseConfig{Addr: []string{chAddr}, Database: tc.db, Cluster: "fleet"}, testLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Migrate(ctx)
			if err == nil {
				t.Fatal("a database without the cluster schema was accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q:\n%v", w, err)
				}
			}
		})
	}
	// Nothing was created: the check migrates nothing.
	var n uint64
	if err := single.Conn().QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = 'mw_no_such_database'").Scan(&n); err != nil || n != 0 {
		t.Errorf("the check created the database (%d, %v)", n, err)
	}
}
