package sink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/record"
)

// chAddr is the native address of the throwaway ClickHouse server of this test binary.
var chAddr string

func TestMain(m *testing.M) {
	srv, err := chlocal.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: sink tests need a ClickHouse server: %v\n", err)
		os.Exit(1)
	}
	chAddr = srv.TCPAddr
	code := m.Run()
	if err := srv.Destroy(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot stop the test ClickHouse server: %v\n", err)
	}
	if code == 0 {
		if leaked := leakedGoroutines(5 * time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "FAIL: goroutines leaked by the sink tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines waits up to d for the goroutines of the clients this package starts
// (clickhouse-go, kafka-go, the kfake broker) to end, and returns the stacks of those left.
func leakedGoroutines(d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "clickhouse-go") || strings.Contains(g, "segmentio/kafka-go") ||
				strings.Contains(g, "franz-go/pkg/kfake") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return strings.Join(leaked, "\n\n")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

var dbSeq atomic.Int64

// openTestDB opens a fresh, migrated database for one test, on the test server (or through addr
// when given), and closes it at the end of the test.
func openTestDB(t testing.TB, reg prometheus.Registerer, tune func(*ClickHouseConfig)) *ClickHouse {
	t.Helper()
	name := regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(t.Name(), "_")
	cfg := ClickHouseConfig{
		Addr:     []string{chAddr},
		Database: fmt.Sprintf("mw_%s_%d", strings.ToLower(name), dbSeq.Add(1)),
	}
	if tune != nil {
		tune(&cfg)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	ctx := context.Background()
	c, err := OpenClickHouse(ctx, cfg, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// base is the device time of the test records: millisecond precision on purpose.
var base = time.Date(2026, 5, 17, 8, 30, 15, 123_000_000, time.UTC)

func testAlert(id string, version uint64, kind detectors.ChangeKind) detectors.Change {
	a := detectors.Alert{
		ID:        id,
		Rule:      detectors.RuleSpeeding,
		Severity:  detectors.SeverityWarning,
		Phase:     detectors.PhaseIn,
		Status:    detectors.StatusOpen,
		VehicleID: "粤B12345",
		Company:   "深圳市泥头车运输有限公司",
		PermitID:  "ZTC-2026-0042",
		Place:     "深南大道限速区",
		District:  "福田区",
		Start:     base,
		Lat:       22.543099,
		Lon:       114.057868,
		Value:     62.5,
		Limit:     40,
		Evidence:  "62.5 km/h for 35 s where the limit is 40 km/h",
		Version:   version,
		Updated:   base.Add(time.Duration(version) * 7 * time.Second),
	}
	if kind == detectors.ChangeResolved {
		a.Status = detectors.StatusResolved
		a.End = a.Updated
	}
	return detectors.Change{Kind: kind, Alert: a}
}

// testBatch returns a batch with every part: fixes of two trucks, an event, an officer
// position, an alert change and a reject whose value is not valid UTF-8.
func testBatch() *Batch {
	src := func(topic string, off int64) record.Source {
		return record.Source{Shard: record.Shard{Topic: topic, Partition: 3}, Offset: off}
	}
	b := &Batch{}
	for i := range 5 {
		id := fmt.Sprintf("粤B12345-%d", i)
		if i%2 == 1 {
			id = "" // sent without event_id: the sink derives its id (record.Fix.ID)
		}
		b.Fixes = append(b.Fixes, record.Fix{
			FixID:     id,
			VehicleID: "粤B12345",
			Time:      base.Add(time.Duration(i) * 1500 * time.Millisecond),
			Lat:       22.543099 + float64(i)*1e-4,
			Lon:       114.057868,
			SpeedKmh:  41.5,
			HasSpeed:  true,
			Heading:   87.25,
			ACC:       true,
			Lifted:    i == 4,
			Alarm:     1 << 1,
			Src:       src("muck.fixes", int64(100+i)),
		})
	}
	b.Fixes = append(b.Fixes, record.Fix{FixID: "粤BD7788-0", VehicleID: "粤BD7788", Time: base, Lat: 22.6, Lon: 114.1,
		Src: src("muck.fixes", 200)})
	b.Events = append(b.Events, record.Event{
		EventID: "ev-1", VehicleID: "粤B12345", Time: base.Add(250 * time.Millisecond), Kind: record.KindWeigh,
		Source: "weigh-07", SiteID: "site-前海", Lat: 22.5, Lon: 113.9, HasPos: true, LoadKg: 31250.5, HasLoad: true,
		Confidence: 0.875, Src: src("muck.events", 7),
	})
	b.Officers = append(b.Officers, record.OfficerPosition{
		OfficerID: "警-0451", Time: base.Add(999 * time.Millisecond), Lat: 22.55, Lon: 114.06, Available: true,
		Src: src("muck.officers", 9),
	})
	b.Changes = append(b.Changes, testAlert("a-open", 1, detectors.ChangeOpened))
	b.Rejects = append(b.Rejects, record.Reject{
		Src: src("muck.fixes", 150), Key: []byte("粤B12345"), Value: []byte{'{', 0xff, 0xfe, '}'},
		Reason: record.ReasonMalformed, Detail: "invalid character 'ÿ' looking for beginning of object key string",
		Received: base.Add(2 * time.Second),
	})
	return b
}

var regexpVersion = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// metricValue returns the value of a counter or gauge.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither a counter nor a gauge", m.Desc())
	return 0
}

// TestFixIDColumn: the fix_id column holds each fix's event_id, or for a fix sent without one
// the id derived from its plate and device time, and a buffer built again (the arena reused)
// holds the new rows' ids, not a mix with the old ones.
func TestFixIDColumn(t *testing.T) {
	at := time.UnixMilli(1795420800123).UTC()
	fix := func(id, plate string, ms int64) record.Fix {
		return record.Fix{FixID: id, VehicleID: plate, Time: at.Add(time.Duration(ms) * time.Millisecond)}
	}
	cs := fixIDCol()
	f := func(buf any, rows []record.Fix, want ...string) any {
		t.Helper()
		buf = cs.build(rows, 0, buf)
		got, ok := cs.valuesOf(buf).([]string)
		if !ok || !slices.Equal(got, want) {
			t.Fatalf("fix_id column = %q, want %q", got, want)
		}
		return buf
	}
	buf := f(nil, []record.Fix{fix("e-1", "粤B1", 0), fix("", "粤B12345", 0), fix("", "粤B2", 7), fix("e-2", "粤B1", 9)},
		"e-1", "粤B12345@1795420800123", "粤B2@1795420800130", "e-2")
	buf = f(buf, []record.Fix{fix("", "粤A9", 1), fix("", "粤B1", 2)}, "粤A9@1795420800124", "粤B1@1795420800125")
	buf = f(buf, []record.Fix{fix("only-1", "粤B1", 0)}, "only-1")
	cs.clear(buf) // the pooled buffer keeps no fix's id alive
	if ids := buf.(*fixIDs).ids; len(ids) != 1 || ids[0] != "" {
		t.Errorf("clear kept %q", ids)
	}
	f(buf, nil)
}
