package detectors

import (
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// Reloading the reference data mid-episode keeps every vehicle's state: the open episode goes on
// as one alert under the new data and resolves normally.
func TestReloadMidEpisode(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	var changes []Change
	fix := func(sec int, x, y, speed float64) {
		ll := c.Proj.Inverse([2]float64{x, y})
		f := record.Fix{VehicleID: "粤B00001", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: float32(speed), HasSpeed: true}
		eng.Reset()
		eng.ProcessFix(&f)
		changes = append(changes, eng.Changes()...)
	}
	// off route (y = 150 m from R1's centreline) and speeding in the 30 zone
	fix(0, 2100, 150, 45)
	fix(10, 2200, 150, 45)
	if len(changes) != 2 {
		t.Fatalf("want route_deviation and speeding open before the reload, got %v", changes)
	}
	reloaded := loadTestCity(t) // a new *City, as the watcher swaps in
	eng.SetCity(reloaded)
	c = reloaded
	fix(20, 2300, 150, 45)
	fix(30, 2400, 150, 45)
	if len(changes) != 2 {
		t.Fatalf("the reload opened new alerts for the same episodes: %v", changes)
	}
	for sec := 40; sec <= 130; sec += 10 { // back on route at a legal speed for clear_for
		fix(sec, 2500+float64(sec-40)*5, 0, 20)
	}
	if len(changes) != 4 || changes[2].Kind != ChangeResolved || changes[3].Kind != ChangeResolved {
		t.Fatalf("both episodes must resolve once back on route at a legal speed, got %v", changes)
	}
	for _, ch := range changes[2:] {
		if ch.Alert.ID != changes[0].Alert.ID && ch.Alert.ID != changes[1].Alert.ID {
			t.Errorf("resolved alert %s is not one of the alerts opened before the reload", ch.Alert.ID)
		}
	}
}
