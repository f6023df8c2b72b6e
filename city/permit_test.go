package city

import (
	"testing"
	"time"
)

// ActiveSpan's permit is ActiveAmong's, and ActiveAmong gives that same permit everywhere in the
// span, while the span ends at the boundaries nearest the time asked about.
func TestActiveSpan(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	a := &Permit{ID: "a", ValidFrom: day(1), ValidTo: day(10)}
	b := &Permit{ID: "b", ValidFrom: day(5), ValidTo: day(20)} // overlaps a: the later one wins
	c := &Permit{ID: "c", ValidFrom: day(25), ValidTo: day(28)}
	ps := []*Permit{a, b, c}
	f := func(at time.Time, want *Permit, from, to time.Time) {
		t.Helper()
		p, gotFrom, gotTo := ActiveSpan(ps, at)
		if p != want || !gotFrom.Equal(from) || !gotTo.Equal(to) {
			t.Errorf("ActiveSpan at %s = %v [%s, %s), want %v [%s, %s)", at, p, gotFrom, gotTo, want, from, to)
		}
		for _, in := range []time.Time{from, at, to.Add(-time.Nanosecond)} {
			if from.IsZero() && in.IsZero() {
				continue
			}
			if got := ActiveAmong(ps, in); got != want {
				t.Errorf("ActiveAmong at %s within the span of %s = %v, want %v", in, at, got, want)
			}
		}
	}
	f(day(1).Add(-time.Hour), nil, time.Time{}, day(1))
	f(day(1), a, day(1), day(5))
	f(day(3), a, day(1), day(5))
	f(day(5), b, day(5), day(10))
	f(day(12), b, day(10), day(20))
	f(day(20), nil, day(20), day(25))
	f(day(26), c, day(25), day(28))
	f(day(28), nil, day(28), maxTime)
	if p, from, to := ActiveSpan(nil, day(3)); p != nil || !from.IsZero() || !to.Equal(maxTime) {
		t.Errorf("ActiveSpan of no permit = %v [%s, %s), want nil over every time", p, from, to)
	}
}
