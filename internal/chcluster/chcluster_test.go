package chcluster

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// The cluster works as a ClickHouse cluster: ON CLUSTER DDL reaches every server, a
// Distributed table spreads rows over the shards by its key and each shard's replicas hold the
// same rows.
func TestCluster(t *testing.T) {
	dir, err := os.MkdirTemp("", "muckwatch-chcluster-")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := Start(dir, Options{Name: "fleet", Shards: 2, Replicas: 2})
	if err != nil {
		t.Fatalf("the cluster did not start (ZooKeeper and ClickHouse come from make deps): %v", err)
	}
	t.Logf("ZooKeeper and %d ClickHouse servers ready in %s", len(c.Nodes), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		stop := time.Now()
		if err := c.Destroy(); err != nil {
			t.Error(err)
		}
		t.Logf("stopped in %s", time.Since(stop).Round(time.Millisecond))
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q := func(n Node, sql string) string {
		t.Helper()
		out, err := n.Query(ctx, sql, map[string]string{"insert_distributed_sync": "1"})
		if err != nil {
			t.Fatalf("shard %d replica %d: %s: %v", n.Shard, n.Replica, sql, err)
		}
		return out
	}
	first := c.Nodes[0]
	for _, s := range []string{
		"CREATE DATABASE IF NOT EXISTS smoke ON CLUSTER fleet",
		"CREATE TABLE IF NOT EXISTS smoke.t_local ON CLUSTER fleet (k UInt64, v String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/smoke/t_local', '{replica}') ORDER BY k",
		"CREATE TABLE IF NOT EXISTS smoke.t ON CLUSTER fleet AS smoke.t_local ENGINE = Distributed(fleet, smoke, t_local, cityHash64(k))",
	} {
		q(first, s)
	}
	t.Logf("schema created ON CLUSTER in %s", time.Since(start).Round(time.Millisecond))
	// Written synchronously (the insert returns once every shard has its rows), and each key a
	// second time: a replay.
	for round := range 2 {
		q(first, fmt.Sprintf("INSERT INTO smoke.t SELECT number, 'round %d' FROM system.numbers LIMIT 1000", round))
	}
	// The insert waited for one replica of each shard; the other fetches the part from it.
	for _, n := range c.Nodes {
		q(n, "SYSTEM SYNC REPLICA smoke.t_local")
	}
	for _, n := range c.Nodes {
		if got := q(n, "SELECT count() FROM smoke.t FINAL"); got != "1000" {
			t.Errorf("FINAL over the Distributed table counts %s rows on shard %d replica %d, want 1000", got, n.Shard, n.Replica)
		}
	}
	total := 0
	for _, n := range c.Nodes {
		var rows, keys int
		fmt.Sscan(q(n, "SELECT count() FROM smoke.t_local"), &rows)
		fmt.Sscan(q(n, "SELECT uniqExact(k) FROM smoke.t_local"), &keys)
		t.Logf("shard %d replica %d: %d rows, %d keys", n.Shard, n.Replica, rows, keys)
		if rows == 0 || rows == 2000 {
			t.Errorf("shard %d replica %d holds %d of the 2000 rows written, want a share", n.Shard, n.Replica, rows)
		}
		if n.Replica == 1 {
			total += keys
		}
	}
	if total != 1000 {
		t.Errorf("the shards hold %d keys between them, want 1000 (each key on one shard)", total)
	}
}
