package detectors

import (
	"time"

	"github.com/muckwatch/muckwatch/internal/eventtime"
	"github.com/muckwatch/muckwatch/record"
)

// input feeds an engine in tests as the pipeline does (pipeline/stages.go): each batch's records
// counted in an event clock over their shards, at a wall time the test sets, the event time
// handed to the engine, then the batch judged.
type input struct {
	eng   *Engine
	clock *eventtime.Clock
	wall  time.Time // zero: the real clock
}

func newInput(eng *Engine) *input { return &input{eng: eng, clock: eventtime.New(5 * time.Second)} }

func (in *input) now() time.Time {
	if in.wall.IsZero() {
		return time.Now()
	}
	return in.wall
}

func (in *input) batch(fixes []record.Fix, events []record.Event) {
	now := in.now()
	in.clock.ReadBatch(fixes, events, now, func(s record.Shard) { in.eng.Resume(s) })
	if wm, ok := in.clock.Watermark(now); ok {
		in.eng.Advance(wm)
	}
	in.eng.ProcessBatch(fixes, events)
}

// tickTo runs the time-driven rules up to t, as if every input had been read up to it.
func tickTo(eng *Engine, t time.Time) {
	eng.Advance(t)
	eng.Tick()
}
