package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
	"github.com/muckwatch/muckwatch/sink"
)

// The targets ("a whole nation's muck trucks on one small box"). KB and MB are read the
// stricter way, as 1000 and 10^6 bytes.
const (
	targetFixesPerSec   = 250_000
	targetCeilingShare  = 0.50
	targetDetectP99     = 50 * time.Millisecond
	targetQueryableP99  = 2 * time.Second
	targetStateBytes    = 2_000
	targetRSSBytes      = 500_000_000
	targetRSSVehicles   = 100_000
	targetLookupP99     = 50 * time.Millisecond
	benchFastKmh        = 95  // a speeding truck: far above every limit, severe everywhere
	benchViolatorEvery  = 100 // vehicle i speeds throughout if i%100 == 0, from a moment in the live phase if i%100 == 50
	benchProbeEvery     = 100 * time.Millisecond
	benchProbePoll      = 200 * time.Millisecond
	benchProduceEvery   = 20 * time.Millisecond // the live producer writes what is due this often, as a gateway batches
	benchStall          = 90 * time.Second
	benchTokensEnv      = "MUCKWATCH_BENCH_API_TOKENS"
	benchCeilingGroupID = "muckwatch-bench-ceiling"
)

// benchOptions configure one run of `muckwatch bench`.
type benchOptions struct {
	Fixes      int           // fixes preloaded as a backlog
	Vehicles   int           // vehicles they come from (and the city's registered fleet)
	City       string        // "sample" (the sample city's geography) or "large" (10,000 routes, 1,000 zones)
	Partitions int           // partitions per topic
	Interval   time.Duration // reporting interval of the backlog's terminals
	// At is the city's local time of day (HH:MM) the backlog's device time starts at, on the
	// latest weekday that leaves the backlog before now; "now": the backlog ends a minute ago.
	At          string
	Live        time.Duration // the half-rate measurement window (detection and fix → queryable)
	LiveRate    float64       // fixes/s of the live traffic; 0: half the rate measured on the backlog
	Lookups     int           // squad lookups, after the window, while live traffic continues
	LookupRate  float64       // lookups/s, arriving at random as squads' do; 0: as fast as Concurrency clients can
	Concurrency int           // squads (each its own token); with LookupRate 0, the concurrent clients
	Seed        uint64
	ConfigPath  string // empty: the embedded config; addresses are replaced by the bench's own
	// ClickHouse is host:port of a server to use; empty starts a throwaway local server with
	// internal/chlocal. ClickHouseDir is that server's folder (for its RSS), if known.
	ClickHouse, ClickHouseDir string
	// BrokerInProcess runs the embedded broker inside this process instead of a child process
	// (`muckwatch broker`); its log then counts in this process's heap and RSS.
	BrokerInProcess bool
	// SquadsInProcess runs the squads' lookups inside this process instead of a child process
	// (`muckwatch squads`): their HTTP clients then share the pipeline's runtime, CPU and pauses.
	SquadsInProcess bool
	// ChildCommand, when set, makes the command that runs subcommand name with args (the tests
	// run their own binary); nil runs this executable.
	ChildCommand   func(name string, args ...string) *exec.Cmd
	CPUProfile     string    // write a CPU profile of the backlog phase here
	MemProfile     string    // write a heap profile here once the backlog is worked off
	LiveCPUProfile string    // write a CPU profile of the live window here
	Progress       io.Writer // phase messages; nil discards them
}

// benchCPU is the CPU the processes used during a phase, in cores (CPU seconds per second).
type benchCPU struct {
	Pipeline   float64 `json:"pipeline_process"` // this process: the pipeline, and the bench's producer and probes
	Broker     float64 `json:"broker,omitempty"`
	ClickHouse float64 `json:"clickhouse,omitempty"`
	// Others is what the rest of the machine used meanwhile (/proc/stat): another load on the
	// machine perturbs every figure.
	Others float64 `json:"others"`
}

// benchBatches is where a phase's time per batch went, from the pipeline's own histograms: means
// per batch, in milliseconds.
type benchBatches struct {
	Batches  uint64  `json:"batches"`
	Records  float64 `json:"records"`   // muckwatch_ingest_batch_records
	DetectMs float64 `json:"detect_ms"` // muckwatch_detector_batch_seconds
	InsertMs float64 `json:"insert_ms"` // muckwatch_clickhouse_insert_seconds, every table
	HandleMs float64 `json:"handle_ms"` // muckwatch_ingest_handle_seconds: detection and every write
	WallMs   float64 `json:"wall_ms"`   // the phase's wall time per batch
	// HeldShare is the share of the phase's wall time the consumer waited for writes to make room
	// for a batch (muckwatch_consumer_held_seconds_total).
	HeldShare float64 `json:"held_share"`
	// Inserts are the ClickHouse inserts of the phase by table (muckwatch_clickhouse_batch_rows):
	// ClickHouse's cost goes with the parts it makes and merges as much as with the rows.
	Inserts map[string]float64 `json:"inserts"`
	// WriteStepMs is the mean time of each step of the phase's writes (muckwatch_pipeline_write_seconds).
	Writes      float64            `json:"writes"`
	WriteStepMs map[string]float64 `json:"write_step_ms"`
}

// histSums are the counts and sums of the histograms benchBatches reads, and the counters' values
// (as sums).
type histSums map[string][2]float64

func gatherSums(g prometheus.Gatherer) histSums {
	out := histSums{}
	mfs, err := g.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v := out[mf.GetName()]
			if h := m.GetHistogram(); h != nil {
				out[mf.GetName()] = [2]float64{v[0] + float64(h.GetSampleCount()), v[1] + h.GetSampleSum()}
				if label := splitLabel(mf.GetName()); label != "" {
					out[mf.GetName()+"/"+labelMap(m)[label]] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
				}
			} else if c := m.GetCounter(); c != nil {
				out[mf.GetName()] = [2]float64{v[0], v[1] + c.GetValue()}
			}
		}
	}
	return out
}

const (
	insertRowsMetric = "muckwatch_clickhouse_batch_rows"
	writeStepMetric  = "muckwatch_pipeline_write_seconds"
)

// splitLabel is the label by whose values gatherSums also keeps the histogram name ("" for none).
func splitLabel(name string) string {
	switch name {
	case insertRowsMetric:
		return "table"
	case writeStepMetric:
		return "step"
	}
	return ""
}

// batchesSince returns the means per batch between two gatherings, over wall.
func batchesSince(before, after histSums, wall time.Duration) benchBatches {
	d := func(name string) (count, sum float64) {
		return after[name][0] - before[name][0], after[name][1] - before[name][1]
	}
	n, _ := d("muckwatch_detector_batch_seconds")
	if n <= 0 {
		return benchBatches{}
	}
	_, records := d("muckwatch_ingest_batch_records")
	_, detect := d("muckwatch_detector_batch_seconds")
	_, insert := d("muckwatch_clickhouse_insert_seconds")
	_, handle := d("muckwatch_ingest_handle_seconds")
	_, held := d("muckwatch_consumer_held_seconds_total")
	b := benchBatches{Batches: uint64(n), Records: records / n, DetectMs: detect / n * 1000, InsertMs: insert / n * 1000,
		HandleMs: handle / n * 1000, WallMs: wall.Seconds() / n * 1000, HeldShare: held / wall.Seconds(), Inserts: map[string]float64{}}
	b.WriteStepMs = map[string]float64{}
	for name := range after {
		if table, ok := strings.CutPrefix(name, insertRowsMetric+"/"); ok {
			if n, _ := d(name); n > 0 {
				b.Inserts[table] = n
			}
		}
		if step, ok := strings.CutPrefix(name, writeStepMetric+"/"); ok {
			if n, sum := d(name); n > 0 {
				b.WriteStepMs[step] = sum / n * 1000
				b.Writes = max(b.Writes, n)
			}
		}
	}
	return b
}

func (b benchBatches) String() string {
	if b.Batches == 0 {
		return "no batch"
	}
	return fmt.Sprintf("%d batches of %.0f records: detect %.1f ms, ClickHouse inserts %.1f ms, handle (detect and every write) %.1f ms, wall %.1f ms; consumer held back by the writes %.0f %% of the time; inserts: %s; %.0f writes: records %.1f ms beside changes %.1f ms then checkpoints %.1f ms",
		b.Batches, b.Records, b.DetectMs, b.InsertMs, b.HandleMs, b.WallMs, 100*b.HeldShare, joinCounts(b.Inserts),
		b.Writes, b.WriteStepMs["records"], b.WriteStepMs["changes"], b.WriteStepMs["checkpoints"])
}

