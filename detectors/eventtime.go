package detectors

import "time"

// The rules judge by event time (the devices' clocks), never by the wall clock. The engine does
// not know where its records come from or how far each input has been read: the pipeline does
// (internal/eventtime), and tells it with Advance how far event time has got, the watermark up to
// which every input has been read. The time-driven rules (due.go) decide only up to it, so that
// neither a backlog nor a lagging input looks like a silent truck.

// Advance tells the engine that every input has been read up to event time t: the time-driven
// rules may decide up to it, at the next Tick or while the next batch is judged. Event time never
// goes back: an earlier t is ignored.
func (e *Engine) Advance(t time.Time) {
	if t.After(e.advanced) {
		e.advanced = t
	}
}

// Judged is the event time of the last tick: the time-driven rules have taken every decision
// due up to it.
func (e *Engine) Judged() time.Time { return e.ticked }
