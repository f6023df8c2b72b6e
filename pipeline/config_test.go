package pipeline

import (
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// Every shipped config parses through the real parser, and the embedded default equals the file.
func TestShippedConfigsParse(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no shipped configs found")
	}
	for _, f := range files {
		if _, err := LoadConfig(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	embedded, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if embedded.Detectors.Rules.Dwell.For != 10*time.Minute || embedded.Kafka.Topics.GPS != "muck.gps" || embedded.ClickHouse.Database != "muckwatch" {
		t.Errorf("embedded defaults are off: %+v", embedded)
	}
}

func TestConfigErrors(t *testing.T) {
	f := func(yaml, wantErr string) {
		t.Helper()
		_, err := ParseConfig("test.yaml", []byte(yaml))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("config %q: want error containing %q, got %v", yaml, wantErr, err)
		}
	}
	f("kafka:\n  brokerz: [a:1]\n", "field brokerz not found")
	f("kafka:\n  topics: {gps: a, events: a, officers: c}\n", "must be different topics")
	f("outputs:\n  alerts_topic: muck.gps\n", "also an input topic")
	f("detectors:\n  rules:\n    speeding: {tolerance: 3}\n", "detectors.rules.speeding: tolerance")
	f("clickhouse:\n  database: \"x; DROP\"\n", "database")
	f("kafka:\n  start_offset: middle\n", "start_offset")
	f("log:\n  level: loud\n", "log.level")
	f("metrics:\n  listen: nonsense\n", "metrics.listen")
	f("city_reload_interval: -1s\n", "city_reload_interval")
	f("metrics:\n  healthz_stall: -1s\n", "metrics.healthz_stall")
	f("runtime:\n  memory_limit_mib: -2\n", "runtime.memory_limit_mib")
}

// TestApplyMemoryLimit: the configured limit is the process's while the pipeline runs, with GOGC
// off unless the environment set it; -1 lifts the limit and leaves GOGC; the environment's
// GOMEMLIMIT is left to the runtime, and each undo puts back the limit and GOGC before.
func TestApplyMemoryLimit(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	before, gcBefore := debug.SetMemoryLimit(-1), gcPercent()
	if gcBefore != 100 {
		t.Fatalf("GOGC is %d before the test, want the default 100", gcBefore)
	}
	for _, tc := range []struct {
		mib      int
		env, gc  string
		want     int64
		wantGOGC int
	}{
		{0, "", "", defaultMemoryLimitMiB << 20, -1},
		{600, "", "", 600 << 20, -1},
		{600, "", "200", 600 << 20, 100}, // GOGC=200 set in the environment: the runtime read it at start, left alone
		{-1, "", "", math.MaxInt64, 100},
		{600, "300MiB", "", before, 100}, // the runtime read the environment at start; it is left alone
	} {
		t.Setenv("GOMEMLIMIT", tc.env)
		t.Setenv("GOGC", tc.gc)
		undo := RuntimeConfig{MemoryLimitMiB: tc.mib}.ApplyMemoryLimit(log)
		if got := debug.SetMemoryLimit(-1); got != tc.want {
			t.Errorf("memory_limit_mib %d, GOMEMLIMIT %q: limit %d, want %d", tc.mib, tc.env, got, tc.want)
		}
		if got := gcPercent(); got != tc.wantGOGC {
			t.Errorf("memory_limit_mib %d, GOGC %q: GOGC %d, want %d", tc.mib, tc.gc, got, tc.wantGOGC)
		}
		undo()
		if got := debug.SetMemoryLimit(-1); got != before {
			t.Errorf("memory_limit_mib %d: the limit after undo is %d, want %d", tc.mib, got, before)
		}
		if got := gcPercent(); got != gcBefore {
			t.Errorf("memory_limit_mib %d: GOGC after undo is %d, want %d", tc.mib, got, gcBefore)
		}
	}
}

func TestEmptyConfigIsDefaults(t *testing.T) {
	c, err := ParseConfig("empty.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.GroupID != d.Kafka.GroupID || c.Detectors.Rules.RouteDeviation.For != d.Detectors.Rules.RouteDeviation.For {
		t.Errorf("an empty config differs from the defaults")
	}
}

func TestPasswordNeverInConfig(t *testing.T) {
	data, err := os.ReadFile("../configs/muckwatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "password:") {
		t.Error("the shipped config has a password field; secrets come from the environment")
	}
}
