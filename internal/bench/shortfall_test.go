package bench

import (
	"strings"
	"testing"
)

// metReport is a run that meets every target: 100,000 vehicles on 2 cores.
func metReport() *Report {
	return &Report{
		Cores: 2, Fixes: 2_000_000, CeilingRate: 600_000, PipelineRate: 320_000, CeilingShare: 320_000.0 / 600_000,
		BacklogCPU:     CPU{Pipeline: 0.7, ClickHouse: 0.8, Broker: 0.2},
		BacklogGCCPU:   0.4,
		BacklogBatches: Batches{Batches: 430, Records: 4600, DetectMs: 9.2, HeldShare: 0.25},
		LiveCPU:        CPU{Pipeline: 0.5, ClickHouse: 0.7, Broker: 0.25, Others: 0.2}, LiveAchievedRate: 160_000,
		LiveSchedP99Ms: 1.5, LookupSchedP99Ms: 4.2,
		LookupCPU:     CPU{Pipeline: 0.6, ClickHouse: 0.6, Broker: 0.25, Others: 0.3, PipelineQueued: 0.21},
		LiveBatches:   Batches{Batches: 1000, Records: 2500, DetectMs: 4, Writes: 120, WriteStepMs: map[string]float64{"records": 88}},
		DetectBatches: 300, DetectP50Ms: 12, DetectP99Ms: 30, WaitP99Ms: 15, LiveGCCycles: 0,
		QueryableProbes: 200, QueryableP50Ms: 300, QueryableP99Ms: 500,
		Tracked: 100_000, HeapPerVehicle: 1400, HeapReady: 72e6, HeapAfter: 212e6, PeakRSS: 450e6,
		Lookups: 20_000, Concurrency: 200, LookupTarget: 1000, LookupP50Ms: 3, LookupP99Ms: 15, LookupMaxMs: 40, LookupInFlight: 60,
		CPUPerFix: 0.7 / 320_000 * 1e6,
	}
}