// joinCounts formats counts as "key n, key n", by key.
func joinCounts(counts map[string]float64) string {
	keys := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.0f", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

// benchProcs are the processes whose CPU and memory the bench reads from /proc; an empty pid is
// not read.
type benchProcs struct{ broker, clickhouse string }

type cpuMark struct {
	at                              time.Time
	self, broker, clickhse, machine float64
}

func (p benchProcs) mark() cpuMark {
	m := cpuMark{at: time.Now()}
	m.machine, _ = machineCPU()
	m.self, _ = procCPU("self")
	if p.broker != "" {
		m.broker, _ = procCPU(p.broker)
	}
	if p.clickhouse != "" {
		m.clickhse, _ = procCPU(p.clickhouse)
	}
	return m
}

// since returns the cores each process used since m.
func (p benchProcs) since(m cpuMark) benchCPU {
	n := p.mark()
	secs := n.at.Sub(m.at).Seconds()
	c := benchCPU{Pipeline: (n.self - m.self) / secs, Broker: (n.broker - m.broker) / secs, ClickHouse: (n.clickhse - m.clickhse) / secs}
	if n.machine > 0 && m.machine > 0 {
		c.Others = max(0, (n.machine-m.machine)/secs-c.Pipeline-c.Broker-c.ClickHouse)
	}
	return c
}

// machineCPU returns the CPU seconds the whole machine has been busy (not idle nor waiting for
// I/O), from /proc/stat.
func machineCPU() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("cannot read the machine's CPU time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	if len(fields) < 6 || fields[0] != "cpu" {
		return 0, fmt.Errorf("cannot read the machine's CPU time: %q", line)
	}
	var busy uint64
	for k, f := range fields[1:] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cannot read the machine's CPU time: %q", line)
		}
		if k != 3 && k != 4 && k < 8 { // idle and iowait are not busy; guest time is in user already
			busy += v
		}
	}
	return float64(busy) / 100, nil
}

// procCPU returns the CPU seconds (user and system) process pid has used, from /proc/PID/stat
// (in clock ticks of 1/100 s, USER_HZ on Linux).
func procCPU(pid string) (float64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("cannot read the CPU time of process %s: %w", pid, err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("cannot read the CPU time of process %s: %q", pid, s)
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cannot read the CPU time of process %s: %q", pid, s)
	}
	return float64(utime+stime) / 100, nil
}

// benchTarget is one of the targets beside its measured figure.
type benchTarget struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, SHORT or n/a
}

// benchReport is everything one run measured. Durations are in milliseconds, rates per second,
// sizes in bytes.
type benchReport struct {
	City              string `json:"city"`
	Routes            int    `json:"routes"`
	Zones             int    `json:"zones"`
	Vehicles          int    `json:"vehicles"`
	Partitions        int    `json:"partitions"`
	Broker            string `json:"broker"`
	Squads            string `json:"squads"` // where the squads' lookups ran
	ClickHouseVersion string `json:"clickhouse_version"`
	GOMAXPROCS        int    `json:"gomaxprocs"`

	Fixes          int     `json:"fixes"`
	PreloadSeconds float64 `json:"preload_seconds"`
	PreloadRate    float64 `json:"preload_fixes_per_sec"`

	CeilingSeconds float64 `json:"ceiling_seconds"`
	CeilingRate    float64 `json:"ceiling_records_per_sec"`

	StartupSeconds  float64 `json:"pipeline_startup_seconds"`
	PipelineSeconds float64 `json:"pipeline_seconds"`
	PipelineRate    float64 `json:"pipeline_fixes_per_sec"`
	PipelineRateAll float64 `json:"pipeline_fixes_per_sec_with_startup"`
	CeilingShare    float64 `json:"ceiling_share"`
	BacklogAlerts   float64 `json:"backlog_alerts_opened"`
	// BacklogAlertsByRule: the same, by rule (those that opened any).
	BacklogAlertsByRule map[string]float64 `json:"backlog_alerts_opened_by_rule"`
	DeviceStart         string             `json:"device_start"` // the backlog's first device time, in the city's zone
	BacklogStored       uint64             `json:"backlog_rows_stored"`

	LiveTargetRate   float64 `json:"live_target_rate"`
	LiveAchievedRate float64 `json:"live_achieved_rate"`
	LiveWindowFixes  int     `json:"live_window_fixes"`
	LiveLagAtEnd     int64   `json:"live_lag_at_window_end"`
	LiveFixes        int     `json:"live_fixes"`

	DetectBatches    uint64  `json:"detect_hist_batches"`
	DetectP50Ms      float64 `json:"detect_hist_p50_ms"`
	DetectP99Ms      float64 `json:"detect_hist_p99_ms"`
	DetectOverflow   bool    `json:"detect_hist_p99_beyond_last_bucket"`
	WaitBatches      uint64  `json:"wait_hist_batches"`
	WaitP50Ms        float64 `json:"wait_hist_p50_ms"`
	WaitP99Ms        float64 `json:"wait_hist_p99_ms"`
	LiveGCCycles     uint64  `json:"live_gc_cycles"`
	AlertSamples     int     `json:"alert_e2e_samples"`
	AlertP50Ms       float64 `json:"alert_e2e_p50_ms"`
	AlertP99Ms       float64 `json:"alert_e2e_p99_ms"`
	AlertMaxMs       float64 `json:"alert_e2e_max_ms"`
	QueryableProbes  int     `json:"queryable_probes"`
	QueryableMissing int     `json:"queryable_missing"`
	QueryableP50Ms   float64 `json:"queryable_p50_ms"`
	QueryableP99Ms   float64 `json:"queryable_p99_ms"`
	QueryableMaxMs   float64 `json:"queryable_max_ms"`

	Tracked        int     `json:"tracked_vehicles"`
	TrackedAtReady int     `json:"tracked_at_ready"`
	HeapBefore     uint64  `json:"heap_before"`
	HeapReady      uint64  `json:"heap_ready"`
	HeapAfter      uint64  `json:"heap_after"`
	FullGCMs       float64 `json:"full_gc_ms_after_backlog"`
	HeapPerVehicle float64 `json:"heap_per_vehicle"`
	HeapAllPerVeh  float64 `json:"heap_all_per_vehicle"`
	PeakRSS        uint64  `json:"peak_rss"`
	RSS            uint64  `json:"rss"`
	PeakRSSReset   bool    `json:"peak_rss_reset_at_pipeline_start"`
	BrokerPeakRSS  uint64  `json:"broker_peak_rss,omitempty"`
	ClickHousePeak uint64  `json:"clickhouse_peak_rss,omitempty"`
	ClickHouseRSS  uint64  `json:"clickhouse_rss,omitempty"`

	Lookups        int     `json:"lookups"`
	Concurrency    int     `json:"lookup_concurrency"`
	LookupTarget   float64 `json:"lookup_target_rate,omitempty"`
	LookupInFlight int     `json:"lookup_max_in_flight"`
	LookupFailures int     `json:"lookup_failures"`
	LookupRate     float64 `json:"lookups_per_sec"`
	LookupP50Ms    float64 `json:"lookup_p50_ms"`
	LookupP99Ms    float64 `json:"lookup_p99_ms"`
	LookupMaxMs    float64 `json:"lookup_max_ms"`
	LookupLag      int64   `json:"lookup_phase_lag_at_end"`

	BacklogCPU     benchCPU     `json:"backlog_cpu_cores"`
	LiveCPU        benchCPU     `json:"live_window_cpu_cores"`
	BacklogBatches benchBatches `json:"backlog_batches"`
	LiveBatches    benchBatches `json:"live_window_batches"`

	Produced uint64 `json:"produced"`
	Stored   uint64 `json:"stored"`

	Targets []benchTarget `json:"targets"`
	Notes   []string      `json:"notes"`
}

func cmdBench(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o benchOptions
	fl.IntVar(&o.Fixes, "fixes", 2_000_000, "GPS fixes preloaded into the broker as a backlog")
	fl.IntVar(&o.Vehicles, "vehicles", 100_000, "vehicles (the generated city registers them all, with permits)")
	fl.StringVar(&o.City, "city", "sample", "sample: the sample city's geography (30 routes, 18 zones); large: 10,000 routes and 1,000 zones")
	fl.IntVar(&o.Partitions, "partitions", 4, "partitions per topic")
	fl.DurationVar(&o.Interval, "interval", 10*time.Second, "reporting interval of the backlog's terminals")
	fl.StringVar(&o.At, "at", "10:00", "the city's local time of day (HH:MM) the backlog's device time starts at, on the latest weekday before now, so that the same restricted-zone hours apply whenever the bench runs (the sample city closes zones 07:00-09:00, 16:30-19:00 and 22:00-06:00, and at weekends 09:00-18:00 too); now: the backlog ends a minute before the bench starts")
	fl.DurationVar(&o.Live, "live", 20*time.Second, "length of the half-rate measurement window")
	fl.Float64Var(&o.LiveRate, "live-rate", 0, "fixes/s of the live traffic (0: half the rate measured on the backlog, as the issue asks)")
	fl.IntVar(&o.Lookups, "lookups", 20_000, "squad lookups after the window, with the live traffic still running")
	fl.Float64Var(&o.LookupRate, "lookup-rate", 1000, "squad lookups/s, arriving at random (open loop: a slow answer does not hold the next back); 0: closed loop, --concurrency clients as fast as they can")
	fl.IntVar(&o.Concurrency, "concurrency", 200, "squads, each with its own token (with --lookup-rate 0: concurrent clients)")
	fl.Uint64Var(&o.Seed, "seed", 1, "random seed")
	fl.StringVar(&o.ConfigPath, "config", "", "config file (default: the embedded configs/muckwatch.yaml); its Kafka, ClickHouse, API and city settings are replaced by the bench's own")
	fl.StringVar(&o.ClickHouse, "clickhouse", "", "use this ClickHouse (host:port) instead of a throwaway local server; the bench's database is left on it")
	brokerMode := fl.String("broker", "process", "process: the embedded broker in a child process (muckwatch broker), so this process's memory is the pipeline's; inprocess: in this process")
	squadsMode := fl.String("squads", "process", "process: the squads' lookups from a child process (muckwatch squads), as a load generator runs, so that their HTTP clients are not the pipeline's; inprocess: from this process")
	fl.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the pipeline working off the backlog to this file")
	fl.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile to this file once the backlog is worked off")
	fl.StringVar(&o.LiveCPUProfile, "live-cpuprofile", "", "write a CPU profile of the live window (the pipeline's process; the live traffic and the squads are processes of their own) to this file")
	asJSON := fl.Bool("json", false, "also print the report as JSON")
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch *brokerMode {
	case "process":
	case "inprocess":
		o.BrokerInProcess = true
	default:
		return fmt.Errorf("--broker must be process or inprocess, got %q", *brokerMode)
	}
	switch *squadsMode {
	case "process":
	case "inprocess":
		o.SquadsInProcess = true
	default:
		return fmt.Errorf("--squads must be process or inprocess, got %q", *squadsMode)
	}
	o.Progress = os.Stderr
	r, err := runBench(ctx, o)
	if err != nil {
		return err
	}
	printBenchReport(os.Stdout, r)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("cannot write the JSON report: %w", err)
		}
	}
	return nil
}

