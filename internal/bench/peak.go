package bench

import (
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"time"
)

// PeakMemory is what this process's memory consisted of when its RSS was highest, sampled every
// peakEvery from just before the pipeline starts to the end of the run (the runtime's memory classes, and
// the collector's view of the live heap at that moment).
type PeakMemory struct {
	RSS uint64 `json:"rss"`
	// At: seconds after the sampling started, just before the pipeline
	At float64 `json:"at_seconds"`
	// HeapObjects: bytes in heap objects, live or not yet swept; HeapLive: the heap marked live by
	// the last collection; HeapGoal: the collector's goal then
	HeapObjects uint64 `json:"heap_objects"`
	HeapLive    uint64 `json:"heap_live"`
	HeapGoal    uint64 `json:"heap_goal"`
	// HeapFree: free heap pages the runtime keeps mapped (counted in the RSS); HeapUnused:
	// free space in spans holding objects (fragmentation); Stacks: goroutine stacks; Other:
	// the runtime's metadata, buffers and the rest it maps
	HeapFree   uint64 `json:"heap_free"`
	HeapUnused uint64 `json:"heap_unused"`
	Stacks     uint64 `json:"stacks"`
	Other      uint64 `json:"other"`
	// GCCycles: collections from the pipeline's start to the peak
	GCCycles uint64 `json:"gc_cycles"`
	// MemoryLimit: the process's soft memory limit while the pipeline ran (math.MaxInt64: none)
	MemoryLimit int64 `json:"memory_limit"`
	// Profile: where the heap profile at the peak was written, if asked
	Profile string `json:"profile,omitempty"`
}

// peakEvery is how often the peak watcher samples.
const peakEvery = 25 * time.Millisecond

// peakWatcher samples this process's RSS and the runtime's memory classes until stopped and keeps
// the sample of the highest RSS; with a profile path it writes a heap profile (the live heap of
// the last collection, and what was allocated since the start) whenever the RSS passes its last
// peak by peakProfileStep, the last of them kept.
type peakWatcher struct {
	profile string
	stop    chan struct{}
	done    chan PeakMemory
}

const peakProfileStep = 8 << 20

func watchPeak(profile string) *peakWatcher {
	w := &peakWatcher{profile: profile, stop: make(chan struct{}), done: make(chan PeakMemory, 1)}
	go w.run()
	return w
}

// Stop ends the sampling and returns the sample of the highest RSS.
func (w *peakWatcher) Stop() PeakMemory {
	close(w.stop)
	return <-w.done
}

func (w *peakWatcher) run() {
	names := []string{"/memory/classes/heap/objects:bytes", "/gc/heap/live:bytes", "/gc/heap/goal:bytes",
		"/memory/classes/heap/free:bytes", "/memory/classes/heap/unused:bytes", "/memory/classes/heap/stacks:bytes",
		"/memory/classes/os-stacks:bytes", "/memory/classes/total:bytes", "/memory/classes/heap/released:bytes", "/gc/cycles/total:gc-cycles"}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	start := time.Now()
	metrics.Read(samples)
	cycles0 := samples[9].Value.Uint64()
	var peak PeakMemory
	var profiled uint64
	var buf bytes.Buffer
	tick := time.NewTicker(peakEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.stop:
			if peak.Profile != "" && buf.Len() > 0 {
				if err := os.WriteFile(peak.Profile, buf.Bytes(), 0o644); err != nil {
					peak.Profile = fmt.Sprintf("cannot write %s: %v", peak.Profile, err)
				}
			}
			w.done <- peak
			return
		case <-tick.C:
		}
		rss := statmRSS()
		if rss <= peak.RSS {
			continue
		}
		metrics.Read(samples)
		u := func(i int) uint64 { return samples[i].Value.Uint64() }
		peak = PeakMemory{RSS: rss, At: time.Since(start).Seconds(), HeapObjects: u(0), HeapLive: u(1), HeapGoal: u(2),
			HeapFree: u(3), HeapUnused: u(4), Stacks: u(5) + u(6), GCCycles: u(9) - cycles0, Profile: peak.Profile}
		peak.Other = u(7) - u(8) - u(0) - u(3) - u(4) - u(5) - u(6)
		if w.profile != "" && rss > profiled+peakProfileStep {
			buf.Reset()
			if err := pprof.Lookup("heap").WriteTo(&buf, 0); err == nil {
				profiled, peak.Profile = rss, w.profile
			}
		}
	}
}

// statmRSS returns this process's resident set size, 0 if it cannot be read.
func statmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// gcSample is the collector's work so far: its CPU (the runtime's estimate) and cycles.
type gcSample struct {
	cpu    float64
	cycles uint64
}

func readGC() gcSample {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return gcSample{cpu: s[0].Value.Float64(), cycles: s[1].Value.Uint64()}
}
