package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/internal/watchdog"
)

// chServer is the real ClickHouse server the integration tests share.
var chServer *chlocal.Server

func TestMain(m *testing.M) {
	os.Exit(chlocal.RunTests(m, "integration tests", func(s *chlocal.Server) { chServer = s }))
}

var dbSeq atomic.Int32

// testEnv is one pipeline with its own broker, database and consumer group.
type testEnv struct {
	t       testing.TB
	cfg     Config
	broker  string
	conn    driver.Conn
	started Started
	stop    func() error
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(&recentLog, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// recentLog keeps the pipelines' last log lines, for the watchdog to show what a hung test's
// pipeline was doing.
var recentLog logRing

type logRing struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, string(p))
	if len(r.lines) > 400 {
		r.lines = r.lines[len(r.lines)-200:]
	}
	return len(p), nil
}

func (r *logRing) last(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines[max(0, len(r.lines)-n):])
}

// startEnv starts a broker and a pipeline on the shared ClickHouse server, with a fresh database.
func startEnv(t testing.TB, edit func(*Config)) *testEnv {
	t.Helper()
	return startEnvLog(t, edit, testLogger(t))
}

// startEnvLog is startEnv with the pipeline logging to log.
func startEnvLog(t testing.TB, edit func(*Config), log *slog.Logger) *testEnv {
	t.Helper()
	watchdog.Start(t, 10*time.Minute, recentLog.tail)
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: 4, Topics: cfg.Topics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bk.Close)
	cfg.City = "../configs/cities/shenzhen"
	cfg.CityReloadInterval = 0
	cfg.Kafka.Brokers = []string{addr}
	cfg.Outputs.Brokers = []string{addr}
	cfg.ClickHouse.Addr = []string{chServer.TCPAddr}
	cfg.ClickHouse.Database = fmt.Sprintf("mw_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	cfg.Metrics.Listen = "127.0.0.1:0"
	cfg.API.Listen = "127.0.0.1:0"
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan Started, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, log, NewRegistry(), ready) }()
	var st Started
	select {
	case st = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("pipeline did not start: %v", err)
	}
	conn := openConn(t, cfg)
	env := &testEnv{t: t, cfg: cfg, broker: addr, conn: conn, started: st}
	stopped := false
	env.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() {
		if err := env.stop(); err != nil {
			t.Errorf("pipeline stopped with an error: %v", err)
		}
	})
	return env
}

// openConn connects to the config's ClickHouse database, closed when the test ends.
func openConn(t testing.TB, cfg Config) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: cfg.ClickHouse.Addr, Auth: clickhouse.Auth{Database: cfg.ClickHouse.Database}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (e *testEnv) count(query string, args ...any) uint64 {
	e.t.Helper()
	var n uint64
	if err := e.conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitFor polls ClickHouse until cond holds, failing after the deadline. The pipeline is another
// system; polling its observable outcome is the synchronisation, not a fixed sleep.
func (e *testEnv) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail is the pipelines' last log lines, for the watchdog.
func (r *logRing) tail() []string { return r.last(40) }
