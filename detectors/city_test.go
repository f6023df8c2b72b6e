package detectors

import (
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
)

// A track keeps the permit it found until a fix falls outside the span it holds for: whatever
// order its fixes' times come in, and after a reload, it answers as looking at every permit would.
func TestTrackPermitSpan(t *testing.T) {
	c := loadTestCity(t)
	reloaded := loadTestCity(t)
	tracks := map[string]*Track{}
	f := func(c *city.City, plate, at string) {
		t.Helper()
		tm, err := time.Parse(time.RFC3339, at)
		if err != nil {
			t.Fatal(err)
		}
		tr := tracks[plate]
		if tr == nil {
			tr = &Track{VehicleID: plate}
			tracks[plate] = tr
		}
		want := city.ActiveAmong(c.PermitsOf(plate), tm)
		var wantRoute *city.Route
		if want != nil {
			wantRoute = c.Route(want.RouteID)
		}
		if v, got, r := tr.lookUp(c, tm); got != want || v != c.Vehicle(plate) || r != wantRoute {
			t.Errorf("%s at %s: permit %v, route %v, want %v, %v", plate, at, got, r, want, wantRoute)
		}
	}
	f(c, "粤B00001", "2026-11-23T10:00:00+08:00") // P1
	f(c, "粤B00001", "2026-11-23T10:00:10+08:00") // P1, from the span
	f(c, "粤B00001", "2028-01-02T00:00:00+08:00") // after P1's end: none
	f(c, "粤B00001", "2026-11-24T00:00:00+08:00") // back within P1
	f(c, "粤B00001", "1600-01-01T00:00:00Z")      // before any time in nanoseconds
	f(c, "粤B00001", "2026-11-24T00:00:00+08:00")
	f(c, "粤B00002", "2025-06-01T00:00:00+08:00") // P2
	f(c, "粤B00002", "2026-11-23T10:00:00+08:00") // P2 expired
	f(reloaded, "粤B00001", "2026-11-24T00:00:01+08:00")
	f(c, "粤B99999", "2026-11-23T10:00:00+08:00") // unregistered
}