func (o *benchOptions) validate() error {
	switch {
	case o.Vehicles < 1:
		return fmt.Errorf("--vehicles must be at least 1, got %d", o.Vehicles)
	case o.Fixes < o.Vehicles:
		return fmt.Errorf("--fixes (%d) must be at least --vehicles (%d): every vehicle reports", o.Fixes, o.Vehicles)
	case o.Partitions < 1:
		return fmt.Errorf("--partitions must be at least 1, got %d", o.Partitions)
	case o.City != "sample" && o.City != "large":
		return fmt.Errorf("--city must be sample or large, got %q", o.City)
	case o.Interval < time.Second:
		return fmt.Errorf("--interval must be at least 1s, got %s", o.Interval)
	case o.Live < time.Second:
		return fmt.Errorf("--live must be at least 1s, got %s", o.Live)
	case o.LiveRate < 0:
		return fmt.Errorf("--live-rate must not be negative, got %g", o.LiveRate)
	case o.Lookups < 1 || o.Concurrency < 1:
		return fmt.Errorf("--lookups and --concurrency must be at least 1, got %d and %d", o.Lookups, o.Concurrency)
	case o.LookupRate < 0:
		return fmt.Errorf("--lookup-rate must not be negative, got %g", o.LookupRate)
	}
	if span := time.Duration((o.Fixes+o.Vehicles-1)/o.Vehicles) * o.Interval; span > 6*24*time.Hour {
		return fmt.Errorf("the backlog spans %s of device time (fixes / vehicles × interval); the decoder rejects fixes older than a week", span)
	}
	if o.At != "now" {
		if _, err := time.Parse("15:04", o.At); err != nil {
			return fmt.Errorf("--at must be a time of day HH:MM or now, got %q", o.At)
		}
	}
	return nil
}

func (o *benchOptions) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
}

