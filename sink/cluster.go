package sink

import (
	"fmt"
	"regexp"
	"strings"
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
