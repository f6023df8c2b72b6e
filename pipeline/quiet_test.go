package pipeline

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/watchdog"
)

// quietAlert is what a signal_lost alert says of a silent truck: its id, the truck, when its
// silence began (its last fix) and when the alert opened.
type quietAlert struct {
	id, vehicle     string
	start, openedAt int64 // ms
}

// A handful of trucks drive, then all fall silent at once while moving on the road: every input
// partition goes quiet. Whatever the number of instances sharing the partitions, and however many
// partitions there are (so that some instances own only quiet partitions, or none with a truck),
// each truck is declared lost once, with the same alert: id, start at its last fix, opened at its
// last fix + signal_lost.after. Event time moves on with the wall clock once every partition is
// read to its end and quiet (pipeline.idle_partition behind); before this, an instance whose
// partitions went quiet never declared its trucks lost.
func TestQuietTrucksDeclaredLost(t *testing.T) {
	watchdog.Start(t, 10*time.Minute, recentLog.tail)
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	const after = time.Minute // the shortest signal_lost.after allowed
	// The trucks' last minute, on a straight line away from every site, in the past (the devices'
	// times need not agree with the wall clock: event time moves on from the newest time read).
	last := time.Now().Add(-time.Hour).Truncate(time.Second)
	var msgs []kafka.Message
	var want []quietAlert
	for i, v := range c.Vehicles[:6] {
		var end time.Time
		for s := 0; s <= 60; s += 5 {
			at := last.Add(time.Duration(s-60+i) * time.Second)
			xy := c.Proj.Forward(c.Origin)
			xy[0] += float64(400*i) + float64(s)*8 // ~30 km/h eastwards
			xy[1] += 300
			if sites := c.SitesAt(xy, nil); len(sites) > 0 {
				t.Fatalf("the test's truck %d drives through site %s", i, c.SiteAt(sites[0]).ID)
			}
			ll := c.Proj.Inverse(xy)
			msgs = append(msgs, fixMsg("muck.gps", v.Plate, at, ll[1], ll[0], 30))
			end = at
		}
		want = append(want, quietAlert{id: detectors.AlertID(detectors.RuleSignalLost, v.Plate, end), vehicle: v.Plate,
			start: end.UnixMilli(), openedAt: end.Add(after).UnixMilli()})
	}
	slices.SortFunc(want, func(a, b quietAlert) int { return strings.Compare(a.vehicle, b.vehicle) })

	for _, tc := range []struct{ instances, partitions int }{{1, 4}, {3, 8}, {3, 24}, {1, 24}} {
		t.Run(fmt.Sprintf("%d instances, %d partitions", tc.instances, tc.partitions), func(t *testing.T) {
			t.Parallel() // each waits a minute of wall time for event time to reach the trucks' silence
			got := runQuiet(t, tc.instances, tc.partitions, after, msgs, len(want))
			if !slices.Equal(got, want) {
				t.Errorf("signal_lost alerts\n got %v\nwant %v", got, want)
			}
		})
	}
}

// runQuiet runs instances pipelines in one consumer group over a broker with partitions input
// partitions, produces msgs, and returns the signal_lost alerts opened once n are stored.
func runQuiet(t *testing.T, instances, partitions int, after time.Duration, msgs []kafka.Message, n int) []quietAlert {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: partitions, Topics: cfg.Topics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bk.Close)
	cfg.City = "../configs/cities/shenzhen"
	cfg.CityReloadInterval = 0
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{addr}, []string{addr}
	cfg.Kafka.GroupID = "quiet"
	cfg.ClickHouse.Addr = []string{chServer.TCPAddr}
	cfg.ClickHouse.Database = fmt.Sprintf("mw_quiet_%d_%d", os.Getpid(), dbSeq.Add(1))
	cfg.Metrics.Listen, cfg.API.Listen = "", ""
	cfg.Pipeline.IdlePartition = time.Second
	cfg.Detectors.Rules.SignalLost.After = after
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, instances)
	for range instances {
		ready := make(chan Started, 1)
		go func() { done <- Run(ctx, cfg, testLogger(t), NewRegistry(), ready) }()
		select {
		case <-ready:
		case err := <-done:
			cancel()
			t.Fatalf("pipeline did not start: %v", err)
		}
	}
	t.Cleanup(func() {
		cancel()
		for range instances {
			if err := <-done; err != nil {
				t.Errorf("pipeline stopped with an error: %v", err)
			}
		}
	})
	produce(t, addr, msgs...)
	env := &testEnv{t: t, cfg: cfg, conn: openConn(t, cfg)}
	const query = "SELECT DISTINCT alert_id, vehicle_id, start_ms, changed_ms FROM alert_changes WHERE rule = 'signal_lost' AND kind = 'opened' ORDER BY vehicle_id, changed_ms"
	env.waitFor(fmt.Sprintf("%d signal_lost alerts", n), 2*time.Minute, func() bool {
		return env.count("SELECT uniqExact(alert_id) FROM alert_changes WHERE rule = 'signal_lost'") >= uint64(n)
	})
	rows, err := env.conn.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []quietAlert
	for rows.Next() {
		var a quietAlert
		if err := rows.Scan(&a.id, &a.vehicle, &a.start, &a.openedAt); err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	return got
}