// runBench runs the whole benchmark: generate the city, start the broker and ClickHouse, preload
// the backlog, measure the raw Kafka ceiling, run the pipeline on the backlog, then live traffic at
// half its rate, and read the memory figures.
func runBench(ctx context.Context, o benchOptions) (*benchReport, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	r := &benchReport{City: o.City, Vehicles: o.Vehicles, Partitions: o.Partitions, Fixes: o.Fixes, GOMAXPROCS: runtime.GOMAXPROCS(0), Notes: []string{}}
	cfg, err := pipeline.LoadConfig(o.ConfigPath)
	if err != nil {
		return nil, err
	}

	// The city: the sample's geography (or a large one), with every vehicle registered.
	tmp, err := os.MkdirTemp("", "muckwatch-bench-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	cityDir := filepath.Join(tmp, "city")
	so := sim.DefaultSampleCityOptions()
	so.Name = fmt.Sprintf("Shenzhen (sample geography, %d vehicles)", o.Vehicles)
	if o.City == "large" {
		so = sim.SampleCityOptions{Name: fmt.Sprintf("Shenzhen (large, %d vehicles)", o.Vehicles), ConstructionSites: 500, DisposalSites: 100,
			Routes: 10_000, RestrictedZones: 600, SpeedZones: 400, Companies: 150}
	}
	so.Vehicles = o.Vehicles
	o.logf("generating the %s city with %d vehicles in %s", o.City, o.Vehicles, cityDir)
	if err := sim.GenerateSampleCity(cityDir, so); err != nil {
		return nil, fmt.Errorf("cannot generate the city: %w", err)
	}
	c, err := city.Load(cityDir)
	if err != nil {
		return nil, err
	}
	r.City, r.Routes, r.Zones = c.Name, len(c.Routes), len(c.Zones)
	fl, err := newBenchFleet(c, o.Seed)
	if err != nil {
		return nil, err
	}

	// ClickHouse, as the demo starts it (throwaway folder), unless given.
	if o.ClickHouse == "" {
		dir := filepath.Join(tmp, "clickhouse")
		o.logf("starting a local ClickHouse server in %s", dir)
		srv, err := chlocal.StartIn(dir)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := srv.Destroy(); err != nil {
				o.logf("cannot stop the local ClickHouse server: %v", err)
			}
		}()
		o.ClickHouse, o.ClickHouseDir = srv.TCPAddr, srv.Dir
	}

	// The broker, over real TCP.
	brokerAddr, brokerPID, stopBroker, err := startBenchBroker(ctx, &o, cfg, filepath.Join(tmp, "broker"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := stopBroker(); err != nil {
			o.logf("%v", err)
		}
	}()
	r.Broker = "child process (muckwatch broker)"
	if o.BrokerInProcess {
		r.Broker = "in this process"
	}
	r.Squads = "a child process (muckwatch squads; its CPU is among the other processes')"
	if o.SquadsInProcess {
		r.Squads = "this process"
	}
	var procs benchProcs
	if brokerPID > 0 {
		procs.broker = strconv.Itoa(brokerPID)
	}
	if o.ClickHouseDir != "" {
		if b, err := os.ReadFile(filepath.Join(o.ClickHouseDir, "server.pid")); err == nil {
			procs.clickhouse = strings.TrimSpace(string(b))
		}
	}

	cfg.City = cityDir
	cfg.CityReloadInterval = 0
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{brokerAddr}, []string{brokerAddr}
	cfg.ClickHouse.Addr = []string{o.ClickHouse}
	cfg.ClickHouse.Database = fmt.Sprintf("muckwatch_bench_%d", time.Now().UnixNano())
	cfg.Metrics.Listen = "" // the bench reads the registry directly
	cfg.API.Listen = "127.0.0.1:0"
	cfg.API.TokensEnv = benchTokensEnv
	cfg.Log.Level = "warn"
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := pipeline.NewLogger(cfg.Log)
	ch, err := sink.OpenClickHouse(ctx, cfg.ClickHouse, log, nil)
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	r.ClickHouseVersion = ch.ServerVersion()

	// 1. The backlog.
	o.logf("preloading %d fixes of %d vehicles into %s (%d partitions)", o.Fixes, o.Vehicles, cfg.Kafka.Topics.GPS, o.Partitions)
	simEnd, err := preload(ctx, fl, partitionsOf(fl, o.Partitions), c.Location, brokerAddr, cfg.Kafka.Topics.GPS, o.Fixes, o.Interval, o.At, r)
	if err != nil {
		return nil, err
	}
	// The live traffic comes from a process of its own, which drives the same fleet on; this
	// process keeps only the plates, for the squads.
	live := benchLiveFleet{cityDir: cityDir, plates: fl.Plates(), t0: fl.Origin(), simStart: max(simEnd.UnixMilli(), fl.LastFix()+1)}
	o.logf("preloaded in %.1fs (%.0f fixes/s)", r.PreloadSeconds, r.PreloadRate)

	// 2. The raw ceiling: a bare kafka-go group reader fetching and discarding the backlog.
	o.logf("raw ceiling: a bare kafka-go group reader fetches the %d records", o.Fixes)
	if err := measureCeiling(ctx, cfg, o.Fixes, r); err != nil {
		return nil, err
	}
	o.logf("ceiling: %.0f records/s (%.1fs)", r.CeilingRate, r.CeilingSeconds)

	// 3. The pipeline on the backlog.
	tokens := make([]string, o.Concurrency)
	entries := make([]string, o.Concurrency)
	for k := range tokens {
		if tokens[k], entries[k], err = api.NewToken(api.RoleSquad, fmt.Sprintf("bench-squad-%03d", k)); err != nil {
			return nil, fmt.Errorf("cannot make an API token: %w", err)
		}
	}
	if err := os.Setenv(benchTokensEnv, strings.Join(entries, ",")); err != nil {
		return nil, fmt.Errorf("cannot pass the API tokens: %w", err)
	}
	defer os.Unsetenv(benchTokensEnv)

	var ms runtime.MemStats
	readHeap := func() uint64 {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	r.HeapBefore = readHeap()
	cpuBacklog := procs.mark()
	debug.FreeOSMemory()
	r.PeakRSSReset = resetPeakRSS() == nil
	if !r.PeakRSSReset {
		r.Notes = append(r.Notes, "cannot reset the peak RSS (/proc/self/clear_refs): it includes the preload and the ceiling phases")
	}
	var prof *os.File
	if o.CPUProfile != "" {
		if prof, err = os.Create(o.CPUProfile); err != nil {
			return nil, fmt.Errorf("cannot create the CPU profile: %w", err)
		}
		defer prof.Close()
		if err := pprof.StartCPUProfile(prof); err != nil {
			return nil, fmt.Errorf("cannot start the CPU profile: %w", err)
		}
	}
	stopProfile := func() {
		if prof != nil {
			pprof.StopCPUProfile()
			prof = nil
		}
	}
	defer stopProfile()

	reg := pipeline.NewRegistry()
	pctx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipeline()
	ready := make(chan pipeline.Started, 1)
	stopped := make(chan struct{})
	var pipelineErr error
	began := time.Now()
	o.logf("starting the pipeline on the backlog")
	go func() {
		pipelineErr = pipeline.Run(pctx, cfg, log, reg, ready)
		close(stopped)
	}()
	defer func() { // before the broker and ClickHouse stop: the pipeline drains and commits first
		stopPipeline()
		<-stopped
	}()
	var st pipeline.Started
	select {
	case st = <-ready:
	case <-stopped:
		return nil, fmt.Errorf("the pipeline did not start: %w", pipelineErr)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	readyAt := time.Now()
	sumsBacklog := gatherSums(reg)
	r.StartupSeconds = readyAt.Sub(began).Seconds()
	r.TrackedAtReady = st.Engine.Tracks()
	r.HeapReady = readHeap()
	w := &benchWatch{conn: ch, db: cfg.ClickHouse.Database, client: &kafka.Client{Addr: kafka.TCP(brokerAddr), Timeout: 10 * time.Second},
		group: cfg.Kafka.GroupID, topic: cfg.Kafka.Topics.GPS, partitions: o.Partitions, stopped: stopped}
	doneAt, err := w.waitCaughtUp(ctx, uint64(o.Fixes))
	if err != nil {
		select {
		case <-stopped:
			return nil, fmt.Errorf("the pipeline did not work off the backlog: %w: %v", err, pipelineErr)
		default:
			return nil, fmt.Errorf("the pipeline did not work off the backlog: %w", err)
		}
	}
	stopProfile()
	r.BacklogCPU = procs.since(cpuBacklog)
	r.BacklogBatches = batchesSince(sumsBacklog, gatherSums(reg), doneAt.Sub(readyAt))
	r.PipelineSeconds = doneAt.Sub(readyAt).Seconds()
	r.PipelineRate = float64(o.Fixes) / r.PipelineSeconds
	r.PipelineRateAll = float64(o.Fixes) / doneAt.Sub(began).Seconds()
	r.CeilingShare = r.PipelineRate / r.CeilingRate
	r.HeapAfter = readHeap()
	// What a collection over that heap costs, the pipeline idle: the best of three, each with
	// both cores marking (the pipeline's collections mark beside the traffic, on a quarter of
	// the cores and the idle time).
	r.FullGCMs = math.Inf(1)
	for range 3 {
		t := time.Now()
		runtime.GC()
		r.FullGCMs = min(r.FullGCMs, float64(time.Since(t).Microseconds())/1000)
	}
	if o.MemProfile != "" {
		if err := writeHeapProfile(o.MemProfile); err != nil {
			return nil, err
		}
	}
	tracked, err := gatherValue(reg, "muckwatch_tracked_vehicles")
	if err != nil {
		return nil, err
	}
	r.Tracked = int(tracked)
	if n := r.Tracked - r.TrackedAtReady; n > 0 {
		r.HeapPerVehicle = (float64(r.HeapAfter) - float64(r.HeapReady)) / float64(n)
	}
	if r.Tracked > 0 {
		r.HeapAllPerVeh = (float64(r.HeapAfter) - float64(r.HeapBefore)) / float64(r.Tracked)
	}
	if r.BacklogAlerts, err = gatherCounter(reg, "muckwatch_alert_changes_total", func(l map[string]string) bool { return l["change"] == "opened" }); err != nil {
		return nil, err
	}
	if r.BacklogAlertsByRule, err = gatherCounterBy(reg, "muckwatch_alert_changes_total", "rule", func(l map[string]string) bool { return l["change"] == "opened" }); err != nil {
		return nil, err
	}
	if r.BacklogStored, err = w.count(ctx, "count()"); err != nil {
		return nil, err
	}
	o.logf("backlog worked off: %.0f fixes/s sustained (%.1fs after a %.1fs start), %d vehicles tracked", r.PipelineRate, r.PipelineSeconds, r.StartupSeconds, r.Tracked)

	// 4. Live traffic at half that rate: detection latency, fix → queryable, then squad lookups.
	if err := runLive(ctx, &o, cfg, live, st, reg, w, procs, tokens, r); err != nil {
		return nil, err
	}

	// 5. Memory at the end, with everything in place.
	if hwm, rss, err := procMemory("self"); err == nil {
		r.PeakRSS, r.RSS = hwm, rss
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("cannot read this process's RSS: %v", err))
	}
	if procs.broker != "" {
		if hwm, _, err := procMemory(procs.broker); err == nil {
			r.BrokerPeakRSS = hwm
		}
	}
	if procs.clickhouse != "" {
		if hwm, rss, err := procMemory(procs.clickhouse); err == nil {
			r.ClickHousePeak, r.ClickHouseRSS = hwm, rss
		}
	}
	if r.Stored, err = w.count(ctx, "uniqExact(fix_id)"); err != nil {
		return nil, err
	}
	r.Produced = uint64(o.Fixes + r.LiveFixes)
	if r.Stored != r.Produced {
		r.Notes = append(r.Notes, fmt.Sprintf("%d fixes produced but %d distinct fixes stored", r.Produced, r.Stored))
	}
	stopPipeline()
	<-stopped
	if pipelineErr != nil && !errors.Is(pipelineErr, context.Canceled) {
		return nil, fmt.Errorf("the pipeline stopped with an error: %w", pipelineErr)
	}
	if o.ClickHouseDir == "" {
		r.Notes = append(r.Notes, fmt.Sprintf("the bench's database %s is left on ClickHouse %s", cfg.ClickHouse.Database, o.ClickHouse))
	}
	if busy := max(r.BacklogCPU.Others, r.LiveCPU.Others); busy > 0.25 {
		r.Notes = append(r.Notes, fmt.Sprintf("other processes kept up to %.2f of the machine's %d cores busy during the measurements: every figure is perturbed by that load",
			busy, runtime.NumCPU()))
	}
	r.Targets = benchTargets(r)
	return r, nil
}

// startBenchBroker starts the embedded broker in this process or as a child process
// (`muckwatch broker`), and returns its address, the child's pid (0 in process) and how to stop it.
func startBenchBroker(ctx context.Context, o *benchOptions, cfg pipeline.Config, dataDir string) (string, int, func() error, error) {
	if o.BrokerInProcess {
		c, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: o.Partitions, Topics: cfg.Topics(), DataDir: dataDir})
		if err != nil {
			return "", 0, nil, err
		}
		return addr, 0, func() error { c.Close(); return nil }, nil
	}
	args := []string{"--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(o.Partitions), "--data-dir", dataDir}
	if o.ConfigPath != "" {
		args = append(args, "--config", o.ConfigPath)
	}
	cmd, err := o.child("broker", args...)
	if err != nil {
		return "", 0, nil, err
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, fmt.Errorf("cannot start the broker: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("cannot start the broker (%s): %w", cmd, err)
	}
	stop := func() error {
		_ = cmd.Process.Signal(os.Interrupt)
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		select {
		case <-waited:
			return nil
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
			return fmt.Errorf("the broker (pid %d) did not stop within 10s and was killed", cmd.Process.Pid)
		}
	}
	// It prints "muckwatch broker: Kafka protocol on ADDR, topics …" once listening.
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "Kafka protocol on "); ok {
				addr, _, _ := strings.Cut(rest, ",")
				found <- strings.TrimSpace(addr)
				break
			}
		}
		close(found)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case addr, ok := <-found:
		if !ok || addr == "" {
			_ = stop()
			return "", 0, nil, errors.New("the broker child process exited without printing its address")
		}
		o.logf("broker: child process %d on %s", cmd.Process.Pid, addr)
		return addr, cmd.Process.Pid, stop, nil
	case <-time.After(30 * time.Second):
		_ = stop()
		return "", 0, nil, errors.New("the broker child process did not print its address within 30s")
	case <-ctx.Done():
		_ = stop()
		return "", 0, nil, ctx.Err()
	}
}

// benchLiveFleet is what the live phase needs of the fleet that produced the backlog: the
// terminals' process drives the same fleet on from where the backlog left it.
type benchLiveFleet struct {
	cityDir  string
	plates   []string
	t0       time.Time // the fleet's device-time origin
	simStart int64     // Unix ms: after every fix of the backlog
}

// newBenchFleet returns the bench's fleet of c's vehicles: one in benchViolatorEvery speeding.
func newBenchFleet(c *city.City, seed uint64) (*sim.Fleet, error) {
	return sim.NewFleet(c, sim.FleetOptions{Seed: seed, At: time.Now(), SpeederEvery: benchViolatorEvery, FastKmh: benchFastKmh})
}

// benchTraffic is the records of one produce call: the fixes' keys, their values in one shared
// buffer, and their partitions.
type benchTraffic struct {
	keys, values [][]byte
	parts        []int32
	ends         []int
	buf          []byte
}

func (m *benchTraffic) reset() {
	m.keys, m.values, m.parts, m.ends, m.buf = m.keys[:0], m.values[:0], m.parts[:0], m.ends[:0], m.buf[:0]
}

func (m *benchTraffic) len() int { return len(m.keys) }

// add adds vehicle i's fix of device time t (Unix ms), to go to partition part.
func (m *benchTraffic) add(f *sim.Fleet, i int, t int64, part int32) {
	m.buf = f.AppendFix(m.buf, i, t)
	m.ends = append(m.ends, len(m.buf))
	m.keys, m.parts = append(m.keys, f.Key(i)), append(m.parts, part)
}

