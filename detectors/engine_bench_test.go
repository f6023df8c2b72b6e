package detectors

import (
	"fmt"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/ingest"
)

// BenchmarkEngineProcessFix runs every fix rule over a fleet driving along the test city's route:
// the per-fix cost of detection (spatial lookups included) in steady state.
func BenchmarkEngineProcessFix(b *testing.B) {
	c := loadTestCity(b)
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	const vehicles = 1000
	plates := make([]string, vehicles)
	for i := range plates {
		plates[i] = fmt.Sprintf("粤B%05d", i)
	}
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	fix := ingest.Fix{HasSpeed: true, SpeedKmh: 30}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v := i % vehicles
		step := i / vehicles
		x := float64(step%1000) * 8
		ll := c.Proj.Inverse([2]float64{x, float64(v % 40)})
		fix.VehicleID = plates[v]
		fix.Time = start.Add(time.Duration(step) * time.Second)
		fix.Lat, fix.Lon = ll[1], ll[0]
		eng.ProcessFix(&fix)
		if len(eng.out) > 1024 {
			eng.Reset()
		}
		i++
	}
}
