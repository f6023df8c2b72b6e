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
