package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/watchdog"
)

// TestBench runs `muckbench bench` at a tiny size (the broker in this process, the squads in a
// child process, the tests' shared ClickHouse server) and checks that the report is complete and
// its numbers are sane: every fix produced is stored, rates and ratios are positive and finite,
// latencies were measured, and every target has a verdict.
func TestBench(t *testing.T) {
	watchdog.Start(t, 8*time.Minute, nil)
	var progress io.Writer
	if testing.Verbose() {
		progress = os.Stderr
	}
	const fixes, vehicles = 3000, 200
	r, err := Run(context.Background(), Options{
		Fixes: fixes, Vehicles: vehicles, City: "sample", Partitions: 2, Interval: 10 * time.Second, At: "10:00",
		Live: 16 * time.Second, Lookups: 400, LookupRate: 500, Concurrency: 200, Seed: 7,
		ClickHouse: chServer.TCPAddr, ClickHouseDir: chServer.Dir, BrokerInProcess: true, Progress: progress,
		ChildCommand: testChild, // the squads in a child process, as `muckbench bench` runs them
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	PrintReport(&out, r)
	t.Log(out.String())

	// The local server's parts are on a filesystem /proc names (Linux, as CI is).
	if r.ClickHouseFilesystem == "" || !strings.Contains(out.String(), "ClickHouse   its parts on "+r.ClickHouseFilesystem) {
		t.Errorf("the report does not say where ClickHouse keeps its parts (%q)", r.ClickHouseFilesystem)
	}
	if r.BacklogStored != fixes {
		t.Errorf("backlog: %d rows stored, want %d", r.BacklogStored, fixes)
	}
	if r.LiveFixes <= 0 {
		t.Errorf("no live traffic was produced")
	}
	if r.Produced != uint64(fixes+r.LiveFixes) || r.Stored != r.Produced {
		t.Errorf("%d distinct fixes stored, %d produced (%d backlog + %d live)", r.Stored, r.Produced, fixes, r.LiveFixes)
	}
	if r.Tracked != vehicles {
		t.Errorf("%d vehicles tracked, want %d", r.Tracked, vehicles)
	}
	// At 10:00 on a weekday no zone of the sample city is closed: the backlog's alerts are its
	// speeders' (1 in violatorEvery), whenever the test runs.
	if !strings.HasSuffix(strings.Fields(r.DeviceStart)[2], "10:00:00") || r.BacklogAlertsByRule["speeding"] < vehicles/violatorEvery || r.BacklogAlertsByRule["restricted_zone"] != 0 {
		t.Errorf("backlog from %s: alerts opened %v, want %d speeding and no restricted_zone", r.DeviceStart, r.BacklogAlertsByRule, vehicles/violatorEvery)
	}
	positive := map[string]float64{
		"preload rate": r.PreloadRate, "ceiling rate": r.CeilingRate, "pipeline rate": r.PipelineRate,
		"ceiling share": r.CeilingShare, "live rate": r.LiveAchievedRate,
		"detection p50": r.DetectP50Ms, "detection p99": r.DetectP99Ms,
		"produce → alert p50": r.AlertP50Ms, "produce → alert p99": r.AlertP99Ms,
		"fix → queryable p50": r.QueryableP50Ms, "fix → queryable p99": r.QueryableP99Ms,
		"lookup p50": r.LookupP50Ms, "lookup p99": r.LookupP99Ms, "lookup rate": r.LookupRate,
		"full GC": r.FullGCMs, "peak RSS": float64(r.PeakRSS), "backlog CPU": r.BacklogCPU.Pipeline, "CPU per fix": r.CPUPerFix, "startup CPU": r.StartupCPU,
		"backlog writes": r.BacklogBatches.Writes, "backlog write records step": r.BacklogBatches.WriteStepMs["records"],
		"backlog write checkpoints step": r.BacklogBatches.WriteStepMs["checkpoints"], "backlog positions inserts": r.BacklogBatches.Inserts["positions"],
	}
	// The heap per vehicle is measured, not asserted positive: 200 vehicles' state is ~0.3 MB, and
	// this test's broker runs in the test's process, whose heap moves by megabytes around it
	// (the 100,000-vehicle bench has the broker in a child process).
	if r.HeapAfter == 0 || math.IsNaN(r.HeapPerVehicle) || math.IsInf(r.HeapPerVehicle, 0) {
		t.Errorf("heap after the backlog %d B, %g B per vehicle", r.HeapAfter, r.HeapPerVehicle)
	}
	for name, v := range positive {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %g, want a positive finite number", name, v)
		}
	}
	for _, p := range [][3]float64{{r.DetectP50Ms, r.DetectP99Ms, 0}, {r.AlertP50Ms, r.AlertP99Ms, r.AlertMaxMs},
		{r.QueryableP50Ms, r.QueryableP99Ms, r.QueryableMaxMs}, {r.LookupP50Ms, r.LookupP99Ms, r.LookupMaxMs}} {
		if p[1] < p[0] || (p[2] > 0 && p[2] < p[1]) {
			t.Errorf("percentiles out of order: p50 %g, p99 %g, max %g", p[0], p[1], p[2])
		}
	}
	if n := gcCycles(); n == 0 {
		t.Errorf("gcCycles = 0 after a bench run (is the runtime/metrics name right?)")
	}
	if r.WaitBatches < r.DetectBatches || r.WaitP99Ms < r.WaitP50Ms || !(r.WaitP99Ms > 0) {
		t.Errorf("detection wait: %d batches (%d with alerts), p50 %g ms, p99 %g ms", r.WaitBatches, r.DetectBatches, r.WaitP50Ms, r.WaitP99Ms)
	}
	if r.DetectBatches == 0 || r.AlertSamples == 0 {
		t.Errorf("no detection latency measured: %d batches with alerts, %d alerts read back", r.DetectBatches, r.AlertSamples)
	}
	if r.QueryableProbes == 0 || r.QueryableMissing != 0 {
		t.Errorf("fix → queryable: %d probes, %d never seen", r.QueryableProbes, r.QueryableMissing)
	}
	if r.Lookups != 400 || r.LookupFailures != 0 || r.LookupInFlight < 1 || r.LookupP99Ms <= 0 {
		t.Errorf("lookups: %d done, %d failed, at most %d at once, p99 %.1f ms", r.Lookups, r.LookupFailures, r.LookupInFlight, r.LookupP99Ms)
	}
	if len(r.Targets) != 8 {
		t.Fatalf("%d targets in the report, want 8", len(r.Targets))
	}
	for _, tg := range r.Targets {
		if tg.Measured == "" || (tg.Status != "met" && tg.Status != "SHORT" && tg.Status != "n/a") {
			t.Errorf("target %q: measured %q, status %q", tg.Name, tg.Measured, tg.Status)
		}
		if !strings.Contains(out.String(), tg.Name) {
			t.Errorf("the printed report lacks target %q", tg.Name)
		}
		if (tg.Status == "SHORT") != (tg.Why != "") {
			t.Errorf("target %q is %s, why %q: a SHORT target, and only one, says why", tg.Name, tg.Status, tg.Why)
		}
		if first, _, _ := strings.Cut(tg.Why, " "); tg.Why != "" && !strings.Contains(out.String(), "   "+first) {
			t.Errorf("the printed report lacks why target %q is short: %q", tg.Name, tg.Why)
		}
	}
	// The RSS target is for 100k vehicles: a tiny run never claims it.
	if rss := r.Targets[5]; rss.Status == "met" {
		t.Errorf("the RSS target is claimed met with %d vehicles", r.Tracked)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Stored != r.Stored || len(back.Targets) != len(r.Targets) {
		t.Errorf("the JSON report does not round-trip: %v", err)
	}
}
