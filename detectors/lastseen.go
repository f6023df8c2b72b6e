package detectors

import "time"

// LastSeen returns where and when the vehicle's newest fix judged put it, and its speed (km/h, as
// the rules took it: reported, else derived); ok is false while the engine holds no fix of it.
// Like the engine's other methods, it must not be called while a batch is being processed
// (the pipeline calls it between batches, to publish the vehicle's position and risk).
func (e *Engine) LastSeen(vehicle string) (lat, lon, speedKmh float64, at time.Time, ok bool) {
	tr := e.tracks[vehicle]
	if tr == nil || !tr.hasLast {
		return 0, 0, 0, time.Time{}, false
	}
	return tr.last.ll[1], tr.last.ll[0], tr.last.speedKmh, tr.last.time(), true
}
