package detectors

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// BenchmarkEngineProcessFix runs every fix rule over a fleet driving along the test city's route:
// the per-fix cost of detection (spatial lookups included) in steady state.
func BenchmarkEngineProcessFix(b *testing.B) {
	fleet := newBenchFleetFixes(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		fleet.process(fleet.i%fleet.vehicles, false)
	}
}

// benchFleetFixes drives a fleet along the test city's route, one fix at a time: vehicle v's
// fix of step s is at 8 m a step along the road, v % 40 m off it, a second after its last.
type benchFleetFixes struct {
	eng      *Engine
	c        *city.City
	plates   []string
	vehicles int
	fix      record.Fix
	i        int // fixes processed
}

func newBenchFleetFixes(b *testing.B, vehicles int) *benchFleetFixes {
	c, eng := loadTestEngine(b)
	f := &benchFleetFixes{eng: eng, c: c, plates: make([]string, vehicles), vehicles: vehicles, fix: record.Fix{HasSpeed: true, SpeedKmh: 30}}
	for i := range f.plates {
		f.plates[i] = fmt.Sprintf("粤B%05d", i)
	}
	return f
}

// process runs the engine over vehicle v's next fix (step: how many fixes the fleet has had,
// over its size), with its plate number when numbered.
func (f *benchFleetFixes) process(v int, numbered bool) {
	f.fix = f.next(v, numbered)
	f.eng.ProcessFix(&f.fix)
	if len(f.eng.out) > 1024 {
		f.eng.Reset()
	}
}

// next returns vehicle v's next fix.
func (f *benchFleetFixes) next(v int, numbered bool) record.Fix {
	step := f.i / f.vehicles
	ll := f.c.Proj.Inverse([2]float64{float64(step%1000) * 8, float64(v % 40)})
	fix := f.fix
	fix.VehicleID, fix.VehicleNo = f.plates[v], 0
	if numbered {
		fix.VehicleNo = uint32(v + 1)
	}
	fix.Time = benchFleetStart.Add(time.Duration(step) * time.Second)
	fix.Lat, fix.Lon = ll[1], ll[0]
	f.i++
	return fix
}

var benchFleetStart = time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)

// BenchmarkRule measures each rule's judgement alone, per observation: a truck on the test city's
// route (fix rules, with the sites and zones the engine would have looked up) or a camera event
// (event rules). Every rule is registered in rules.go; a new one gets its sub-benchmark here.
func BenchmarkRule(b *testing.B) {
	c, eng := loadTestEngine(b)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	obs := func(sec int, x, y float64) Observation {
		xy := [2]float64{x, y}
		o := Observation{Time: start.Add(time.Duration(sec) * time.Second), XY: xy, LL: c.Proj.Inverse(xy), SpeedKmh: 45, Reported: true,
			Vehicle: c.Vehicle("粤B00001"), Permit: c.ActivePermit("粤B00001", start)}
		o.Sites = c.SitesAt(o.XY, nil)
		o.Zones = c.ZonesAt(o.XY, nil)
		return o
	}
	prev, cur := obs(0, 2100, 150), obs(10, 2200, 150)
	tr := eng.track("粤B00001")
	for _, fe := range eng.fixes {
		b.Run(string(fe.rule.Name()), func(b *testing.B) {
			var ep Episode
			b.ReportAllocs()
			for b.Loop() {
				fe.rule.Judge(c, &prev, &cur, &ep)
			}
		})
	}
	// restricted_zone above runs at 10:00, outside Z1's closed hours: judged without the zone
	// tests; here the same fixes at 08:00, when Z1 is closed
	prevClosed, curClosed := prev, cur
	prevClosed.Time, curClosed.Time = prev.Time.Add(-2*time.Hour), cur.Time.Add(-2*time.Hour)
	b.Run("restricted_zone/closed_hours", func(b *testing.B) {
		r := &RestrictedZone{cfg: RestrictedZoneConfig{}.withDefaults()}
		if !c.AnyZoneClosedAt(curClosed.Time) {
			b.Fatal("no zone of the test city is closed at 08:00")
		}
		var ep Episode
		b.ReportAllocs()
		for b.Loop() {
			r.Judge(c, &prevClosed, &curClosed, &ep)
		}
	})
	// speeding at a speed within the city's lowest limit: judged without the zone lookups
	slow := cur
	slow.SpeedKmh = c.LowestSpeedLimitKmh() - 5
	b.Run("speeding/within_lowest_limit", func(b *testing.B) {
		r := &Speeding{cfg: SpeedingConfig{}.withDefaults()}
		var ep Episode
		b.ReportAllocs()
		for b.Loop() {
			r.Judge(c, &prev, &slow, &ep)
		}
	})
	ev := record.Event{EventID: "e-1", VehicleID: "粤B00001", Time: start, Kind: record.KindWeigh, Source: "ws-1", LoadKg: 52000, HasLoad: true}
	for _, ee := range eng.events {
		b.Run(string(ee.rule.Name()), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ee.rule.JudgeEvent(c, tr, &ev)
			}
		})
	}
}

