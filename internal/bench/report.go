package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Target is one of the targets beside its measured figure and, when SHORT, why
// (whyShort): by how much, and where the run's time or memory went.
type Target struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // met, SHORT or n/a
	Why      string `json:"why,omitempty"`
	key      targetKey
}

// targetKey tells the targets apart whatever their names say.
type targetKey int

const (
	keyThroughput targetKey = iota
	keyShare
	keyDetection
	keyQueryable
	keyState
	keyRSS
	keyLookup
	keyCPU
)

// Report is everything one run measured. Durations are in milliseconds, rates per second,
// sizes in bytes.
type Report struct {
	City              string `json:"city"`
	Routes            int    `json:"routes"`
	Zones             int    `json:"zones"`
	Vehicles          int    `json:"vehicles"`
	Partitions        int    `json:"partitions"`
	Broker            string `json:"broker"`
	Squads            string `json:"squads"` // where the squads' lookups ran
	ClickHouseVersion string `json:"clickhouse_version"`
	// ClickHouseFilesystem is where the local ClickHouse server keeps its parts (filesystemOf);
	// ClickHouseJournalLess: an ext4 without a journal.
	ClickHouseFilesystem  string `json:"clickhouse_filesystem,omitempty"`
	ClickHouseJournalLess bool   `json:"clickhouse_filesystem_journal_less,omitempty"`
	GOMAXPROCS            int    `json:"gomaxprocs"`
	Cores                 int    `json:"cores"` // runtime.NumCPU: what every process on the machine shares

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
	// LiveReadLagAtEnd: records not yet read at the window's end (the committed lag above trails
	// by the offsets waiting for the next checkpoint, up to pipeline.checkpoint_interval's worth)
	LiveReadLagAtEnd int64 `json:"live_read_lag_at_window_end"`
	LiveFixes        int   `json:"live_fixes"`

	DetectBatches  uint64  `json:"detect_hist_batches"`
	DetectP50Ms    float64 `json:"detect_hist_p50_ms"`
	DetectP99Ms    float64 `json:"detect_hist_p99_ms"`
	DetectOverflow bool    `json:"detect_hist_p99_beyond_last_bucket"`
	WaitBatches    uint64  `json:"wait_hist_batches"`
	WaitP50Ms      float64 `json:"wait_hist_p50_ms"`
	WaitP99Ms      float64 `json:"wait_hist_p99_ms"`
	LiveGCCycles   uint64  `json:"live_gc_cycles"`
	// LiveSched*: how long this process's goroutines waited, runnable, for a core in the window
	// (/sched/latencies:seconds)
	LiveSchedP50Ms   float64 `json:"live_sched_latency_p50_ms"`
	LiveSchedP99Ms   float64 `json:"live_sched_latency_p99_ms"`
	LiveAllocated    uint64  `json:"live_allocated_bytes"` // what this process allocated in the window
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
	// Peak: what the RSS consisted of at its highest, sampled from the pipeline's start
	Peak           PeakMemory `json:"peak"`
	BrokerPeakRSS  uint64     `json:"broker_peak_rss,omitempty"`
	ClickHousePeak uint64     `json:"clickhouse_peak_rss,omitempty"`
	ClickHouseRSS  uint64     `json:"clickhouse_rss,omitempty"`

	Lookups        int     `json:"lookups"`
	Concurrency    int     `json:"lookup_concurrency"`
	LookupTarget   float64 `json:"lookup_target_rate,omitempty"`
	LookupInFlight int     `json:"lookup_max_in_flight"`
	LookupFailures int     `json:"lookup_failures"`
	LookupGCCycles uint64  `json:"lookup_gc_cycles"` // the pipeline's collections while they ran
	// LookupSched*: how long the pipeline's goroutines (its HTTP handlers among them) waited,
	// runnable, for a core while they ran (/sched/latencies:seconds)
	LookupSchedP50Ms float64 `json:"lookup_sched_latency_p50_ms"`
	LookupSchedP99Ms float64 `json:"lookup_sched_latency_p99_ms"`
	LookupAlloc      uint64  `json:"lookup_allocated_bytes"`
	LookupRate       float64 `json:"lookups_per_sec"`
	LookupP50Ms      float64 `json:"lookup_p50_ms"`
	LookupP99Ms      float64 `json:"lookup_p99_ms"`
	LookupMaxMs      float64 `json:"lookup_max_ms"`
	LookupLag        int64   `json:"lookup_phase_lag_at_end"`

	// BacklogCPU: the cores each process used from the pipeline consuming to the backlog worked
	// off; StartupCPU: the CPU seconds the pipeline's process used starting (the city loaded,
	// checkpoints restored) before that
	BacklogCPU CPU     `json:"backlog_cpu_cores"`
	StartupCPU float64 `json:"pipeline_startup_cpu_seconds"`
	// CPUPerFix is the pipeline process's CPU a fix working off the backlog, in µs: its cores
	// then over the end-to-end rate (the start not counted)
	CPUPerFix float64 `json:"pipeline_cpu_us_per_fix"`
	// BacklogGCCPU: the runtime's estimate of the CPU its garbage collector took working off the
	// backlog (runtime/metrics /cpu/classes/gc/total), in seconds, and its cycles then
	BacklogGCCPU    float64 `json:"backlog_gc_cpu_seconds"`
	BacklogGCCycles uint64  `json:"backlog_gc_cycles"`
	LiveCPU         CPU     `json:"live_window_cpu_cores"`
	// LookupCPU: the cores each process used while the squads looked up plates, the live traffic
	// still running (the squads' process among the others)
	LookupCPU      CPU     `json:"lookups_cpu_cores"`
	BacklogBatches Batches `json:"backlog_batches"`
	LiveBatches    Batches `json:"live_window_batches"`

	Produced uint64 `json:"produced"`
	Stored   uint64 `json:"stored"`

	Targets []Target `json:"targets"`
	Notes   []string `json:"notes"`
}