// produce produces the records with w, their values pointed into the buffer now that it has
// stopped growing.
func (m *benchTraffic) produce(ctx context.Context, w *sink.PartitionProducer) error {
	m.values = m.values[:0]
	start := 0
	for _, end := range m.ends {
		m.values = append(m.values, m.buf[start:end:end])
		start = end
	}
	return w.Write(ctx, m.keys, m.values, m.parts)
}

// benchProducer is the bench's producer: the partitions chosen once per vehicle (kafka-go's Hash
// of the plate, as terminal gateways using Sarama's partitioner do) and the records produced
// straight from their buffer (sink.PartitionProducer). It shares the 2 cores with the pipeline
// (the live traffic from the terminals' process), so it should cost as little as it can:
// kafka.Writer looked the topic up and copied every record for each write (a tenth of the
// bench's CPU in the live window when it ran in the pipeline's process).
// Its connections are closed with the returned transport's CloseIdleConnections.
func benchProducer(addr, topic string) (*sink.PartitionProducer, *kafka.Transport) {
	t := &kafka.Transport{}
	return sink.NewPartitionProducer(&kafka.Client{Addr: kafka.TCP(addr), Transport: t}, topic, kafka.RequireAll), t
}

// partitionsOf returns each vehicle's partition of n.
func partitionsOf(f *sim.Fleet, n int) []int32 {
	parts := make([]int, n)
	for p := range parts {
		parts[p] = p
	}
	var h kafka.Hash
	out := make([]int32, f.Len())
	for i := range out {
		out[i] = int32(h.Balance(kafka.Message{Key: f.Key(i)}, parts...))
	}
	return out
}

// benchDeviceStart returns when the backlog's device time starts, given that it spans span and
// must end a minute before now: at the local time of day at (HH:MM, in loc) on the latest weekday
// that allows, so that the city's restricted-zone hours (which vary over the day and the week)
// weigh the same on every run; at "now", as late as allowed. It is at most 6 days before now
// (the decoder rejects fixes over a week old).
func benchDeviceStart(now time.Time, span time.Duration, at string, loc *time.Location) (time.Time, error) {
	latest := now.Add(-span - time.Minute).Truncate(time.Second)
	if at == "now" {
		return latest, nil
	}
	tod, err := time.Parse("15:04", at)
	if err != nil {
		return time.Time{}, fmt.Errorf("the backlog's start must be a time of day HH:MM or now, got %q", at)
	}
	l := latest.In(loc)
	d := time.Date(l.Year(), l.Month(), l.Day(), tod.Hour(), tod.Minute(), 0, 0, loc)
	for d.After(latest) || d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.AddDate(0, 0, -1)
	}
	if now.Sub(d) > 6*24*time.Hour {
		return time.Time{}, fmt.Errorf("a backlog of %s starting at %s on a weekday would start %s before now; the decoder rejects fixes older than a week",
			span, at, now.Sub(d).Round(time.Minute))
	}
	return d, nil
}

// preload produces fleet f's n fixes, each vehicle's to its partition in parts: round after
// round, every vehicle once per interval, spread over the interval, from the device time
// benchDeviceStart gives for at in loc. It returns the device time the backlog ends at.
func preload(ctx context.Context, f *sim.Fleet, parts []int32, loc *time.Location, addr, topic string, n int, interval time.Duration, at string, r *benchReport) (time.Time, error) {
	v := f.Len()
	rounds := (n + v - 1) / v
	simStart, err := benchDeviceStart(time.Now(), time.Duration(rounds)*interval, at, loc)
	if err != nil {
		return time.Time{}, err
	}
	r.DeviceStart = simStart.In(loc).Format("Mon 2006-01-02 15:04:05 MST")
	f.SetOrigin(simStart)
	const chunk = 20_000
	w, conns := benchProducer(addr, topic)
	defer conns.CloseIdleConnections()
	var m benchTraffic
	began := time.Now()
	for k := 0; k < n; {
		m.reset()
		for ; k < n && m.len() < chunk; k++ {
			round, i := k/v, k%v
			t := f.Next(i, simStart.Add(time.Duration(round)*interval+time.Duration(i)*interval/time.Duration(v)).UnixMilli())
			m.add(f, i, t, parts[i])
		}
		if err := m.produce(ctx, w); err != nil {
			return time.Time{}, fmt.Errorf("cannot preload the backlog (%d of %d fixes produced): %w", k-m.len(), n, err)
		}
	}
	r.PreloadSeconds = time.Since(began).Seconds()
	r.PreloadRate = float64(n) / r.PreloadSeconds
	return simStart.Add(time.Duration(rounds) * interval), nil
}

// measureCeiling reads the backlog with a bare kafka-go group reader configured as the pipeline's
// consumer is (fetch sizes, queue, group semantics), discarding every record.
func measureCeiling(ctx context.Context, cfg pipeline.Config, n int, r *benchReport) error {
	k := cfg.Kafka
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: k.Brokers, GroupID: benchCeilingGroupID, GroupTopics: []string{k.Topics.GPS},
		MinBytes: 1, MaxBytes: k.FetchMaxBytes, MaxWait: k.FetchMaxWait, QueueCapacity: k.BatchMaxRecords,
		StartOffset: kafka.FirstOffset, HeartbeatInterval: 3 * time.Second, SessionTimeout: k.SessionTimeout,
		RebalanceTimeout: k.SessionTimeout, JoinGroupBackoff: time.Second, ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second,
	})
	defer rd.Close()
	cctx, cancel := context.WithTimeout(ctx, max(3*time.Minute, time.Duration(n/5_000)*time.Second))
	defer cancel()
	began := time.Now()
	for got := 0; got < n; got++ {
		if _, err := rd.FetchMessage(cctx); err != nil {
			return fmt.Errorf("raw ceiling: a bare reader got %d of %d records: %w", got, n, err)
		}
	}
	r.CeilingSeconds = time.Since(began).Seconds()
	r.CeilingRate = float64(n) / r.CeilingSeconds
	return nil
}

// benchWatch observes the pipeline from outside: rows in ClickHouse and its group's committed
// offsets.
type benchWatch struct {
	conn       *sink.ClickHouse
	db         string
	client     *kafka.Client
	group      string
	topic      string
	partitions int
	stopped    <-chan struct{}
}

func (w *benchWatch) count(ctx context.Context, expr string) (uint64, error) {
	var n uint64
	if err := w.conn.Conn().QueryRow(ctx, "SELECT "+expr+" FROM "+w.db+".positions").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count the stored fixes: %w", err)
	}
	return n, nil
}

// lag is the pipeline group's lag on the GPS topic: records not yet committed.
func (w *benchWatch) lag(ctx context.Context) (int64, error) {
	parts := make([]int, w.partitions)
	reqs := make([]kafka.OffsetRequest, w.partitions)
	for p := range parts {
		parts[p], reqs[p] = p, kafka.LastOffsetOf(p)
	}
	ends, err := w.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{w.topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("cannot list the offsets of %s: %w", w.topic, err)
	}
	committed, err := w.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: w.group, Topics: map[string][]int{w.topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("cannot fetch the committed offsets of group %s: %w", w.group, err)
	}
	if committed.Error != nil {
		return 0, fmt.Errorf("cannot fetch the committed offsets of group %s: %w", w.group, committed.Error)
	}
	at := map[int]int64{}
	for _, c := range committed.Topics[w.topic] {
		at[c.Partition] = max(c.CommittedOffset, 0)
	}
	var lag int64
	for _, e := range ends.Topics[w.topic] {
		if e.Error != nil {
			return 0, fmt.Errorf("cannot list the offsets of %s/%d: %w", w.topic, e.Partition, e.Error)
		}
		lag += max(e.LastOffset-at[e.Partition], 0)
	}
	return lag, nil
}

// waitCaughtUp polls until at least want fixes are stored and the group has committed everything,
// and returns when it saw that. It fails when the stored count stops growing for benchStall or the
// pipeline stops.
func (w *benchWatch) waitCaughtUp(ctx context.Context, want uint64) (time.Time, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	moved := time.Now()
	for {
		n, err := w.count(ctx, "count()")
		if err != nil {
			return time.Time{}, err
		}
		if n != last {
			last, moved = n, time.Now()
		}
		if n >= want {
			lag, err := w.lag(ctx)
			if err != nil {
				return time.Time{}, err
			}
			if lag == 0 {
				return time.Now(), nil
			}
		}
		if time.Since(moved) > benchStall {
			return time.Time{}, fmt.Errorf("%d of %d fixes stored and nothing new for %s", n, want, benchStall)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-w.stopped:
			return time.Time{}, errors.New("the pipeline stopped")
		case <-tick.C:
		}
	}
}

// benchProbe is a fix whose arrival in ClickHouse is timed.
type benchProbe struct {
	vehicle, fixID string
	produced       time.Time
}

// benchLatencies collects latencies from several goroutines.
type benchLatencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *benchLatencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *benchLatencies) sorted() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.d)
	slices.Sort(out)
	return out
}

// liveProducer produces the fleet's fixes at a steady rate, in device time continuing the backlog.
type liveProducer struct {
	f          *sim.Fleet
	parts      []int32 // each vehicle's partition
	w          *sink.PartitionProducer
	rate       float64
	wallStart  time.Time
	simStart   int64 // Unix ms of device time at wallStart
	probeUntil time.Time
	probes     chan<- benchProbe
	stop       <-chan struct{}
	sent       atomic.Int64
	inWindow   atomic.Int64
}

