package bench

import "fmt"

// Why a target is short, from the run's own figures: each SHORT target says by how much and
// where the run spent what it lacked. The sentences name measurements, not causes guessed
// beforehand: a run on a quieter machine, or after a change, says something else.

// cpuBudget is what the machine's cores could do at the CPU a fix a phase cost all its
// processes.
type cpuBudget struct {
	cores   int
	rate    float64 // fixes/s the phase achieved
	perFix  float64 // µs of CPU a fix, every process together
	bound   float64 // fixes/s the cores fit at perFix, never idle
	busy    float64 // cores the processes kept busy
	parts   CPU     // the cores each process used
	measure bool    // false: nothing to divide by
}

func budgetOf(c CPU, rate float64, cores int) cpuBudget {
	b := cpuBudget{cores: cores, rate: rate, parts: c, busy: c.Busy()}
	if rate <= 0 || b.busy <= 0 || cores <= 0 {
		return b
	}
	b.perFix = b.busy / rate * 1e6
	b.bound = float64(cores) / b.perFix * 1e6
	b.measure = true
	return b
}

// perFixOf is a process's share of perFix, in µs.
func (b cpuBudget) perFixOf(cores float64) float64 { return cores / b.rate * 1e6 }

// String says where the CPU a fix went and what that allows on the machine's cores.
func (b cpuBudget) String() string {
	if !b.measure {
		return "no CPU measured"
	}
	return fmt.Sprintf("all processes took %.1f µs of CPU a fix (this process %.1f, ClickHouse %.1f, broker %.1f, others %.1f), "+
		"so %d cores fit %.0f fixes/s if never idle; they were %.2f busy",
		b.perFix, b.perFixOf(b.parts.Pipeline), b.perFixOf(b.parts.ClickHouse), b.perFixOf(b.parts.Broker), b.perFixOf(b.parts.Others),
		b.cores, b.bound, b.busy)
}

// throughputWhy says why the backlog was worked off at r.PipelineRate and not at want fixes/s.
func throughputWhy(r *Report, want float64) string {
	b := budgetOf(r.BacklogCPU, r.PipelineRate, r.Cores)
	s := fmt.Sprintf("short by %.0f fixes/s: %s", want-r.PipelineRate, b)
	if b.measure && b.bound < want {
		s += fmt.Sprintf("; at that cost even busy cores fall short by %.0f", want-b.bound)
	}
	if r.BacklogBatches.Batches > 0 {
		s += fmt.Sprintf("; the consumer waited for writes %.0f %% of the time", 100*r.BacklogBatches.HeldShare)
	}
	return s
}

// load says how busy the machine's cores were in a phase, what ("the live window", "the lookups").
func load(what string, c CPU, cores int) string {
	busy := c.Busy()
	if busy <= 0 {
		return "no CPU measured in " + what
	}
	s := fmt.Sprintf("%s kept %.2f of %d cores busy (this process %.2f, ClickHouse %.2f, broker %.2f, others %.2f)",
		what, busy, cores, c.Pipeline, c.ClickHouse, c.Broker, c.Others)
	if c.PipelineQueued > 0 {
		s += fmt.Sprintf(", and this process's threads waited for a core %.2f s a second", c.PipelineQueued)
	}
	return s
}

// collections is n garbage collections, in words.
func collections(n uint64) string {
	if n == 1 {
		return "1 collection"
	}
	return fmt.Sprintf("%d collections", n)
}

// whyShort fills in Why for every SHORT target of t, from r.
func whyShort(r *Report, t []Target) {
	for i := range t {
		if t[i].Status != "SHORT" {
			continue
		}
		switch t[i].key {
		case keyThroughput:
			t[i].Why = throughputWhy(r, targetFixesPerSec)
		case keyShare:
			want := targetCeilingShare * r.CeilingRate
			t[i].Why = fmt.Sprintf("%.0f points, ", 100*(targetCeilingShare-r.CeilingShare)) + throughputWhy(r, want)
		case keyDetection:
			by := "short by"
			if r.DetectOverflow {
				by = "short by more than"
			}
			t[i].Why = fmt.Sprintf("%s %.1f ms: waiting before detection p99 %.1f ms (the batches before it, their writes), "+
				"detection %.1f ms a batch; %s in the window; goroutines waited for a core p99 %.2f ms; %s",
				by, r.DetectP99Ms-ms(targetDetectP99), r.WaitP99Ms, r.LiveBatches.DetectMs, collections(r.LiveGCCycles), r.LiveSchedP99Ms,
				load("the live window", r.LiveCPU, r.Cores))
		case keyQueryable:
			if r.QueryableMissing > 0 {
				t[i].Why = fmt.Sprintf("%d of %d probe fixes were never seen in ClickHouse", r.QueryableMissing, r.QueryableProbes)
				continue
			}
			t[i].Why = fmt.Sprintf("short by %.0f ms: a write's records took %.0f ms, %.0f writes in the window; %s",
				r.QueryableP99Ms-ms(targetQueryableP99), r.LiveBatches.WriteStepMs["records"], r.LiveBatches.Writes, load("the live window", r.LiveCPU, r.Cores))
		case keyState:
			if r.Tracked == 0 {
				t[i].Why = "no vehicle was tracked"
				continue
			}
			t[i].Why = fmt.Sprintf("short by %.0f B a vehicle: live heap %s after the backlog against %s before it, for %d vehicles",
				r.HeapPerVehicle-targetStateBytes, mb(r.HeapAfter), mb(r.HeapReady), r.Tracked)
		case keyRSS:
			pk := r.Peak
			t[i].Why = fmt.Sprintf("short by %s: at the highest sample heap objects %s (marked live %s), free heap kept %s, unused in spans %s, stacks %s, runtime's other %s",
				mb(r.PeakRSS-targetRSSBytes), mb(pk.HeapObjects), mb(pk.HeapLive), mb(pk.HeapFree), mb(pk.HeapUnused), mb(pk.Stacks), mb(pk.Other))
		case keyLookup:
			if r.LookupFailures > 0 {
				t[i].Why = fmt.Sprintf("%d of %d lookups failed", r.LookupFailures, r.Lookups)
				continue
			}
			t[i].Why = fmt.Sprintf("short by %.1f ms: p50 %.1f ms, max %.1f ms, at most %d at once; %s meanwhile; "+
				"this process's goroutines waited for a core p99 %.2f ms; beside the live traffic, %s",
				r.LookupP99Ms-ms(targetLookupP99), r.LookupP50Ms, r.LookupMaxMs, r.LookupInFlight, collections(r.LookupGCCycles),
				r.LookupSchedP99Ms, load("the lookups", r.LookupCPU, r.Cores))
		case keyCPU:
			if r.CPUPerFix <= 0 {
				t[i].Why = "no CPU measured"
				continue
			}
			gc := 0.0
			if r.Fixes > 0 {
				gc = r.BacklogGCCPU / float64(r.Fixes) * 1e6
			}
			detect := 0.0
			if r.BacklogBatches.Records > 0 {
				detect = r.BacklogBatches.DetectMs / r.BacklogBatches.Records * 1e3
			}
			t[i].Why = fmt.Sprintf("short by %.2f µs: the garbage collector %.2f µs a fix, detection %.2f µs (its wall time on the consumer's goroutine), "+
				"the rest %.2f µs (decoding, the inserts' and checkpoints' encoding, the live view); beside it ClickHouse %.2f and the broker %.2f cores",
				r.CPUPerFix-targetCPUPerFix, gc, detect, max(0, r.CPUPerFix-gc-detect), r.BacklogCPU.ClickHouse, r.BacklogCPU.Broker)
		}
	}
}
