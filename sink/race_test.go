//go:build race

package sink

// raceEnabled: the tests run under the race detector, whose build allocates where an optimised
// one does not.
const raceEnabled = true