// wallOf returns when a fix with device time ms was produced.
func (p *liveProducer) wallOf(ms int64) time.Time {
	return p.wallStart.Add(time.Duration(ms-p.simStart) * time.Millisecond)
}

func (p *liveProducer) run(ctx context.Context) error {
	defer close(p.probes)
	tick := time.NewTicker(benchProduceEvery)
	defer tick.Stop()
	var m benchTraffic
	cursor, v := 0, p.f.Len()
	nextProbe := p.wallStart
	maxChunk := max(1, int(p.rate/10)) // a tenth of a second's worth at most per write
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stop:
			return nil
		case <-tick.C:
		}
		now := time.Now()
		due := min(int(p.rate*now.Sub(p.wallStart).Seconds())-int(p.sent.Load()), maxChunk)
		if due <= 0 {
			continue
		}
		simNow := p.simStart + now.Sub(p.wallStart).Milliseconds()
		m.reset()
		probe := benchProbe{}
		for range due {
			i := cursor
			cursor = (cursor + 1) % v
			t := p.f.Next(i, simNow)
			m.add(p.f, i, t, p.parts[i])
			if probe.vehicle == "" && now.Before(p.probeUntil) && !now.Before(nextProbe) {
				plate := p.f.Plates()[i]
				probe = benchProbe{vehicle: plate, fixID: plate + "@" + strconv.FormatInt(t, 10)}
				nextProbe = nextProbe.Add(benchProbeEvery)
			}
		}
		sentAt := time.Now()
		if err := m.produce(ctx, p.w); err != nil {
			return fmt.Errorf("cannot produce live traffic: %w", err)
		}
		p.sent.Add(int64(due))
		if now.Before(p.probeUntil) {
			p.inWindow.Add(int64(due))
		}
		if probe.vehicle != "" {
			probe.produced = sentAt
			select {
			case p.probes <- probe:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// runLive produces live traffic at half the backlog rate and measures, in a window, the
// detection latency (the pipeline's histogram, and produce → alert on the alerts topic) and fix →
// queryable in ClickHouse; then squad lookups while the traffic goes on.
func runLive(ctx context.Context, o *benchOptions, cfg pipeline.Config, fleet benchLiveFleet, st pipeline.Started, reg prometheus.Gatherer,
	w *benchWatch, procs benchProcs, tokens []string, r *benchReport) error {
	r.LiveTargetRate = r.PipelineRate / 2
	if o.LiveRate > 0 {
		r.LiveTargetRate = o.LiveRate
		r.Notes = append(r.Notes, fmt.Sprintf("live traffic at %.0f fixes/s as --live-rate asks, not at half the backlog rate", o.LiveRate))
	}
	alertStarts, err := topicEnds(ctx, w.client, cfg.Outputs.AlertsTopic, o.Partitions)
	if err != nil {
		return err
	}
	lctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(lctx)
	every := time.Duration(float64(len(fleet.plates)) / r.LiveTargetRate * float64(time.Second))
	o.logf("live traffic at %.0f fixes/s from the terminals' process: every vehicle every %s; measuring for %s", r.LiveTargetRate, every.Round(time.Millisecond), o.Live)
	cmd, err := o.child("terminals")
	if err != nil {
		cancel()
		return err
	}
	term, err := startTerminals(ctx, cmd, terminalsLoad{Broker: w.client.Addr.String(), Topic: cfg.Kafka.Topics.GPS, CityDir: fleet.cityDir,
		Seed: o.Seed, Partitions: o.Partitions, DeviceT0: fleet.t0.UnixMilli(), SimStart: fleet.simStart, Rate: r.LiveTargetRate, Window: o.Live})
	if err != nil {
		cancel()
		return err
	}
	var pollDone chan struct{}
	defer func() { // every goroutine below has ended before runLive returns, the terminals too
		cancel()
		_ = g.Wait()
		_ = term.stop()
		if pollDone != nil {
			<-pollDone
		}
	}()
	latencyBefore, waitBefore, err := gatherDetectionHists(reg)
	if err != nil {
		return err
	}
	gcBefore := gcCycles()

	if o.LiveCPUProfile != "" {
		prof, err := os.Create(o.LiveCPUProfile)
		if err != nil {
			return fmt.Errorf("cannot create the CPU profile: %w", err)
		}
		defer prof.Close()
		if err := pprof.StartCPUProfile(prof); err != nil {
			return fmt.Errorf("cannot start the CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile() // stopping twice is harmless
	}
	cpuLive := procs.mark()
	sumsLive := gatherSums(reg)
	wallStart := time.Unix(0, term.started.WallStartNs)
	windowEnd := wallStart.Add(o.Live)

	// Produce → alert, read back from the alerts topic.
	var alertLat benchLatencies
	for part, start := range alertStarts {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Outputs.Brokers, Topic: cfg.Outputs.AlertsTopic, Partition: part,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond, ReadLagInterval: -1})
		if err := rd.SetOffset(start); err != nil {
			rd.Close()
			return fmt.Errorf("cannot read the alerts topic: %w", err)
		}
		g.Go(func() error {
			defer rd.Close()
			for {
				msg, err := rd.ReadMessage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("cannot read the alerts topic: %w", err)
				}
				arrived := time.Now()
				var a struct {
					Change    string `json:"change"`
					Rule      string `json:"rule"`
					UpdatedMs int64  `json:"updated_ms"`
				}
				if err := json.Unmarshal(msg.Value, &a); err != nil {
					return fmt.Errorf("an alert on %s is not JSON: %w", cfg.Outputs.AlertsTopic, err)
				}
				if a.Change == "opened" && a.Rule == "speeding" && a.UpdatedMs >= term.started.SimStartMs {
					if produced := term.wallOf(a.UpdatedMs); produced.Before(windowEnd) {
						alertLat.add(arrived.Sub(produced))
					}
				}
			}
		})
	}

	// Fix → queryable: poll ClickHouse for the probes.
	var queryLat benchLatencies
	missing := 0
	pollDone = make(chan struct{})
	go func() {
		defer close(pollDone)
		missing = pollProbes(gctx, w, term.probes, &queryLat, windowEnd.Add(30*time.Second))
	}()

	// The window.
	select {
	case <-time.After(time.Until(windowEnd)):
	case <-gctx.Done():
	case <-w.stopped:
		return errors.New("the pipeline stopped during the live phase")
	}
	latencyAfter, waitAfter, err := gatherDetectionHists(reg)
	if err != nil {
		return err
	}
	r.LiveGCCycles = gcCycles() - gcBefore
	if r.LiveLagAtEnd, err = w.lag(ctx); err != nil {
		return err
	}
	select {
	case n := <-term.inWindow:
		r.LiveWindowFixes = int(n)
	case <-time.After(10 * time.Second):
		return errors.New("the terminals' process did not report the fixes it produced in the window")
	case <-ctx.Done():
		return ctx.Err()
	}
	r.LiveAchievedRate = float64(r.LiveWindowFixes) / o.Live.Seconds()
	r.LiveCPU = procs.since(cpuLive)
	r.LiveBatches = batchesSince(sumsLive, gatherSums(reg), time.Since(wallStart))
	if o.LiveCPUProfile != "" {
		pprof.StopCPUProfile()
	}
	if float64(r.LiveLagAtEnd) > r.LiveTargetRate {
		r.Notes = append(r.Notes, fmt.Sprintf("the pipeline did not keep up with the live traffic at %.0f fixes/s: %d records behind at the window's end "+
			"(more than a second of traffic), so the window's latencies include that queueing", r.LiveTargetRate, r.LiveLagAtEnd))
	}
	latency, wait := latencyAfter.sub(latencyBefore), waitAfter.sub(waitBefore)
	r.DetectBatches, r.WaitBatches = latency.total, wait.total
	r.DetectP50Ms, r.DetectP99Ms, r.DetectOverflow = latency.p50p99Ms()
	r.WaitP50Ms, r.WaitP99Ms, _ = wait.p50p99Ms()

	// Squad lookups, the traffic still running.
	if o.LookupRate > 0 {
		o.logf("squad lookups: %d by %d squads at %.0f/s, live traffic still at %.0f fixes/s", o.Lookups, o.Concurrency, o.LookupRate, r.LiveTargetRate)
	} else {
		o.logf("squad lookups: %d by %d concurrent clients as fast as they can, live traffic still at %.0f fixes/s", o.Lookups, o.Concurrency, r.LiveTargetRate)
	}
	if err := runLookups(gctx, o, st.APIURL, fleet.plates, tokens, r); err != nil {
		cancel()
		if werr := g.Wait(); werr != nil && !errors.Is(werr, context.Canceled) {
			return werr
		}
		return err
	}
	if r.LookupLag, err = w.lag(ctx); err != nil {
		return err
	}
	if err := term.stop(); err != nil {
		return err
	}
	<-pollDone
	cancel()
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	r.LiveFixes = int(term.sent)
	ql := queryLat.sorted()
	r.QueryableProbes, r.QueryableMissing = len(ql)+missing, missing
	r.QueryableP50Ms, r.QueryableP99Ms, r.QueryableMaxMs = ms(percentile(ql, 0.50)), ms(percentile(ql, 0.99)), ms(percentile(ql, 1))
	al := alertLat.sorted()
	r.AlertSamples = len(al)
	r.AlertP50Ms, r.AlertP99Ms, r.AlertMaxMs = ms(percentile(al, 0.50)), ms(percentile(al, 0.99)), ms(percentile(al, 1))
	o.logf("live phase over: %d fixes produced; waiting for the pipeline to store and commit them", r.LiveFixes)
	if _, err := w.waitCaughtUp(ctx, r.BacklogStored+uint64(r.LiveFixes)); err != nil {
		return fmt.Errorf("the pipeline did not catch up with the live traffic: %w", err)
	}
	return nil
}

// pollProbes polls ClickHouse for the probe fixes until every one is stored, probes is closed
// and drained, or the deadline passes; it returns how many were never seen.
func pollProbes(ctx context.Context, w *benchWatch, probes <-chan benchProbe, lat *benchLatencies, deadline time.Time) int {
	pending := map[string]benchProbe{}
	open := true
	tick := time.NewTicker(benchProbePoll)
	defer tick.Stop()
	for open || len(pending) > 0 {
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return len(pending)
		case pr, ok := <-probes:
			if !ok {
				open = false
				probes = nil
				continue
			}
			pending[pr.fixID] = pr
			continue
		case <-tick.C:
		}
		if len(pending) == 0 {
			continue
		}
		var vehicles, ids []string
		for id, pr := range pending {
			vehicles, ids = append(vehicles, sqlString(pr.vehicle)), append(ids, sqlString(id))
		}
		rows, err := w.conn.Conn().Query(ctx, "SELECT fix_id FROM "+w.db+".positions WHERE vehicle_id IN ("+
			strings.Join(vehicles, ",")+") AND fix_id IN ("+strings.Join(ids, ",")+")")
		if err != nil {
			continue // polled again next tick
		}
		seen := time.Now()
		for rows.Next() {
			var id string
			if rows.Scan(&id) == nil {
				if pr, ok := pending[id]; ok {
					lat.add(seen.Sub(pr.produced))
					delete(pending, id)
				}
			}
		}
		rows.Close()
	}
	return len(pending)
}