// targets puts each of the targets beside what r measured, met or SHORT (n/a where it does
// not apply), and says why each SHORT one is short.
func targets(r *Report) []Target {
	status := func(ok bool) string {
		if ok {
			return "met"
		}
		return "SHORT"
	}
	var t []Target
	t = append(t, Target{key: keyThroughput, Name: "end-to-end throughput", Target: fmt.Sprintf("≥ %d fixes/s", targetFixesPerSec),
		Measured: fmt.Sprintf("%.0f fixes/s", r.PipelineRate), Status: status(r.PipelineRate >= targetFixesPerSec)})
	t = append(t, Target{key: keyShare, Name: "share of the raw Kafka ceiling", Target: fmt.Sprintf("≥ %.0f %%", targetCeilingShare*100),
		Measured: fmt.Sprintf("%.0f %% of %.0f records/s", r.CeilingShare*100, r.CeilingRate), Status: status(r.CeilingShare >= targetCeilingShare)})
	det := Target{key: keyDetection, Name: "detection latency p99, half rate", Target: fmt.Sprintf("≤ %d ms", targetDetectP99.Milliseconds()),
		Measured: "no alert in the window", Status: "n/a"}
	if r.DetectBatches > 0 {
		over := ""
		if r.DetectOverflow {
			over = "> "
		}
		det.Measured = fmt.Sprintf("p50 %.1f ms, p99 %s%.1f ms", r.DetectP50Ms, over, r.DetectP99Ms)
		det.Status = status(!r.DetectOverflow && r.DetectP99Ms <= ms(targetDetectP99))
	}
	t = append(t, det)
	q := Target{key: keyQueryable, Name: "fix → queryable p99, half rate", Target: fmt.Sprintf("≤ %s", targetQueryableP99),
		Measured: "no probe seen", Status: "SHORT"}
	if n := r.QueryableProbes - r.QueryableMissing; n > 0 {
		q.Measured = fmt.Sprintf("p50 %.0f ms, p99 %.0f ms", r.QueryableP50Ms, r.QueryableP99Ms)
		q.Status = status(r.QueryableMissing == 0 && r.QueryableP99Ms <= ms(targetQueryableP99))
		if r.QueryableMissing > 0 {
			q.Measured += fmt.Sprintf(", %d of %d probes never seen", r.QueryableMissing, r.QueryableProbes)
		}
	}
	t = append(t, q)
	t = append(t, Target{key: keyState, Name: "detector state per vehicle", Target: fmt.Sprintf("≤ %d KB", targetStateBytes/1000),
		Measured: fmt.Sprintf("%.2f KB live heap per tracked vehicle", r.HeapPerVehicle/1000), Status: status(r.Tracked > 0 && r.HeapPerVehicle <= targetStateBytes)})
	rss := Target{key: keyRSS, Name: "peak RSS with 100k vehicles", Target: fmt.Sprintf("≤ %d MB", targetRSSBytes/1_000_000),
		Measured: fmt.Sprintf("%.0f MB with %d vehicles", float64(r.PeakRSS)/1e6, r.Tracked), Status: status(r.PeakRSS > 0 && r.PeakRSS <= targetRSSBytes)}
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
	l := Target{key: keyLookup, Name: name, Target: fmt.Sprintf("≤ %d ms", targetLookupP99.Milliseconds()),
		Measured: fmt.Sprintf("p50 %.1f ms, p99 %.1f ms", r.LookupP50Ms, r.LookupP99Ms), Status: status(r.LookupFailures == 0 && r.LookupP99Ms <= ms(targetLookupP99))}
	if r.LookupFailures > 0 {
		l.Measured += fmt.Sprintf(", %d failed", r.LookupFailures)
	}
	t = append(t, l)
	t = append(t, Target{key: keyCPU, Name: "pipeline CPU per fix, backlog", Target: fmt.Sprintf("≤ %.1f µs", targetCPUPerFix),
		Measured: fmt.Sprintf("%.2f µs (%.2f cores)", r.CPUPerFix, r.BacklogCPU.Pipeline), Status: status(r.CPUPerFix > 0 && r.CPUPerFix <= targetCPUPerFix)})
	whyShort(r, t)
	return t
}

