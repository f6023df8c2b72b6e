package sim

import "time"

// Noisy is a simulated span with the noise of real terminals and violations of every kind, as
// the accuracy evaluation runs it: position σ = 10 m, 1 % jumps, 2 % of fixes out of order, 1 %
// sent twice, 30 % of trips brushing their corridor's edge, half the trips with a violation.
func Noisy(seed uint64, start time.Time, duration, interval time.Duration, vehicles int) Options {
	return Options{Seed: seed, Start: start, Duration: duration, Interval: interval, Vehicles: vehicles,
		Unregistered: 2, ViolationRate: 0.5, NoiseM: 10, JumpRate: 0.01, OutOfOrderRate: 0.02,
		DuplicateRate: 0.01, BrushRate: 0.3}
}

// Street is Noisy with the GPS of real recorded traces: no reported speed (the detectors derive
// it), irregular reporting (1 s becomes 1–5 s), 0.5 % of fixes followed by a 5–30 s loss of the
// fix and a 100–250 m re-acquisition snap, and parked trucks drifting with 3 % of their fixes
// jittering 20–50 m off. speed keeps the terminals' reported speed.
func Street(seed uint64, start time.Time, duration, interval time.Duration, vehicles int, speed bool) Options {
	o := Noisy(seed, start, duration, interval, vehicles)
	o.NoSpeed = !speed
	if interval < 5*time.Second {
		o.IntervalSpread = 4 * time.Second
	}
	o.SnapRate, o.ParkedJitterRate = 0.005, 0.03
	return o
}
