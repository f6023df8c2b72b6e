package sim

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/geo"
)

// TestAway: with AwayRate, trucks leave the city's map on long hauls of 50–300 km and their
// fixes move at their reported speed on the ground wherever they are; the ground truth has what
// the rules make of a haul (off the route, its stop, speeding out there, a trip that reached no
// disposal site in time).
func TestAway(t *testing.T) {
	c := loadSample(t)
	o := Options{Seed: 7, Start: time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC), Duration: 12 * time.Hour, Interval: 10 * time.Second,
		Vehicles: 30, AwayRate: 0.5}
	res, _, recs := run(t, c, o)
	origin := c.Proj.Origin()
	type fix struct {
		ll    orb.Point
		at    time.Time
		speed float64
	}
	last := map[string]fix{}
	farthest, checked := 0.0, 0
	for _, r := range recs {
		if r.Topic != "gps" {
			continue
		}
		var w struct {
			Lat, Lon float64
			Speed    float64 `json:"speed_kmh"`
		}
		if err := json.Unmarshal(r.Value, &w); err != nil {
			t.Fatal(err)
		}
		f := fix{orb.Point{w.Lon, w.Lat}, r.Time, w.Speed}
		farthest = math.Max(farthest, geo.DistanceM(origin, f.ll))
		if p, ok := last[r.Key]; ok && geo.DistanceM(origin, f.ll) > 50_000 && f.speed > 20 && math.Abs(f.speed-p.speed) < 0.5 {
			// a steady speed off the map: the ground covered is the speed's (no noise here)
			got := geo.DistanceM(p.ll, f.ll) / f.at.Sub(p.at).Seconds() * 3.6
			if math.Abs(got-f.speed) > 0.02*f.speed {
				t.Errorf("%s at %s, %.0f km out: moved at %.1f km/h on the ground, reports %.1f", r.Key, r.Time.Format(time.TimeOnly), geo.DistanceM(origin, f.ll)/1000, got, f.speed)
			}
			checked++
		}
		last[r.Key] = f
	}
	if farthest < 100_000 || checked < 100 {
		t.Errorf("the hauls went at most %.0f km out, %d fix pairs checked off the map: want trucks over 100 km out", farthest/1000, checked)
	}
	notes := map[string]int{}
	for _, ep := range res.Truth {
		switch ep.Note {
		case "long haul off the city's map", "stopped off the map, at another city's site", "long haul off the map: no disposal site in time":
			notes[ep.Rule+": "+ep.Note]++
		}
	}
	for _, want := range []string{"route_deviation: long haul off the city's map", "dwell: stopped off the map, at another city's site",
		"trip_unclosed: long haul off the map: no disposal site in time"} {
		if notes[want] == 0 {
			t.Errorf("no %q in the ground truth: %v", want, notes)
		}
	}
	t.Logf("farthest %.0f km; %d fix pairs checked; %v", farthest/1000, checked, notes)
}