// sqlString quotes s as a ClickHouse string literal.
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// runLookups runs the squads' lookups (squadLoad), in a child process (`muckwatch squads`) unless
// o.SquadsInProcess, and puts what they measured in r.
func runLookups(ctx context.Context, o *benchOptions, base string, plates, tokens []string, r *benchReport) error {
	if base == "" {
		return errors.New("the pipeline serves no API")
	}
	l := squadLoad{Base: base, Plates: plates, Tokens: tokens, Seed: o.Seed, Lookups: o.Lookups, Rate: o.LookupRate, Concurrency: o.Concurrency}
	var res squadResult
	var err error
	if o.SquadsInProcess {
		res, err = l.run(ctx)
	} else {
		var cmd *exec.Cmd
		if cmd, err = o.child("squads"); err == nil {
			res, err = l.runChild(ctx, cmd)
		}
	}
	if err != nil {
		return fmt.Errorf("cannot run the squads' lookups: %w", err)
	}
	r.Lookups, r.Concurrency, r.LookupFailures = res.Lookups, o.Concurrency, res.Failures
	r.LookupTarget, r.LookupInFlight, r.LookupRate = o.LookupRate, res.MaxInFlight, res.Rate
	r.LookupP50Ms, r.LookupP99Ms, r.LookupMaxMs = res.P50Ms, res.P99Ms, res.MaxMs
	if res.FirstError != "" {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d lookups failed, the first with: %s", r.LookupFailures, o.Lookups, res.FirstError))
	}
	return nil
}

// child returns the command that runs this program's subcommand name with args, as the bench's
// child processes (the broker, the squads) are run: o.ChildCommand when set (the tests' binary
// is not muckwatch), else this executable.
func (o *benchOptions) child(name string, args ...string) (*exec.Cmd, error) {
	if o.ChildCommand != nil {
		return o.ChildCommand(name, args...), nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this program to start its %s process: %w", name, err)
	}
	return exec.Command(exe, append([]string{name}, args...)...), nil
}

// topicEnds returns the end offset of each partition of topic.
func topicEnds(ctx context.Context, c *kafka.Client, topic string, partitions int) ([]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("cannot list the offsets of %s: %w", topic, err)
	}
	ends := make([]int64, partitions)
	for _, e := range resp.Topics[topic] {
		if e.Error != nil {
			return nil, fmt.Errorf("cannot list the offsets of %s/%d: %w", topic, e.Partition, e.Error)
		}
		if e.Partition >= 0 && e.Partition < partitions {
			ends[e.Partition] = e.LastOffset
		}
	}
	return ends, nil
}

// writeHeapProfile writes a heap profile (after a GC) to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create the heap profile: %w", err)
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("cannot write the heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write the heap profile: %w", err)
	}
	return nil
}

// percentile returns the nearest-rank q-quantile of sorted durations, 0 if there are none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// histSnap is a Prometheus histogram's cumulative buckets.
type histSnap struct {
	bounds []float64
	counts []uint64
	total  uint64
}

func (h histSnap) sub(o histSnap) histSnap {
	out := histSnap{bounds: h.bounds, counts: slices.Clone(h.counts), total: h.total - o.total}
	for k := range out.counts {
		if k < len(o.counts) {
			out.counts[k] -= o.counts[k]
		}
	}
	return out
}

// quantile interpolates the q-quantile within its bucket, as PromQL's histogram_quantile does;
// beyond the last bucket it returns the last bound and true.
func (h histSnap) quantile(q float64) (float64, bool) {
	if h.total == 0 || len(h.bounds) == 0 {
		return 0, false
	}
	rank := q * float64(h.total)
	lower, below := 0.0, uint64(0)
	for k, b := range h.bounds {
		if float64(h.counts[k]) >= rank {
			in := h.counts[k] - below
			if in == 0 {
				return b, false
			}
			return lower + (b-lower)*(rank-float64(below))/float64(in), false
		}
		lower, below = b, h.counts[k]
	}
	return h.bounds[len(h.bounds)-1], true
}

// gcCycles is how many garbage collection cycles this process has completed.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// p50p99Ms returns the median and the 99th percentile in milliseconds (0 without samples), and
// whether the 99th is beyond the last bucket.
func (h histSnap) p50p99Ms() (p50, p99 float64, over bool) {
	p50, _ = h.quantile(0.50)
	p99, over = h.quantile(0.99)
	return p50 * 1000, p99 * 1000, over
}

// gatherDetectionHists gathers the detection latency and its waiting part
// (muckwatch_detection_latency_seconds, muckwatch_detection_wait_seconds).
func gatherDetectionHists(g prometheus.Gatherer) (latency, wait histSnap, err error) {
	if latency, err = gatherHistogram(g, "muckwatch_detection_latency_seconds"); err != nil {
		return
	}
	wait, err = gatherHistogram(g, "muckwatch_detection_wait_seconds")
	return
}

func gatherHistogram(g prometheus.Gatherer, name string) (histSnap, error) {
	mfs, err := g.Gather()
	if err != nil {
		return histSnap{}, fmt.Errorf("cannot gather metrics: %w", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			hg := m.GetHistogram()
			if hg == nil {
				continue
			}
			var h histSnap
			for _, b := range hg.GetBucket() {
				h.bounds = append(h.bounds, b.GetUpperBound())
				h.counts = append(h.counts, b.GetCumulativeCount())
			}
			h.total = hg.GetSampleCount()
			return h, nil
		}
	}
	return histSnap{}, fmt.Errorf("the pipeline has no histogram %s", name)
}

func gatherCounter(g prometheus.Gatherer, name string, match func(map[string]string) bool) (float64, error) {
	by, err := gatherCounterBy(g, name, "", match)
	var sum float64
	for _, v := range by {
		sum += v
	}
	return sum, err
}

// gatherCounterBy sums the series of metric name that match says yes to (nil: all) by the value of
// one label, leaving out the series at zero.
func gatherCounterBy(g prometheus.Gatherer, name, label string, match func(map[string]string) bool) (map[string]float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("cannot gather metrics: %w", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if l := labelMap(m); (match == nil || match(l)) && metricValue(m) != 0 {
				out[l[label]] += metricValue(m)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("the pipeline has no metric %s", name)
}

func gatherValue(g prometheus.Gatherer, name string) (float64, error) {
	return gatherCounter(g, name, nil)
}

// procMemory returns the peak and current resident set size of process pid ("self" for this one).
func procMemory(pid string) (peak, rss uint64, err error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the memory of process %s: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cannot read %s of process %s: %q", k, pid, line)
		}
		if k == "VmHWM" {
			peak = kb << 10
		} else {
			rss = kb << 10
		}
	}
	if peak == 0 {
		return 0, 0, fmt.Errorf("process %s reports no VmHWM", pid)
	}
	return peak, rss, nil
}

// resetPeakRSS resets this process's peak RSS (VmHWM) to its current RSS (Linux ≥ 4.0).
func resetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("cannot reset the peak RSS: %w", err)
	}
	return nil
}