// BenchmarkTrackMemory reports the live heap per tracked vehicle: 100,000 trucks driving along
// the test city's route (every rule registered, some of them off route or speeding), measured
// after a collection. b.N is ignored beyond running the measurement.
func BenchmarkTrackMemory(b *testing.B) {
	c := loadTestCity(b)
	const vehicles = 100_000
	plates := make([]string, vehicles)
	for i := range plates {
		plates[i] = fmt.Sprintf("粤B%06d", i)
	}
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		eng, err := NewEngine(Config{}, c, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		for step := range 5 {
			for v, plate := range plates {
				ll := c.Proj.Inverse([2]float64{float64(v%500)*10 + float64(step)*80, float64(v % 60)})
				fix := record.Fix{VehicleID: plate, Time: start.Add(time.Duration(step*10+v%10) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 30 + float32(v%30), HasSpeed: true}
				eng.ProcessFix(&fix)
			}
			eng.Reset()
			eng.Dirty(nil, func(string, record.Shard, []byte) {})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/vehicles, "bytes/vehicle")
		runtime.KeepAlive(eng)
	}
}

// BenchmarkEngineProcessFixFleet is BenchmarkEngineProcessFix at 100,000 trucks, visited in an
// order spread over the fleet (as the partitions interleave): the track found by the fix's
// plate number (the decoder's, as in the pipeline) or, without one, by plate. Every track
// exists before the timing starts.
func BenchmarkEngineProcessFixFleet(b *testing.B) {
	for _, numbered := range []bool{true, false} {
		b.Run(fmt.Sprintf("numbered=%v", numbered), func(b *testing.B) {
			fleet := newBenchFleetFixes(b, 100_000)
			next := func() int { return (fleet.i * 7919) % fleet.vehicles } // a permutation of the fleet every 100,000 fixes
			for range fleet.vehicles {
				fleet.process(next(), numbered)
			}
			b.ReportAllocs()
			for b.Loop() {
				fleet.process(next(), numbered)
			}
		})
	}
}

// BenchmarkEngineProcessBatchFleet runs the engine over batches of fixes of a fleet of 100,000,
// each vehicle's next fix in a batch in turn, as the consumer hands them: the cost a fix when
// every fix's track is one the caches have not held since its last fix.
func BenchmarkEngineProcessBatchFleet(b *testing.B) {
	const batch = 4096
	fleet := newBenchFleetFixes(b, 100_000)
	fixes := make([]record.Fix, batch)
	run := func() {
		for k := range fixes {
			fixes[k] = fleet.next((fleet.i*7919)%fleet.vehicles, true) // a permutation of the fleet every 100,000 fixes
		}
		fleet.eng.ProcessBatch(fixes, nil)
		fleet.eng.Reset()
	}
	for range fleet.vehicles/batch + 1 {
		run()
	}
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/fix")
}

// BenchmarkTrackPermit measures finding the permit a fix is under, for 100,000 trucks with two
// permits each visited in an order spread over the fleet: scan looks at the truck's permits on
// every fix (city.ActiveAmong, as judgeFix did), span keeps the permit found until the fix time
// leaves the span it holds for (Track.lookUp).
func BenchmarkTrackPermit(b *testing.B) {
	const trucks = 100_000
	c := &city.City{}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tracks := make([]*Track, trucks)
	permits := make([][]*city.Permit, trucks)
	for i := range tracks {
		tracks[i] = &Track{VehicleID: fmt.Sprintf("粤B%05d", i), ref: c}
		permits[i] = []*city.Permit{
			{ID: fmt.Sprintf("P%d-1", i), ValidFrom: start, ValidTo: start.AddDate(0, 6, 0)},
			{ID: fmt.Sprintf("P%d-2", i), ValidFrom: start.AddDate(0, 6, 0), ValidTo: start.AddDate(1, 0, 0)},
		}
	}
	at := start.AddDate(0, 3, 0)
	next := func(i int) int { return (i * 7919) % trucks }
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if city.ActiveAmong(permits[next(i)], at.Add(time.Duration(i))) == nil {
				b.Fatal("no permit")
			}
			i++
		}
	})
	b.Run("span", func(b *testing.B) {
		for i, tr := range tracks { // each truck's span found once, as its first fix does
			p, from, to := city.ActiveSpan(permits[i], at)
			tr.permit, tr.permitFrom, tr.permitTo = p, from.UnixNano(), to.UnixNano()
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, p, _ := tracks[next(i)].lookUp(c, at.Add(time.Duration(i))); p == nil {
				b.Fatal("no permit")
			}
			i++
		}
	})
}
