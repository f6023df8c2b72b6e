package sim

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

func newTestFleet(t testing.TB, c *city.City) *Fleet {
	t.Helper()
	f, err := NewFleet(c, FleetOptions{Seed: 3, At: time.Date(2026, 6, 1, 10, 0, 0, 0, c.Location), SpeederEvery: 10, FastKmh: 95})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFleetFixes: the fleet's fixes are valid wire fixes of the city's vehicles, each near a
// route, each vehicle's no farther from its last than its speed allows (no GPS jumps), at the
// speeds asked: the speeders at FastKmh, the rest below every limit.
func TestFleetFixes(t *testing.T) {
	c := loadSample(t)
	f := newTestFleet(t, c)
	if f.Len() != len(c.Vehicles) {
		t.Fatalf("%d vehicles, want the city's %d", f.Len(), len(c.Vehicles))
	}
	dec := record.NewDecoder(record.DecodeConfig{}, city.NormalizePlate)
	t0 := f.Origin().UnixMilli()
	const every = 10_000 // ms
	var b []byte
	for i := range 60 {
		var last orb.Point
		for k := range 40 {
			ts := f.Next(i, t0+int64(k)*every)
			b = f.AppendFix(b[:0], i, ts)
			var fix record.Fix
			if err := dec.DecodeFix(b, time.UnixMilli(ts), &fix); err != nil {
				t.Fatalf("vehicle %d: %v (%s)", i, err, b)
			}
			if fix.VehicleID != f.Plates()[i] || !bytes.Equal(f.Key(i), []byte(fix.VehicleID)) || fix.Time.UnixMilli() != ts {
				t.Fatalf("vehicle %d (%s): fix of %s at %d, want %d: %s", i, f.Plates()[i], fix.VehicleID, fix.Time.UnixMilli(), ts, b)
			}
			speeder := i%10 == 0
			if speeder != (fix.SpeedKmh == 95) || (!speeder && (fix.SpeedKmh < 22 || fix.SpeedKmh > 30)) || fix.Heading < 0 || fix.Heading > 360 {
				t.Fatalf("vehicle %d: speed %g km/h, heading %g: %s", i, fix.SpeedKmh, fix.Heading, b)
			}
			xy := c.Proj.Forward(orb.Point{fix.Lon, fix.Lat})
			near := math.Inf(1)
			for _, r := range c.Routes {
				near = min(near, r.Corridor.Distance(xy))
			}
			if near > 20 { // 3 m of noise, σ
				t.Fatalf("vehicle %d at %v: %.0f m from every route", i, xy, near)
			}
			if k > 0 {
				if d := math.Hypot(xy[0]-last[0], xy[1]-last[1]); d > float64(fix.SpeedKmh)/3.6*every/1000+20 {
					t.Fatalf("vehicle %d jumped %.0f m in %d s at %g km/h", i, d, every/1000, fix.SpeedKmh)
				}
			}
			last = xy
		}
	}
}

// TestFleetDeterministic: two fleets built alike drive alike, which is what lets the bench's
// terminals' process drive on the fleet that produced the backlog; device times only move
// forward; SpeedLater starts the late speeders.
func TestFleetDeterministic(t *testing.T) {
	c := loadSample(t)
	a, b := newTestFleet(t, c), newTestFleet(t, c)
	t0 := a.Origin().UnixMilli()
	for i := range a.Len() {
		if x, y := a.AppendFix(nil, i, t0+5000), b.AppendFix(nil, i, t0+5000); !bytes.Equal(x, y) {
			t.Fatalf("vehicle %d: %s, then %s", i, x, y)
		}
	}
	if n := a.Next(0, t0); a.Next(0, t0) != n+1 || a.LastFix() != n+1 {
		t.Errorf("two fixes asked for the same time: not strictly after each other (last %d)", a.LastFix())
	}
	a.ResumeAt(t0 + 60_000)
	if got := a.Next(3, t0); got != t0+60_000 {
		t.Errorf("after ResumeAt, the next fix is at %d, want %d", got, t0+60_000)
	}
	a.SpeedLater(t0+60_000, 0)
	dec := record.NewDecoder(record.DecodeConfig{}, city.NormalizePlate)
	for i, speeds := range map[int]bool{5: true, 15: true, 6: false} {
		var fix record.Fix
		ts := t0 + 61_000
		if err := dec.DecodeFix(a.AppendFix(nil, i, ts), time.UnixMilli(ts), &fix); err != nil {
			t.Fatal(err)
		}
		if speeds != (fix.SpeedKmh == 95) {
			t.Errorf("vehicle %d after SpeedLater: %g km/h", i, fix.SpeedKmh)
		}
	}
}

// TestFleetAppendFixAllocs: a fix is written into the caller's buffer without allocating.
func TestFleetAppendFixAllocs(t *testing.T) {
	f := newTestFleet(t, loadSample(t))
	b := make([]byte, 0, 512)
	ts := f.Origin().UnixMilli()
	if n := testing.AllocsPerRun(1000, func() { ts += 10; b = f.AppendFix(b[:0], 7, ts) }); n != 0 {
		t.Errorf("AppendFix allocates %g times a fix", n)
	}
}

// TestNewFleetRefuses: a city without routes or without vehicles has no fleet to drive.
func TestNewFleetRefuses(t *testing.T) {
	c := loadSample(t)
	for name, empty := range map[string]*city.City{"routes": {Vehicles: c.Vehicles}, "vehicles": {Routes: c.Routes}} {
		if _, err := NewFleet(empty, FleetOptions{}); err == nil || !strings.Contains(err.Error(), "no "+name) {
			t.Errorf("a city without %s: %v", name, err)
		}
	}
}
