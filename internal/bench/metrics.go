package bench

import (
	"fmt"
	"maps"
	"math"
	"runtime/metrics"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Batches is where a phase's time per batch went, from the pipeline's own histograms: means
// per batch, in milliseconds.
type Batches struct {
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

// histSums are the counts and sums of the histograms Batches reads, and the counters' values
// (as sums).
type histSums map[string][2]float64

// gatherSums gathers g's histSums (none if it cannot gather).
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
					out[mf.GetName()+"/"+labelValue(m, label)] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
				}
			} else if c := m.GetCounter(); c != nil {
				out[mf.GetName()] = [2]float64{v[0], v[1] + c.GetValue()}
			}
		}
	}
	return out
}

const (
	recordsMetric    = "muckwatch_ingest_records_total"
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
func batchesSince(before, after histSums, wall time.Duration) Batches {
	d := func(name string) (count, sum float64) {
		return after[name][0] - before[name][0], after[name][1] - before[name][1]
	}
	n, _ := d("muckwatch_detector_batch_seconds")
	if n <= 0 {
		return Batches{}
	}
	_, records := d("muckwatch_ingest_batch_records")
	_, detect := d("muckwatch_detector_batch_seconds")
	_, insert := d("muckwatch_clickhouse_insert_seconds")
	_, handle := d("muckwatch_ingest_handle_seconds")
	_, held := d("muckwatch_consumer_held_seconds_total")
	b := Batches{Batches: uint64(n), Records: records / n, DetectMs: detect / n * 1000, InsertMs: insert / n * 1000,
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

func (b Batches) String() string {
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

// heapAllocated is how many bytes this process has allocated on the heap since it started.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// schedLatencies is the runtime's histogram of how long this process's goroutines waited,
// runnable, for a core (/sched/latencies:seconds), as cumulative buckets; time beyond the last
// finite bound is counted in total only.
func schedLatencies() histSnap {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return histSnap{}
	}
	h := s[0].Value.Float64Histogram()
	var out histSnap
	for i, n := range h.Counts {
		out.total += n
		if upper := h.Buckets[i+1]; !math.IsInf(upper, 1) {
			out.bounds = append(out.bounds, upper)
			out.counts = append(out.counts, out.total)
		}
	}
	return out
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

// gatherCounter sums the series of counter or gauge name whose label where[0] has the value
// where[1] (a zero where: every series).
func gatherCounter(g prometheus.Gatherer, name string, where [2]string) (float64, error) {
	by, err := gatherCounterBy(g, name, "", where)
	var sum float64
	for _, v := range by {
		sum += v
	}
	return sum, err
}

// gatherCounterBy sums the series of counter or gauge name whose label where[0] has the value
// where[1] (a zero where: every series) by the value of label by, leaving out the series at zero.
func gatherCounterBy(g prometheus.Gatherer, name, by string, where [2]string) (map[string]float64, error) {
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
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() // a series is one or the other
			if (where[0] == "" || labelValue(m, where[0]) == where[1]) && v != 0 {
				out[labelValue(m, by)] += v
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("the pipeline has no metric %s", name)
}

// labelValue returns the value of m's label name, "" if it has none.
func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// gatherValue sums every series of counter or gauge name.
func gatherValue(g prometheus.Gatherer, name string) (float64, error) {
	return gatherCounter(g, name, [2]string{})
}
