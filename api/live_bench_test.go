package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// BenchmarkLiveObserve is the live view taking in the positions of a written batch, per fix, at
// 100,000 trucks: found by their plate numbers (the decoder's, as in the pipeline) or, without
// them, by plate.
func BenchmarkLiveObserve(b *testing.B) {
	const vehicles, batch = 100_000, 2_000
	plates := make([]string, vehicles)
	for i := range plates {
		plates[i] = fmt.Sprintf("粤B%05d", i)
	}
	for _, numbered := range []bool{true, false} {
		b.Run(fmt.Sprintf("numbered=%v", numbered), func(b *testing.B) {
			l, now := testLive()
			fixes := make([]record.Fix, batch)
			next := 0
			fill := func(round int) {
				for k := range fixes {
					i := (next + k*7919) % vehicles // spread over the fleet, as partitions interleave
					fixes[k] = record.Fix{VehicleID: plates[i], Time: now.Add(time.Duration(round) * time.Second), Lat: 22.5, Lon: 114}
					if numbered {
						fixes[k].VehicleNo = uint32(i + 1)
					}
				}
				next += batch
			}
			for round := range vehicles / batch { // every truck seen once before timing
				fill(round)
				l.Observe(fixes, nil, nil)
			}
			round := vehicles / batch
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				fill(round)
				round++
				b.StartTimer()
				l.Observe(fixes, nil, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/fix")
		})
	}
}

// BenchmarkCheckOverdueLadder is the API's once-a-second overdue and escalation check with 10,000
// open alerts, all overdue and, with a ladder, at its first level and not yet due for the next:
// the cost of a quiet second in a backlogged city, with and without the ladder.
func BenchmarkCheckOverdueLadder(b *testing.B) {
	const alerts = 10_000
	for _, tc := range []struct {
		name   string
		levels []EscalationLevel
	}{{"no-ladder", nil}, {"two-levels", twoLevels}} {
		b.Run(tc.name, func(b *testing.B) {
			l, now := ladderLive(tc.levels)
			start := *now
			changes := make([]detectors.Change, alerts)
			for i := range changes {
				changes[i] = change(detectors.ChangeOpened, fmt.Sprintf("a%05d", i), fmt.Sprintf("粤B%05d", i), detectors.SeverityWarning, detectors.StatusOpen, 1, start)
			}
			l.Observe(nil, nil, changes)
			*now = start.Add(45 * time.Minute) // overdue (30 min) and level 1 (40 min) taken; level 2 at 60 min
			if got, want := len(l.CheckOverdue()), alerts*(1+min(len(tc.levels), 1)); got != want {
				b.Fatalf("%d items, want %d", got, want)
			}
			b.ReportAllocs()
			for b.Loop() {
				if len(l.CheckOverdue()) != 0 {
					b.Fatal("a quiet check published")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*alerts), "ns/alert")
		})
	}
}