func benchTargets(r *benchReport) []benchTarget {
	status := func(ok bool) string {
		if ok {
			return "met"
		}
		return "SHORT"
	}
	var t []benchTarget
	t = append(t, benchTarget{"end-to-end throughput", fmt.Sprintf("≥ %d fixes/s", targetFixesPerSec),
		fmt.Sprintf("%.0f fixes/s", r.PipelineRate), status(r.PipelineRate >= targetFixesPerSec)})
	t = append(t, benchTarget{"share of the raw Kafka ceiling", fmt.Sprintf("≥ %.0f %%", targetCeilingShare*100),
		fmt.Sprintf("%.0f %% of %.0f records/s", r.CeilingShare*100, r.CeilingRate), status(r.CeilingShare >= targetCeilingShare)})
	det := benchTarget{"detection latency p99, half rate", fmt.Sprintf("≤ %d ms", targetDetectP99.Milliseconds()), "no alert in the window", "n/a"}
	if r.DetectBatches > 0 {
		over := ""
		if r.DetectOverflow {
			over = "> "
		}
		det.Measured = fmt.Sprintf("p50 %.1f ms, p99 %s%.1f ms", r.DetectP50Ms, over, r.DetectP99Ms)
		det.Status = status(!r.DetectOverflow && r.DetectP99Ms <= ms(targetDetectP99))
	}
	t = append(t, det)
	q := benchTarget{"fix → queryable p99, half rate", fmt.Sprintf("≤ %s", targetQueryableP99), "no probe seen", "SHORT"}
	if n := r.QueryableProbes - r.QueryableMissing; n > 0 {
		q.Measured = fmt.Sprintf("p50 %.0f ms, p99 %.0f ms", r.QueryableP50Ms, r.QueryableP99Ms)
		q.Status = status(r.QueryableMissing == 0 && r.QueryableP99Ms <= ms(targetQueryableP99))
		if r.QueryableMissing > 0 {
			q.Measured += fmt.Sprintf(", %d of %d probes never seen", r.QueryableMissing, r.QueryableProbes)
		}
	}
	t = append(t, q)
	t = append(t, benchTarget{"detector state per vehicle", fmt.Sprintf("≤ %d KB", targetStateBytes/1000),
		fmt.Sprintf("%.2f KB live heap per tracked vehicle", r.HeapPerVehicle/1000), status(r.Tracked > 0 && r.HeapPerVehicle <= targetStateBytes)})
	rss := benchTarget{"peak RSS with 100k vehicles", fmt.Sprintf("≤ %d MB", targetRSSBytes/1_000_000),
		fmt.Sprintf("%.0f MB with %d vehicles", float64(r.PeakRSS)/1e6, r.Tracked), status(r.PeakRSS > 0 && r.PeakRSS <= targetRSSBytes)}
	switch {
	case r.PeakRSS == 0:
		rss.Measured, rss.Status = "cannot read /proc/self/status", "n/a"
	case r.Tracked < targetRSSVehicles && rss.Status == "met":
		rss.Status = "n/a"
		rss.Measured += " (fewer than the target's 100k)"
	}
	t = append(t, rss)
	name := fmt.Sprintf("squad lookup p99, %.0f/s from %d squads", r.LookupTarget, r.Concurrency)
	if r.LookupTarget == 0 {
		name = fmt.Sprintf("squad lookup p99, %d clients flat out", r.Concurrency)
	}
	l := benchTarget{name, fmt.Sprintf("≤ %d ms", targetLookupP99.Milliseconds()),
		fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", r.LookupP50Ms, r.LookupP99Ms), status(r.LookupFailures == 0 && r.LookupP99Ms <= ms(targetLookupP99))}
	if r.LookupFailures > 0 {
		l.Measured += fmt.Sprintf(", %d failed", r.LookupFailures)
	}
	t = append(t, l)
	return t
}

func (c benchCPU) String() string {
	s := fmt.Sprintf("this process %.2f", c.Pipeline)
	if c.Broker > 0 {
		s += fmt.Sprintf(", broker %.2f", c.Broker)
	}
	if c.ClickHouse > 0 {
		s += fmt.Sprintf(", ClickHouse %.2f", c.ClickHouse)
	}
	return s + fmt.Sprintf(", other processes %.2f", c.Others)
}

func mb(b uint64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

func printBenchReport(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "\nmuckwatch bench — %s: %d routes, %d zones, %d vehicles; %d partitions; broker %s; ClickHouse %s; GOMAXPROCS %d\n\n",
		r.City, r.Routes, r.Zones, r.Vehicles, r.Partitions, r.Broker, r.ClickHouseVersion, r.GOMAXPROCS)
	fmt.Fprintf(w, "%-34s %-18s %-60s %s\n", "target", "issue", "measured", "")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%-34s %-18s %-60s %s\n", t.Name, t.Target, t.Measured, t.Status)
	}
	fmt.Fprintf(w, "\nhow:\n")
	fmt.Fprintf(w, "  backlog      %d fixes of %d vehicles on their permitted routes (1 in %d speeding at %d km/h), preloaded in %.1fs (%.0f fixes/s);\n"+
		"               device time from %s\n",
		r.Fixes, r.Vehicles, benchViolatorEvery, benchFastKmh, r.PreloadSeconds, r.PreloadRate, r.DeviceStart)
	fmt.Fprintf(w, "  ceiling      a bare kafka-go group reader, the consumer's fetch settings, fetching and discarding: %.0f records/s (%.2fs)\n",
		r.CeilingRate, r.CeilingSeconds)
	fmt.Fprintf(w, "  pipeline     %.0f fixes/s from consuming to the last fix stored in ClickHouse and committed (lag 0) in %.2fs;\n"+
		"               %.0f fixes/s counting its %.2fs start; %.0f alerts opened; %d rows stored\n",
		r.PipelineRate, r.PipelineSeconds, r.PipelineRateAll, r.StartupSeconds, r.BacklogAlerts, r.BacklogStored)
	if len(r.BacklogAlertsByRule) > 0 {
		fmt.Fprintf(w, "               alerts opened by rule: %s\n", joinCounts(r.BacklogAlertsByRule))
	}
	fmt.Fprintf(w, "  live         %.0f fixes/s asked, %.0f achieved in the %d-fix window; group lag %d at the window's end, %d after the lookups\n",
		r.LiveTargetRate, r.LiveAchievedRate, r.LiveWindowFixes, r.LiveLagAtEnd, r.LookupLag)
	fmt.Fprintf(w, "  detection    muckwatch_detection_latency_seconds (a batch's first record fetched → its alert changes produced), %d batches,\n"+
		"               interpolated within its buckets (×√2 apart): p50 %.1f ms, p99 %.1f ms\n", r.DetectBatches, r.DetectP50Ms, r.DetectP99Ms)
	fmt.Fprintf(w, "               of which waiting before detection (muckwatch_detection_wait_seconds: decoding, hand-off, batch fill, the batches before),\n"+
		"               %d batches: p50 %.1f ms, p99 %.1f ms; %d garbage collection cycles of this process in the window\n",
		r.WaitBatches, r.WaitP50Ms, r.WaitP99Ms, r.LiveGCCycles)
	fmt.Fprintf(w, "               produce → speeding alert read back from the alerts topic (producer, broker, batch fill, detection, announcement),\n"+
		"               %d alerts: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", r.AlertSamples, r.AlertP50Ms, r.AlertP99Ms, r.AlertMaxMs)
	fmt.Fprintf(w, "  queryable    %d probe fixes (one per %s), ClickHouse polled every %s for them: p50 %.0f ms, p99 %.0f ms, max %.0f ms, %d never seen\n",
		r.QueryableProbes, benchProbeEvery, benchProbePoll, r.QueryableP50Ms, r.QueryableP99Ms, r.QueryableMaxMs, r.QueryableMissing)
	fmt.Fprintf(w, "  memory       %d vehicles tracked (muckwatch_tracked_vehicles); live heap after GC: %s before the pipeline, %s once started\n"+
		"               (%d tracked), %s after the backlog: %.0f B per vehicle tracked meanwhile, %.0f B per vehicle for the whole pipeline\n"+
		"               (city, buffers, API view); a full collection of it, the pipeline idle, %.0f ms; peak RSS of this process %s (now %s)",
		r.Tracked, mb(r.HeapBefore), mb(r.HeapReady), r.TrackedAtReady, mb(r.HeapAfter), r.HeapPerVehicle, r.HeapAllPerVeh, r.FullGCMs, mb(r.PeakRSS), mb(r.RSS))
	if r.PeakRSSReset {
		fmt.Fprintf(w, ", reset when the pipeline started")
	}
	fmt.Fprintln(w)
	if r.BrokerPeakRSS > 0 {
		fmt.Fprintf(w, "               broker child process peak RSS %s (not counted above)\n", mb(r.BrokerPeakRSS))
	}
	if r.ClickHousePeak > 0 {
		fmt.Fprintf(w, "               ClickHouse server peak RSS %s, now %s (not counted above)\n", mb(r.ClickHousePeak), mb(r.ClickHouseRSS))
	}
	how := fmt.Sprintf("by %d clients flat out", r.Concurrency)
	if r.LookupTarget > 0 {
		how = fmt.Sprintf("from %d squads arriving at random at %.0f/s (at most %d at once)", r.Concurrency, r.LookupTarget, r.LookupInFlight)
	}
	fmt.Fprintf(w, "  lookups      %d GET /api/v1/vehicles/{plate} %s, from %s: %.0f/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed\n",
		r.Lookups, how, r.Squads, r.LookupRate, r.LookupP50Ms, r.LookupP99Ms, r.LookupMaxMs, r.LookupFailures)
	fmt.Fprintf(w, "  CPU          cores used (of %d) working off the backlog: %s; in the live window: %s\n",
		runtime.NumCPU(), r.BacklogCPU, r.LiveCPU)
	fmt.Fprintf(w, "  per batch    backlog: %s\n               live window: %s\n", r.BacklogBatches, r.LiveBatches)
	fmt.Fprintf(w, "  stored       %d distinct fixes of %d produced\n", r.Stored, r.Produced)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note         %s\n", n)
	}
}