func TestTargetsSayWhyShort(t *testing.T) {
	cases := []struct {
		name   string
		change func(r *Report)
		key    targetKey
		want   []string // in the target's Why, in this order
	}{
		{"throughput short, even busy cores too slow", func(r *Report) {
			r.PipelineRate, r.CeilingRate, r.CeilingShare = 200_000, 400_000, 0.5
			r.BacklogCPU = CPU{Pipeline: 0.8, ClickHouse: 0.8, Broker: 0.2} // 1.8 cores: 9 µs a fix
		}, keyThroughput, []string{"short by 50000 fixes/s", "took 9.0 µs of CPU a fix (this process 4.0, ClickHouse 4.0, broker 1.0, others 0.0)",
			"2 cores fit 222222 fixes/s if never idle; they were 1.80 busy", "even busy cores fall short by 27778", "waited for writes 25 %"}},
		{"share short, the cores idle", func(r *Report) {
			r.CeilingRate, r.CeilingShare = 800_000, 320_000.0/800_000 // 1.7 cores at 320k: 5.3 µs a fix
		}, keyShare, []string{"10 points, short by 80000 fixes/s", "took 5.3 µs of CPU a fix", "2 cores fit 376471 fixes/s", "1.70 busy", "waited for writes 25 %"}},
		{"detection tail", func(r *Report) { r.DetectP99Ms, r.WaitP99Ms, r.LiveGCCycles = 257.1, 112.8, 2 },
			keyDetection, []string{"short by 207.1 ms", "waiting before detection p99 112.8 ms", "detection 4.0 ms a batch", "2 collections in the window", "goroutines waited for a core p99 1.50 ms",
				"the live window kept 1.65 of 2 cores busy (this process 0.50, ClickHouse 0.70, broker 0.25, others 0.20)"}},
		{"queryable late", func(r *Report) { r.QueryableP99Ms = 2600 },
			keyQueryable, []string{"short by 600 ms", "a write's records took 88 ms, 120 writes in the window", "1.65 of 2 cores busy"}},
		{"no probe seen", func(r *Report) { r.QueryableMissing = r.QueryableProbes },
			keyQueryable, []string{"200 of 200 probe fixes were never seen in ClickHouse"}},
		{"some probes never seen, the rest in time", func(r *Report) { r.QueryableMissing = 3 },
			keyQueryable, []string{"3 of 200 probe fixes were never seen in ClickHouse"}},
		{"detection beyond the last bucket", func(r *Report) { r.DetectP99Ms, r.DetectOverflow = 46341, true },
			keyDetection, []string{"short by more than 46291.0 ms"}},
		{"no vehicle tracked", func(r *Report) { r.Tracked, r.HeapPerVehicle = 0, 0 },
			keyState, []string{"no vehicle was tracked"}},
		{"state over", func(r *Report) { r.HeapPerVehicle = 2110 },
			keyState, []string{"short by 110 B a vehicle", "live heap 212 MB after the backlog against 72 MB before it, for 100000 vehicles"}},
		{"RSS over", func(r *Report) {
			r.PeakRSS = 520e6
			r.Peak = PeakMemory{RSS: 520e6, HeapObjects: 300e6, HeapLive: 240e6, HeapFree: 150e6, HeapUnused: 10e6, Stacks: 1e6, Other: 11e6}
		}, keyRSS, []string{"short by 20 MB", "heap objects 300 MB (marked live 240 MB), free heap kept 150 MB"}},
		{"lookups slow", func(r *Report) { r.LookupP99Ms, r.LookupMaxMs, r.LookupGCCycles = 47.1, 92.3, 1 },
			keyLookup, []string{"short by 27.1 ms", "p50 3.0 ms, max 92.3 ms, at most 60 at once", "1 collection meanwhile", "goroutines waited for a core p99 4.20 ms", "the lookups kept 1.75 of 2 cores busy (this process 0.60, ClickHouse 0.60, broker 0.25, others 0.30), and this process's threads waited for a core 0.21 s a second"}},
		{"lookups failed", func(r *Report) { r.LookupFailures = 3 },
			keyLookup, []string{"3 of 20000 lookups failed"}},
		{"CPU a fix over", func(r *Report) { r.CPUPerFix = 3.0 },
			keyCPU, []string{"short by 0.50 µs", "the garbage collector 0.20 µs a fix, detection 2.00 µs", "the rest 0.80 µs", "ClickHouse 0.80 and the broker 0.20 cores"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := metReport()
			tc.change(r)
			for _, tg := range targets(r) {
				if tg.key != tc.key {
					if tg.Status == "SHORT" || tg.Why != "" {
						t.Errorf("%s: %s, why %q; only the changed target should be short", tg.Name, tg.Status, tg.Why)
					}
					continue
				}
				if tg.Status != "SHORT" {
					t.Fatalf("%s: %s, want SHORT", tg.Name, tg.Status)
				}
				at := 0
				for _, w := range tc.want {
					i := strings.Index(tg.Why[at:], w)
					if i < 0 {
						t.Fatalf("%s: why %q\nlacks %q (after byte %d)", tg.Name, tg.Why, w, at)
					}
					at += i + len(w)
				}
			}
		})
	}
}

func TestTargetsAllMetSayNothing(t *testing.T) {
	for _, tg := range targets(metReport()) {
		if tg.Status != "met" || tg.Why != "" {
			t.Errorf("%s: %s, why %q", tg.Name, tg.Status, tg.Why)
		}
	}
}

func TestWrap(t *testing.T) {
	cases := []struct {
		in    string
		width int
		want  string
	}{
		{"short by 5 ms", 40, "short by 5 ms"},
		{"aaa bbb ccc", 7, "aaa bbb\n  ccc"},
		{"aaa bbb ccc", 3, "aaa\n  bbb\n  ccc"},
		{"µµµ µµµ", 7, "µµµ µµµ"}, // runes, not bytes
		{"", 10, ""},
	}
	for _, tc := range cases {
		if got := wrap(tc.in, tc.width, "  "); got != tc.want {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}
