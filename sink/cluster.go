package sink

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ClusterDDL renders the schema for a ClickHouse cluster (see the README, "ClickHouse on a
// cluster"): every table becomes a Replicated…MergeTree table named <table>_local on each shard
// (the same sorting key, so replays still collapse) and a Distributed table of the original name
// over them, sharded by vehicle (cityHash64(vehicle_id)) or else by the sorting key, so that a
// row written again after a replay meets its first copy on one shard and collapses with it; materialised views read and write the local
// tables of their shard. Every statement runs ON CLUSTER cluster. The pipeline and the analysts'
// queries use the original names unchanged. It is derived from the same migrations the single
// server runs, so the two layouts cannot drift apart.
func ClusterDDL(db, cluster string) ([]string, error) {
	if !identRE.MatchString(cluster) {
		return nil, fmt.Errorf("cluster: %q must match %s", cluster, identRE)
	}
	ms, err := Migrations(db)
	if err != nil {
		return nil, err
	}
	onCluster := " ON CLUSTER " + cluster
	out := []string{"CREATE DATABASE IF NOT EXISTS " + db + onCluster}
	var tables []string
	for _, m := range ms {
		stmts := m.Statements
		if m.Version == 0 {
			stmts = stmts[1:] // the database: created above, on the cluster
		}
		for _, s := range stmts {
			if mv := createViewRE.FindStringSubmatch(s); mv != nil {
				body := s[len(mv[0]):]
				for _, t := range tables {
					body = regexp.MustCompile(`\b`+regexp.QuoteMeta(db+"."+t)+`\b`).ReplaceAllString(body, db+"."+t+"_local")
				}
				out = append(out, fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s%s TO %s.%s_local AS%s", db, mv[1], onCluster, db, mv[2], body))
				continue
			}
			ct := createTableRE.FindStringSubmatch(s)
			if ct == nil {
				return nil, fmt.Errorf("migration %03d_%s: no cluster form for %.60q", m.Version, m.Name, s)
			}
			table, engine, args := ct[1], ct[3], ct[4]
			zk := fmt.Sprintf("'/clickhouse/tables/{shard}/%s/%s_local', '{replica}'", db, table)
			if strings.TrimSpace(args) != "" {
				zk += ", " + args
			}
			local := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s_local%s (%s) ENGINE = Replicated%s(%s)%s",
				db, table, onCluster, ct[2], engine, zk, s[len(ct[0]):])
			// A row written again after a replay must land on the shard of its first copy, for
			// the ReplacingMergeTree to collapse them: shard by the sorting key, by its vehicle
			// when it has one (a truck's rows together).
			key := orderByRE.FindStringSubmatch(s)
			if key == nil {
				return nil, fmt.Errorf("migration %03d_%s: table %s has no ORDER BY", m.Version, m.Name, table)
			}
			shard := "cityHash64(" + strings.Trim(key[1], "()") + ")"
			if regexp.MustCompile(`\bvehicle_id\b`).MatchString(key[1]) {
				shard = "cityHash64(vehicle_id)"
			}
			dist := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s_local ENGINE = Distributed(%s, %s, %s_local, %s)",
				db, table, onCluster, db, table, cluster, db, table, shard)
			out = append(out, local, dist)
			tables = append(tables, table)
		}
	}
	return out, nil
}

var (
	createTableRE = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS \w+\.(\w+) \((.*)\) ENGINE = (\w*MergeTree)\(([^)]*)\)`)
	orderByRE     = regexp.MustCompile(`ORDER BY (\([^)]*\)|\w+)`)
	createViewRE  = regexp.MustCompile(`^CREATE MATERIALIZED VIEW IF NOT EXISTS \w+\.(\w+) TO \w+\.(\w+) AS`)
)

// clusterObjectRE reads the object a statement of ClusterDDL creates: its name and engine.
var clusterObjectRE = regexp.MustCompile(`^CREATE (TABLE|MATERIALIZED VIEW) IF NOT EXISTS \w+\.(\w+) ON CLUSTER \w+ (?:AS \S+ )?(?:\(|TO |ENGINE = (\w+))`)

// CheckClusterSchema checks, on the server it is connected to, that the database has every
// table and view of ClusterDDL for the configured cluster: the Distributed tables over that
// cluster under the tables' own names, the Replicated local tables, the view. It fails, naming
// what is missing or different, when the operator has not run the DDL (or ran it for another
// cluster); muckwatch then does not start, rather than write into tables of another layout.
func (c *ClickHouse) CheckClusterSchema(ctx context.Context) error {
	db, cluster := c.cfg.Database, c.cfg.Cluster
	stmts, err := ClusterDDL(db, cluster)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rows, err := c.conn.Query(ctx, "SELECT name, engine, engine_full FROM system.tables WHERE database = ?", db)
	if err != nil {
		return fmt.Errorf("cannot list the tables of %s to check its cluster schema: %w", db, err)
	}
	defer rows.Close()
	type table struct{ engine, full string }
	have := map[string]table{}
	for rows.Next() {
		var name string
		var t table
		if err := rows.Scan(&name, &t.engine, &t.full); err != nil {
			return fmt.Errorf("cannot list the tables of %s to check its cluster schema: %w", db, err)
		}
		have[name] = t
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot list the tables of %s to check its cluster schema: %w", db, err)
	}
	unquote := strings.NewReplacer("'", "", "`", "", `"`, "")
	var problems []string
	for _, s := range stmts {
		m := clusterObjectRE.FindStringSubmatch(s)
		if m == nil {
			continue // the database
		}
		name, engine := m[2], m[3]
		t, ok := have[name]
		switch {
		case !ok:
			problems = append(problems, name+" is missing")
		case m[1] == "MATERIALIZED VIEW":
			if t.engine != "MaterializedView" {
				problems = append(problems, fmt.Sprintf("%s is %s, not a materialized view", name, t.engine))
			}
		case engine == "Distributed" && t.engine != "Distributed":
			problems = append(problems, fmt.Sprintf("%s is %s, not Distributed over cluster %s", name, t.engine, cluster))
		case engine == "Distributed":
			// Newer servers show the engine's first arguments quoted.
			if !strings.HasPrefix(unquote.Replace(t.full), "Distributed("+cluster+",") {
				problems = append(problems, fmt.Sprintf("%s is %s, not Distributed over cluster %s", name, t.full, cluster))
			}
		case !strings.HasPrefix(t.engine, "Replicated"):
			problems = append(problems, fmt.Sprintf("%s is %s, not Replicated", name, t.engine))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("database %s is not laid out for ClickHouse cluster %s (clickhouse.cluster): %s; run the statements of `muckwatch migrate --cluster-ddl %s` once (docs/operations.md, ClickHouse on a cluster)",
			db, cluster, strings.Join(problems, "; "), cluster)
	}
	c.log.Info("ClickHouse cluster schema checked", "database", db, "cluster", cluster, "objects", len(stmts)-1)
	return nil
}
