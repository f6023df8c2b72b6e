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

// set shows the event times after batch number seq (its judging order, from 1) once it is
// written, unless the gauges show a later batch's. A zero time leaves its gauge as it is.
func (e *eventTimeGauges) set(seq uint64, judged, read time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if seq < e.shown || (judged.IsZero() && read.IsZero()) {
		return
	}
	e.shown = seq
	if !judged.IsZero() {
		e.judged.Set(float64(judged.UnixMilli()) / 1000)
	}
	if !read.IsZero() {
		e.read.Set(float64(read.UnixMilli()) / 1000)
	}
}
