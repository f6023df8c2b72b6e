package detectors

import (
	"slices"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/record"
)

// TestEventWindowClosesAtWatermark: a camera episode (spillage) ends once its window has passed
// for the truck's fixes and for event time. When the truck's fixes past the window are read while
// a lagging input holds the watermark back, the watermark closes it once it gets there, not the
// truck's next fix (it may send none): the same change, at the window's end, as an engine that
// read everything at once gives. The pipeline's equivalence test found it open for good.
func TestEventWindowClosesAtWatermark(t *testing.T) {
	c := loadTestCity(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC) // 10:00 in the city
	const plate = "粤B00001"
	ll := c.Proj.Inverse(orb.Point{1000, 0})
	spill := record.Event{EventID: "s1", VehicleID: plate, Time: start.Add(time.Minute), Kind: record.ParseEventKind("spillage"),
		Source: "cam", Lat: ll[1], Lon: ll[0], HasPos: true, Confidence: 0.9}
	var fixes []record.Fix
	for at := time.Duration(0); at <= 35*time.Minute; at += time.Minute {
		p := c.Proj.Inverse(orb.Point{1000 + float64(at/time.Minute)*300, 0}) // 18 km/h along R1
		fixes = append(fixes, record.Fix{VehicleID: plate, Time: start.Add(at), Lat: p[1], Lon: p[0], SpeedKmh: 18, HasSpeed: true})
	}
	end := start.Add(2 * time.Hour)
	window := Config{}.WithDefaults().Rules.Spillage.Timing.Window

	// everything at once, event time complete
	once, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	once.Advance(end)
	once.ProcessBatch(slices.Clone(fixes), []record.Event{spill})
	once.Tick()
	want := resolutions(once.Changes(), RuleSpillage)

	// the truck's fixes read while another input holds event time at 10:05
	held, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	held.Advance(start.Add(5 * time.Minute))
	held.ProcessBatch(slices.Clone(fixes), []record.Event{spill})
	if got := resolutions(held.Changes(), RuleSpillage); len(got) != 0 {
		t.Fatalf("resolved before event time passed the window: %v", got)
	}
	held.Reset()
	held.Advance(end)
	held.Tick()
	got := resolutions(held.Changes(), RuleSpillage)
	if len(want) != 1 || !want[0].Equal(spill.Time.Add(window)) {
		t.Fatalf("read at once: spillage resolved at %v, want once at %v", want, spill.Time.Add(window))
	}
	if !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("with event time held back: spillage resolved at %v, want %v", got, want)
	}
}

// resolutions are the times the alerts of rule were resolved at.
func resolutions(changes []Change, rule Rule) []time.Time {
	var out []time.Time
	for _, ch := range changes {
		if ch.Alert.Rule == rule && ch.Kind == ChangeResolved {
			out = append(out, ch.Alert.Updated)
		}
	}
	return out
}