func mb(b uint64) string { return fmt.Sprintf("%.0f MB", float64(b)/1e6) }

// PrintReport writes r for a person: the targets, then how each figure was measured.
func PrintReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\nmuckbench bench — %s: %d routes, %d zones, %d vehicles; %d partitions; broker %s; ClickHouse %s; GOMAXPROCS %d\n\n",
		r.City, r.Routes, r.Zones, r.Vehicles, r.Partitions, r.Broker, r.ClickHouseVersion, r.GOMAXPROCS)
	fmt.Fprintf(w, "%-34s %-18s %-60s %s\n", "target", "issue", "measured", "")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%-34s %-18s %-60s %s\n", t.Name, t.Target, t.Measured, t.Status)
		if t.Why != "" {
			fmt.Fprintf(w, "%-34s %s\n", "", wrap(t.Why, 110, strings.Repeat(" ", 35)))
		}
	}
	fmt.Fprintf(w, "\nhow:\n")
	fmt.Fprintf(w, "  backlog      %d fixes of %d vehicles on their permitted routes (1 in %d speeding at %d km/h), preloaded in %.1fs (%.0f fixes/s);\n"+
		"               device time from %s\n",
		r.Fixes, r.Vehicles, violatorEvery, fastKmh, r.PreloadSeconds, r.PreloadRate, r.DeviceStart)
	if r.ClickHouseFilesystem != "" {
		fmt.Fprintf(w, "  ClickHouse   its parts on %s", r.ClickHouseFilesystem)
		if r.ClickHouseJournalLess {
			fmt.Fprintf(w, ": creating a part's files skips the inodes deleted in the last seconds to minutes,\n"+
				"               so a run straight after another, or after tests, pays for their deletions (docs/performance.md)")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  ceiling      a bare kafka-go group reader, the consumer's fetch settings, fetching and discarding: %.0f records/s (%.2fs)\n",
		r.CeilingRate, r.CeilingSeconds)
	fmt.Fprintf(w, "  pipeline     %.0f fixes/s from consuming to the last fix stored in ClickHouse and committed (lag 0) in %.2fs;\n"+
		"               %.0f fixes/s counting its %.2fs start; %.0f alerts opened; %d rows stored\n",
		r.PipelineRate, r.PipelineSeconds, r.PipelineRateAll, r.StartupSeconds, r.BacklogAlerts, r.BacklogStored)
	if len(r.BacklogAlertsByRule) > 0 {
		fmt.Fprintf(w, "               alerts opened by rule: %s\n", joinCounts(r.BacklogAlertsByRule))
	}
	fmt.Fprintf(w, "  live         %.0f fixes/s asked, %.0f achieved in the %d-fix window; %d records not yet read at the window's end;\n"+
		"               group lag (committed, trailing by up to a checkpoint interval) %d at the window's end, %d after the lookups\n",
		r.LiveTargetRate, r.LiveAchievedRate, r.LiveWindowFixes, r.LiveReadLagAtEnd, r.LiveLagAtEnd, r.LookupLag)
	fmt.Fprintf(w, "  detection    muckwatch_detection_latency_seconds (a batch's first record fetched → its alert changes produced), %d batches,\n"+
		"               interpolated within its buckets (×√2 apart): p50 %.1f ms, p99 %.1f ms\n", r.DetectBatches, r.DetectP50Ms, r.DetectP99Ms)
	fmt.Fprintf(w, "               of which waiting before detection (muckwatch_detection_wait_seconds: decoding, hand-off, batch fill, the batches before),\n"+
		"               %d batches: p50 %.1f ms, p99 %.1f ms; %d garbage collection cycles of this process in the window, which allocated %s;\n"+
		"               its goroutines waited, runnable, for a core (/sched/latencies) p50 %.3f ms, p99 %.2f ms\n",
		r.WaitBatches, r.WaitP50Ms, r.WaitP99Ms, r.LiveGCCycles, mb(r.LiveAllocated), r.LiveSchedP50Ms, r.LiveSchedP99Ms)
	fmt.Fprintf(w, "               produce → speeding alert read back from the alerts topic (producer, broker, batch fill, detection, announcement),\n"+
		"               %d alerts: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", r.AlertSamples, r.AlertP50Ms, r.AlertP99Ms, r.AlertMaxMs)
	fmt.Fprintf(w, "  queryable    %d probe fixes (one per %s), ClickHouse polled every %s for them: p50 %.0f ms, p99 %.0f ms, max %.0f ms, %d never seen\n",
		r.QueryableProbes, probeEvery, probePoll, r.QueryableP50Ms, r.QueryableP99Ms, r.QueryableMaxMs, r.QueryableMissing)
	fmt.Fprintf(w, "  memory       %d vehicles tracked (muckwatch_tracked_vehicles); live heap after GC: %s before the pipeline, %s once started\n"+
		"               (%d tracked), %s after the backlog: %.0f B per vehicle tracked meanwhile, %.0f B per vehicle for the whole pipeline\n"+
		"               (city, buffers, API view); a full collection of it, the pipeline idle, %.0f ms; peak RSS of this process %s (now %s)",
		r.Tracked, mb(r.HeapBefore), mb(r.HeapReady), r.TrackedAtReady, mb(r.HeapAfter), r.HeapPerVehicle, r.HeapAllPerVeh, r.FullGCMs, mb(r.PeakRSS), mb(r.RSS))
	if r.PeakRSSReset {
		fmt.Fprintf(w, ", reset when the pipeline started")
	}
	fmt.Fprintln(w)
	if pk := r.Peak; pk.RSS > 0 {
		fmt.Fprintf(w, "               at the highest RSS sampled (%s, %.1fs after the start, %d collections in): heap objects %s (of which marked live by the last\n"+
			"               collection %s, goal %s), free heap kept %s, unused in spans %s, stacks %s, runtime's other %s; memory limit %s\n",
			mb(pk.RSS), pk.At, pk.GCCycles, mb(pk.HeapObjects), mb(pk.HeapLive), mb(pk.HeapGoal), mb(pk.HeapFree), mb(pk.HeapUnused), mb(pk.Stacks), mb(pk.Other), limitText(pk.MemoryLimit))
	}
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
	fmt.Fprintf(w, "  lookups      %d GET /api/v1/vehicles/{plate} %s, from %s: %.0f/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d failed;\n"+
		"               %d garbage collection cycles of this process meanwhile, which allocated %s; its goroutines waited, runnable, for a core\n"+
		"               p50 %.3f ms, p99 %.2f ms\n",
		r.Lookups, how, r.Squads, r.LookupRate, r.LookupP50Ms, r.LookupP99Ms, r.LookupMaxMs, r.LookupFailures, r.LookupGCCycles, mb(r.LookupAlloc),
		r.LookupSchedP50Ms, r.LookupSchedP99Ms)
	fmt.Fprintf(w, "  CPU          cores used (of %d) working off the backlog: %s; in the live window: %s;\n"+
		"               in the lookups: %s\n", r.Cores, r.BacklogCPU, r.LiveCPU, r.LookupCPU)
	fmt.Fprintf(w, "               the pipeline's start (the city loaded, checkpoints restored) before that: %.2f s of CPU, not counted a fix\n", r.StartupCPU)
	if r.BacklogGCCycles > 0 && r.Fixes > 0 {
		fmt.Fprintf(w, "               the pipeline's garbage collector working off the backlog: %d cycles, %.2f s of CPU (%.2f µs a fix)\n",
			r.BacklogGCCycles, r.BacklogGCCPU, r.BacklogGCCPU/float64(r.Fixes)*1e6)
	}
	fmt.Fprintf(w, "  per batch    backlog: %s\n               live window: %s\n", r.BacklogBatches, r.LiveBatches)
	fmt.Fprintf(w, "  stored       %d distinct fixes of %d produced\n", r.Stored, r.Produced)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note         %s\n", n)
	}
}

// limitText is a memory limit as the report shows it.
func limitText(limit int64) string {
	if limit <= 0 || limit == math.MaxInt64 {
		return "none"
	}
	return fmt.Sprintf("%d MiB", limit>>20)
}

// wrap breaks s at spaces into lines of at most width runes, each after the first starting with
// indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		n := len([]rune(word))
		if i > 0 {
			if line+1+n > width {
				b.WriteString("\n" + indent)
				line = 0
			} else {
				b.WriteByte(' ')
				line++
			}
		}
		b.WriteString(word)
		line += n
	}
	return b.String()
}
