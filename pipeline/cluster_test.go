package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/internal/chcluster"
	"github.com/muckwatch/muckwatch/sim"
	"github.com/muckwatch/muckwatch/tables"
)

// clusterWritten are the tables the pipeline writes (violations_daily is its view's).
var clusterWritten = []string{tables.Positions.Name, tables.Events.Name, tables.OfficerPositions.Name,
	tables.Rejects.Name, tables.Alerts.Name, tables.AlertChanges.Name}

// TestClickHouseCluster runs muckwatch on a real ClickHouse cluster: ZooKeeper and 2 shards × 2
// replicas (internal/chcluster), the schema created as an operator does it (`muckwatch migrate
// --cluster-ddl fleet | clickhouse-client --multiquery`), the pipeline writing a simulated hour
// through the Distributed tables (clickhouse.cluster), then every record replayed by a second
// consumer group into the same tables. Every fix is then stored once in effect (FINAL over the
// Distributed table: a replayed row lands on the shard of its first copy), the rows are spread
// over both shards, and the API's history answers (violations, counts, heatmap, tracks) are
// exactly those of a single server holding the same rows.
func TestClickHouseCluster(t *testing.T) {
	const cluster = "fleet"
	dir, err := os.MkdirTemp("", "muckwatch-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	cl, err := chcluster.Start(filepath.Join(dir, "cluster"), chcluster.Options{Name: cluster, Shards: 2, Replicas: 2})
	if err != nil {
		t.Fatalf("the ClickHouse cluster did not start (make deps installs ZooKeeper and ClickHouse): %v", err)
	}
	t.Cleanup(func() {
		if err := cl.Destroy(); err != nil {
			t.Error(err)
		}
		os.RemoveAll(dir)
	})
	t.Logf("ZooKeeper and %d ClickHouse servers (2 shards × 2 replicas) ready in %s", len(cl.Nodes), time.Since(began).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	node := func(n chcluster.Node, sql string) string {
		t.Helper()
		out, err := n.Query(ctx, sql, nil)
		if err != nil {
			t.Fatalf("shard %d replica %d: %v", n.Shard, n.Replica, err)
		}
		return out
	}
	nodeCount := func(n chcluster.Node, sql string) uint64 {
		t.Helper()
		v, err := strconv.ParseUint(node(n, sql), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return v
	}

	// The schema, as docs/operations.md tells an operator to create it.
	db := fmt.Sprintf("mw_cluster_%d", os.Getpid())
	ddl := clusterDDL(t, dir, db, cluster)
	client := exec.CommandContext(ctx, "clickhouse-client", "--host", "127.0.0.1", "--port", portOf(t, cl.Nodes[0].TCPAddr), "--multiquery")
	client.Stdin = bytes.NewReader(ddl)
	if out, err := client.CombinedOutput(); err != nil {
		t.Fatalf("clickhouse-client --multiquery with the output of `muckwatch migrate --cluster-ddl %s`: %v\n%s", cluster, err, out)
	}
	for _, n := range cl.Nodes {
		for _, tb := range clusterWritten {
			if got := nodeCount(n, fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name IN ('%s', '%s_local')", db, tb, tb)); got != 2 {
				t.Fatalf("shard %d replica %d has %d of the tables %s and %s_local after the cluster DDL", n.Shard, n.Replica, got, tb, tb)
			}
		}
	}
	t.Logf("cluster schema created ON CLUSTER (%d statements) at %s", bytes.Count(ddl, []byte(";\n")), time.Since(began).Round(time.Millisecond))

	// A simulated hour of a noisy city: 40 trucks, violations of every kind.
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	start, err := sim.PastStart(time.Now(), "07:00", time.Hour, c.Location)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(c, sim.Noisy(23, start, time.Hour, 10*time.Second, 40))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	msgs, res := simMessages(t, s, cfg)
	end := start.Add(time.Hour)
	// The background roll-ups off on both sides: they roll up the test's hours while the
	// pipeline is still writing them, at a moment that differs between the two servers (the
	// answers then differed in km when the test's day had ended in the city's zone). The roll-ups
	// are checked in api's own tests; here the raw tables are compared across the shards.
	noRollups := func(rc *Config) { rc.API.KPI.RollupDays = -1 }
	onCluster := func(rc *Config) {
		rc.ClickHouse.Addr = cl.Addrs()
		rc.ClickHouse.Database = db
		rc.ClickHouse.Cluster = cluster
		noRollups(rc)
	}

	// The pipeline, writing through the Distributed tables.
	env, apiC := startAPIEnv(t, onCluster)
	produce(t, env.broker, msgs...)
	env.waitFor("every fix in the cluster", 3*time.Minute, func() bool {
		return env.count("SELECT uniqExact(fix_id) FROM positions") >= uint64(res.Fixes)
	})
	env.waitFor("the stream judged to its end", time.Minute, func() bool { return judgedToEnd(env.started.MetricsURL, end) })
	firstRows := rowsWritten(t, env.started.MetricsURL, tables.Positions.Name)
	t.Logf("first run: %d fixes produced (+%d sent twice), %d position rows written, at %s", res.Fixes, res.Duplicates, firstRows, time.Since(began).Round(time.Millisecond))

	// A replay: another consumer group reads every record again and writes every batch again into
	// the same tables, as a pipeline restarted from uncommitted offsets writes those batches.
	replay := startEnv(t, func(rc *Config) {
		onCluster(rc)
		rc.Kafka.Brokers, rc.Outputs.Brokers = []string{env.broker}, []string{env.broker}
		rc.Kafka.GroupID = "replay"
		rc.Outputs.AlertsTopic, rc.Outputs.DLQTopic, rc.Outputs.StateTopic = "replay.alerts", "replay.dlq", "replay.state"
		rc.API.Listen = ""
	})
	replay.waitFor("the replay judged to the end of the stream", 3*time.Minute, func() bool {
		return judgedToEnd(replay.started.MetricsURL, end)
	})
	replayed := rowsWritten(t, replay.started.MetricsURL, tables.Positions.Name)
	if err := replay.stop(); err != nil {
		t.Fatal(err)
	}
	if replayed < uint64(res.Fixes) {
		t.Fatalf("the replay wrote %d position rows, fewer than the %d fixes: it replayed nothing worth checking", replayed, res.Fixes)
	}
	// Every replica caught up (an insert waits for one replica of each shard; the other fetches).
	for _, n := range cl.Nodes {
		for _, tb := range clusterWritten {
			node(n, "SYSTEM SYNC REPLICA "+db+"."+tb+"_local")
		}
	}

	// Stored once in effect, over the Distributed tables.
	if n := env.count("SELECT count() FROM positions FINAL"); n != uint64(res.Fixes) {
		t.Errorf("positions FINAL over the cluster has %d rows for %d fixes", n, res.Fixes)
	}
	if n := env.count("SELECT uniqExact(fix_id) FROM positions"); n != uint64(res.Fixes) {
		t.Errorf("positions over the cluster has %d distinct fixes, %d produced", n, res.Fixes)
	}
	alerts := env.count("SELECT uniqExact(id) FROM alerts")
	if alerts == 0 {
		t.Fatal("no alert stored: the comparison of the history answers proves nothing")
	}
	if n := env.count("SELECT count() FROM alerts FINAL"); n != alerts {
		t.Errorf("alerts FINAL over the cluster has %d rows for %d alerts", n, alerts)
	}
	if daily := env.count("SELECT toUInt64(sum(n)) FROM (SELECT uniqExactMerge(alerts) AS n FROM violations_daily GROUP BY day, rule)"); daily != alerts {
		t.Errorf("violations_daily over the cluster counts %d alerts, alerts has %d", daily, alerts)
	}
	raw := env.count("SELECT count() FROM positions")
	// The API's own writes go through the Distributed tables too: the alert feed's journal.
	env.waitFor("the API's alert feed journalled on the cluster", time.Minute, func() bool {
		return env.count("SELECT count() FROM alert_feed") > 0
	})

	// Spread over both shards, each key on one shard only: the shards' distinct keys add up to
	// the whole (a replayed row met its first copy), and the replicas of a shard agree.
	var fixesOnShards, alertsOnShards uint64
	for _, n := range cl.Nodes {
		rows := nodeCount(n, "SELECT count() FROM "+db+".positions_local")
		fixes := nodeCount(n, "SELECT uniqExact(fix_id) FROM "+db+".positions_local")
		final := nodeCount(n, "SELECT count() FROM "+db+".positions_local FINAL")
		shardAlerts := nodeCount(n, "SELECT uniqExact(id) FROM "+db+".alerts_local")
		t.Logf("shard %d replica %d: positions %d rows, %d fixes (%d FINAL); %d alerts", n.Shard, n.Replica, rows, fixes, final, shardAlerts)
		if fixes == 0 || fixes == uint64(res.Fixes) || shardAlerts == 0 {
			t.Errorf("shard %d replica %d holds %d of %d fixes and %d alerts: the rows are not spread over the shards", n.Shard, n.Replica, fixes, res.Fixes, shardAlerts)
		}
		if final != fixes {
			t.Errorf("shard %d replica %d: positions_local FINAL has %d rows for %d fixes", n.Shard, n.Replica, final, fixes)
		}
		if n.Replica == 1 {
			fixesOnShards += fixes
			alertsOnShards += shardAlerts
		} else if first := cl.Nodes[(n.Shard-1)*2]; nodeCount(first, "SELECT uniqExact(fix_id) FROM "+db+".positions_local") != fixes {
			t.Errorf("the replicas of shard %d hold different fixes", n.Shard)
		}
	}
	if fixesOnShards != uint64(res.Fixes) || alertsOnShards != alerts {
		t.Errorf("the shards hold %d fixes and %d alerts between them, the cluster %d and %d: a key is on two shards", fixesOnShards, alertsOnShards, res.Fixes, alerts)
	}
	t.Logf("positions: %d rows written in all (first run %d, replay %d), %d rows before merges, %d fixes; %d alerts", firstRows+replayed, firstRows, replayed, raw, res.Fixes, alerts)

	// The same rows on a single server: the API's answers must be the same.
	single, singleC := startAPIEnv(t, noRollups)
	for _, tb := range clusterWritten {
		q := fmt.Sprintf("INSERT INTO %s.%s SELECT * FROM remote('%s', %s, %s)", single.cfg.ClickHouse.Database, tb, cl.Nodes[0].TCPAddr, db, tb)
		if err := single.conn.Exec(ctx, q); err != nil {
			t.Fatalf("copying %s from the cluster to the single server: %v", tb, err)
		}
	}
	// Distinct fixes, not rows: either side may have merged its replayed duplicates by now (the
	// copy is of the rows as they were, and ClickHouse merges when it chooses).
	if a, b := single.count("SELECT uniqExact(fix_id) FROM positions"), env.count("SELECT uniqExact(fix_id) FROM positions"); a != b {
		t.Fatalf("the single server has %d fixes, the cluster %d", a, b)
	}
	compareHistory(t, apiC, singleC, start.Add(-time.Hour), end.Add(time.Hour), env)
	t.Logf("done in %s", time.Since(began).Round(time.Millisecond))
}

// compareHistory asks both APIs the analysts' questions and wants the same answers.
func compareHistory(t *testing.T, onCluster, onSingle *apiClient, from, to time.Time, env *testEnv) {
	t.Helper()
	window := "from=" + url.QueryEscape(from.Format(time.RFC3339)) + "&to=" + url.QueryEscape(to.Format(time.RFC3339))
	paths := []string{
		"/api/v1/violations?" + window,
		"/api/v1/violations?" + window + "&group_by=rule,severity",
		"/api/v1/violations?" + window + "&group_by=day,district,company",
		"/api/v1/violations?" + window + "&rule=speeding,overload&format=csv",
		"/api/v1/heatmap?" + window,
		"/api/v1/heatmap?" + window + "&cell_m=2000&rule=restricted_zone",
		// the KPIs: joins of alerts with their actions, of gate exits with km, across the shards
		"/api/v1/kpis/handling?" + window + "&by=district&interval=day",
		"/api/v1/scorecards?" + window + "&of=company&interval=day",
		"/api/v1/scorecards?" + window + "&of=vehicle&interval=day",
		"/api/v1/rankings?of=companies&period=day&at=" + url.QueryEscape(from.Add(time.Hour).Format(time.RFC3339)),
	}
	// The tracks of the trucks with the most alerts (a track reads its truck's shard).
	rows, err := env.conn.Query(context.Background(), "SELECT vehicle_id FROM alerts GROUP BY vehicle_id ORDER BY uniqExact(id) DESC, vehicle_id LIMIT 4")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var plate string
		if err := rows.Scan(&plate); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, "/api/v1/vehicles/"+url.PathEscape(plate)+"/track?"+window)
	}
	rows.Close()
	for _, p := range paths {
		short := strings.Replace(p, window, "…", 1)
		st1, got := onCluster.do(api.RoleAnalyst, "GET", p, "")
		st2, want := onSingle.do(api.RoleAnalyst, "GET", p, "")
		if st1 != 200 || st2 != 200 {
			t.Errorf("GET %s: status %d on the cluster, %d on the single server: %.300s %.300s", short, st1, st2, got, want)
			continue
		}
		if len(want) < 100 {
			t.Errorf("GET %s on the single server answers only %q: the comparison proves nothing", short, want)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("GET %s answers differently on the cluster (%d bytes) and on a single server (%d bytes):\n%.600s\n%.600s", short, len(got), len(want), got, want)
		} else {
			t.Logf("GET %s: the same %d bytes on both", short, len(got))
		}
	}
}

// clusterDDL returns the output of `muckwatch migrate --cluster-ddl cluster` for database db.
func clusterDDL(t *testing.T, dir, db, cluster string) []byte {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "migrate.yaml")
	if err := os.WriteFile(config, fmt.Appendf(nil, "city: ../configs/cities/shenzhen\nclickhouse:\n  database: %s\n", db), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "migrate", "--config", config, "--cluster-ddl", cluster)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("muckwatch migrate --cluster-ddl %s: %v\n%s", cluster, err, stderr.String())
	}
	return out
}

// rowsWritten reads muckwatch_clickhouse_rows_total for table from an instance's metrics.
func rowsWritten(t *testing.T, metricsURL, table string) uint64 {
	t.Helper()
	vs, err := metricSamples(metricsURL, `muckwatch_clickhouse_rows_total{table="`+table+`"} `)
	if err != nil || len(vs) != 1 {
		t.Fatalf("cannot read the rows written into %s from %s: %v (%d samples)", table, metricsURL, err, len(vs))
	}
	return uint64(vs[0])
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
