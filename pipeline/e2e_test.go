package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/sim"
)

type storedAlert struct {
	ID, Rule, Vehicle, Severity, Status string
	Start, End                          time.Time
	Opened                              time.Time
}

func (e *testEnv) alerts() []storedAlert {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(), `
		SELECT id, rule, vehicle_id, argMax(severity, version), argMax(status, version),
		       min(start_ms), argMax(end_ms, version)
		FROM alerts GROUP BY id, rule, vehicle_id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []storedAlert
	for rows.Next() {
		var a storedAlert
		var start, end int64
		if err := rows.Scan(&a.ID, &a.Rule, &a.Vehicle, &a.Severity, &a.Status, &start, &end); err != nil {
			e.t.Fatal(err)
		}
		a.Start = time.UnixMilli(start)
		if end > 0 {
			a.End = time.UnixMilli(end)
		}
		out = append(out, a)
	}
	return out
}

// matches reports whether alert a covers ground-truth episode ep: same rule and vehicle, and
// overlapping in time (an open alert or open episode extends to the end of the run).
func matches(a storedAlert, ep sim.Episode, slack time.Duration) bool {
	if a.Rule != ep.Rule || a.Vehicle != ep.VehicleID {
		return false
	}
	aEnd := a.End
	if aEnd.IsZero() {
		aEnd = time.Unix(1<<40, 0)
	}
	epEnd := ep.End
	if epEnd.IsZero() {
		epEnd = time.Unix(1<<40, 0)
	}
	return !a.Start.After(epEnd.Add(slack)) && !aEnd.Before(ep.Start.Add(-slack))
}

// TestEndToEnd drives the simulator through the embedded broker and the real pipeline into the
// real ClickHouse: every produced fix is stored exactly once, and every injected violation of
// every implemented rule is alerted.
func TestEndToEnd(t *testing.T) {
	env := startEnv(t, nil)
	ctx := context.Background()
	c := env.started.Engine.City()
	interval := 10 * time.Second
	start, err := sim.PastStart(time.Now(), "06:30", 3*time.Hour, c.Location) // the morning rush: zones closed
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(c, sim.Options{Seed: 7, Start: start, Duration: 3 * time.Hour,
		Interval: interval, Vehicles: 80, Unregistered: 2, Officers: 3, ViolationRate: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	em := sim.NewKafkaEmitter(ctx, []string{env.broker}, env.cfg.Kafka.Topics)
	defer em.Close()
	res, err := s.Run(em)
	if err != nil {
		t.Fatal(err)
	}
	if err := em.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Logf("produced %d fixes, %d events, %d officer positions; %d injected episodes", res.Fixes, res.Events, res.OfficerPositions, len(res.Truth))

	env.waitFor("every fix in ClickHouse", 5*time.Minute, func() bool {
		return env.count("SELECT count() FROM positions") >= uint64(res.Fixes) &&
			env.count("SELECT count() FROM events") >= uint64(res.Events) &&
			env.count("SELECT count() FROM officer_positions") >= uint64(res.OfficerPositions)
	})
	// A write inserts a group's positions before its alerts: wait for the write holding the newest
	// fix to be over (the event time written reaching it), not only for its positions, and for
	// the time-driven rules to have decided up to it (a partition read last within
	// pipeline.idle_partition holds event time back until it has been quiet that long).
	newest := time.UnixMilli(int64(env.count("SELECT toUInt64(max(ts_ms)) FROM positions")))
	env.waitFor("the last write to be over and every decision up to it taken", time.Minute, func() bool {
		read, judged := eventTimes(env.started.MetricsURL)
		return !read.Before(newest) && !judged.Before(newest)
	})
	// Exactly once: no duplicates, nothing missing, nothing rejected.
	if n := env.count("SELECT count() FROM positions"); n != uint64(res.Fixes) {
		t.Errorf("positions: %d rows for %d fixes produced", n, res.Fixes)
	}
	if n := env.count("SELECT uniqExact(fix_id) FROM positions"); n != uint64(res.Fixes) {
		t.Errorf("positions: %d distinct fix ids for %d fixes produced", n, res.Fixes)
	}
	if n := env.count("SELECT count() FROM rejects"); n != 0 {
		t.Errorf("%d simulated records were rejected", n)
	}
	if n := env.count("SELECT count() FROM officer_positions"); n != uint64(res.OfficerPositions) {
		t.Errorf("officer_positions: %d rows for %d produced", n, res.OfficerPositions)
	}

	// Every injected episode of every rule is alerted. Restricted-zone episodes shorter than two
	// reporting intervals may fall between fixes (issue 3 adds crossing detection); they are not
	// required here.
	alerts := env.alerts()
	byRule := map[string][2]int{}
	for _, ep := range res.Truth {
		if ep.Rule == "restricted_zone" && !ep.End.IsZero() && ep.End.Sub(ep.Start) < 2*interval {
			continue
		}
		found := false
		for _, a := range alerts {
			if matches(a, ep, 2*interval) {
				found = true
				break
			}
		}
		n := byRule[ep.Rule]
		n[0]++
		if found {
			n[1]++
		} else {
			t.Errorf("injected %s episode not alerted: %+v", ep.Rule, ep)
		}
		byRule[ep.Rule] = n
	}
	// Alerts no injected episode explains (precision is issue 3's; here they are only reported).
	unexplained := map[string]int{}
	for _, a := range alerts {
		found := false
		for _, ep := range res.Truth {
			if matches(a, ep, 2*interval) {
				found = true
				break
			}
		}
		if !found {
			unexplained[a.Rule]++
		}
	}
	t.Logf("alerts without an injected episode, by rule: %v (of %d alerts)", unexplained, len(alerts))
	rules := make([]string, 0, len(byRule))
	for r := range byRule {
		rules = append(rules, r)
	}
	sort.Strings(rules)
	for _, r := range rules {
		t.Logf("%-16s injected %3d alerted %3d", r, byRule[r][0], byRule[r][1])
	}
	for _, want := range []string{"route_deviation", "speeding", "restricted_zone", "overload", "dwell", "unlicensed", "cover_open", "spillage", "site_exit_risk", "signal_lost", "trip_unclosed"} {
		if byRule[want][0] == 0 {
			t.Errorf("the simulation injected no %s episode; the test proves nothing for it", want)
		}
	}

	// The analyst queries of docs/operations.md run as documented, and the daily aggregate counts the alerts.
	queries := analystQueries(t)
	if len(queries) < 7 {
		t.Fatalf("docs/operations.md has %d analyst queries, want 7", len(queries))
	}
	for i, q := range queries {
		rows, err := env.conn.Query(ctx, q)
		if err != nil {
			t.Errorf("docs/operations.md query %d fails on ClickHouse %s: %v\n%s", i+1, env.started.ClickHouse.ServerVersion(), err, q)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		if i < 2 && n == 0 {
			t.Errorf("docs/operations.md query %d returned no rows after a simulated day with alerts:\n%s", i+1, q)
		}
	}
	if daily, all := env.count("SELECT toUInt64(sum(n)) FROM (SELECT uniqExactMerge(alerts) AS n FROM violations_daily GROUP BY day, rule)"),
		env.count("SELECT uniqExact(id) FROM alerts"); daily != all {
		t.Errorf("violations_daily counts %d alerts, alerts has %d", daily, all)
	}

	// The alert feed on Kafka carries every alert change stored in ClickHouse.
	changes := env.count("SELECT count() FROM alert_changes")
	if changes == 0 {
		t.Fatal("no alert changes stored")
	}
	fed := countTopic(t, env.broker, env.cfg.Outputs.AlertsTopic, int(changes))
	if fed != int(changes) {
		t.Errorf("muck.alerts carries %d changes, ClickHouse alert_changes has %d", fed, changes)
	}
}

// analystQueries returns the statements of the analyst SQL block in docs/operations.md.
func analystQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "```sql\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/operations.md has no ```sql block of analyst queries")
	}
	var out []string
	for _, st := range strings.Split(block, ";") {
		var lines []string
		for _, l := range strings.Split(st, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if q := strings.TrimSpace(strings.Join(lines, "\n")); q != "" {
			out = append(out, q)
		}
	}
	return out
}

// countTopic reads a topic from the start until it has want records or goes quiet, and returns
// how many it read, checking each is JSON.
func countTopic(t *testing.T, broker, topic string, want int) int {
	t.Helper()
	return readTopic(t, broker, topic, want, func(m kafka.Message) bool {
		if !json.Valid(m.Value) {
			t.Errorf("%s: record at offset %d is not JSON: %q", topic, m.Offset, m.Value)
		}
		return true
	})
}

// readTopic reads a topic from the start until want records match or it goes quiet, and returns
// how many matched.
func readTopic(t *testing.T, broker, topic string, want int, match func(kafka.Message) bool) int {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{broker}, GroupID: fmt.Sprintf("count-%d", time.Now().UnixNano()),
		Topic: topic, StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	n := 0
	for n < want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := r.FetchMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		if match(m) {
			n++
		}
	}
	return n
}
