package pipeline

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// eventTimeGauges are the event-time gauges (muckwatch_event_time_judged_seconds and
// muckwatch_event_time_read_seconds), set once the batches they follow from are written, in the
// order the batches were judged.
//
// Two goroutines set them: the writer, for a batch without checkpoints once its records are
// written (or once the alert changes held with it are), and the state writer, for a batch with
// checkpoints once those are written too, a few hundred milliseconds later. Meanwhile the writer
// has set the times of later batches, so the checkpointed batch's older times would move the
// gauges back until the next write, and a dashboard's event-time lag would jump by as much. Each
// batch is numbered as it is judged, and times are set only from a batch judged after the one
// the gauges show. A later batch's own times are still shown when they are older, as when a
// partition taken over is behind: that is the instance's event time going back, not a write
// landing late.
type eventTimeGauges struct {
	mu           sync.Mutex
	shown        uint64 // the number of the batch whose times the gauges show; 0: none yet
	judged, read prometheus.Gauge
}

func newEventTimeGauges() *eventTimeGauges {
	return &eventTimeGauges{
		judged: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_event_time_judged_seconds",
			Help: "Event time (Unix seconds) up to which the time-driven rules (signal_lost, trip closure) have decided and their alerts are written: every busy input partition has been read up to it. Wall time minus this is the pipeline's event-time lag."}),
		read: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_event_time_read_seconds",
			Help: "Newest event time (Unix seconds) read from the input partitions this instance owns, and written. Once the input goes quiet, muckwatch_event_time_judged_seconds reaches it."}),
	}
}

// eventMark is where the event clocks stood after a judged batch: the engine's judged time, the
// newest time read, and the batch's number in judging order (from 1).
type eventMark struct {
	seq          uint64
	judged, read time.Time
}

// merge returns the later of m and o, field by field: the mark of the batches written while alert
// changes wait (waitingChanges.hold).
func (m eventMark) merge(o eventMark) eventMark {
	if o.judged.After(m.judged) {
		m.judged = o.judged
	}
	if o.read.After(m.read) {
		m.read = o.read
	}
	m.seq = max(m.seq, o.seq)
	return m
}

// set shows the event times of m once its batch is written, unless the gauges show a later
// batch's. A zero time leaves its gauge as it is.
func (e *eventTimeGauges) set(m eventMark) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m.seq < e.shown || (m.judged.IsZero() && m.read.IsZero()) {
		return
	}
	e.shown = m.seq
	if !m.judged.IsZero() {
		e.judged.Set(float64(m.judged.UnixMilli()) / 1000)
	}
	if !m.read.IsZero() {
		e.read.Set(float64(m.read.UnixMilli()) / 1000)
	}
}
