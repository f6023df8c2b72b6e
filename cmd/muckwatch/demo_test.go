package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/sink"
	"github.com/muckwatch/muckwatch/tables"
)

var chServer *chlocal.Server

func TestMain(m *testing.M) {
	os.Exit(chlocal.RunTests(m, "the demo's tests", func(s *chlocal.Server) { chServer = s }))
}

// A demo run again on the same data continues after the newest stored position instead of
// simulating the same hours a second time.
func TestDemoStartContinuesStoredData(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cfg := sink.ClickHouseConfig{Addr: []string{chServer.TCPAddr}, Database: fmt.Sprintf("demo_start_%d", os.Getpid())}
	cfg.ApplyDefaults()
	ch, err := sink.OpenClickHouse(ctx, cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); _ = ch.Close() })
	if err := ch.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	back := 6 * time.Hour

	start, resumed, err := demoStart(ctx, cfg, log, now, back)
	if err != nil || resumed || !start.Equal(now.Add(-back)) {
		t.Fatalf("empty database: start %s resumed %v err %v, want %s", start, resumed, err, now.Add(-back))
	}

	// an earlier run stored positions up to 11:20:30.250
	last := time.Date(2026, 11, 23, 11, 20, 30, 250e6, time.UTC)
	t0 := tables.Positions
	b, err := ch.Conn().PrepareBatch(ctx, "INSERT INTO "+t0.In(cfg.Database)+" ("+t0.List("fix_id", "vehicle_id", "ts", "ts_ms")+")")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Abort() }()
	for i, at := range []time.Time{now.Add(-5 * time.Hour), last} {
		if err := b.Append(fmt.Sprintf("f%d", i), "粤B1", at, at.UnixMilli()); err != nil {
			t.Fatalf("cannot append a position: %v", err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	start, resumed, err = demoStart(ctx, cfg, log, now, back)
	if want := time.Date(2026, 11, 23, 11, 20, 31, 0, time.UTC); err != nil || !resumed || !start.Equal(want) {
		t.Fatalf("after a run: start %s resumed %v err %v, want %s (just after the newest stored position)", start, resumed, err, want)
	}
}
