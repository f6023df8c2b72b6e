package detectors

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/record"
)

// Scenario files (testdata/*.test) drive the engine over the test city in testdata/city and
// list every alert change expected, in order. Lines:
//
//	start 2026-11-23T10:00:00+08:00         the time offsets below count from here
//	fix   OFFSET PLATE X Y [speed=KMH] [lifted]   a fix at X,Y metres east/north of the city origin
//	fixes FROM TO STEP PLATE X0 Y0 X1 Y1 [speed=KMH] [lifted]   fixes every STEP, moving linearly
//	event OFFSET PLATE KIND [site=ID] [load=KG] [cover=open|closed] [conf=C] [source=ID]
//	tick                                   run the time-driven rules at the event-time watermark
//	fixll OFFSET PLATE LAT LON [speed=KMH] [lifted]   a fix at WGS-84 LAT,LON (anywhere on Earth)
//	fixesll FROM TO STEP PLATE LAT0 LON0 LAT1 LON1 [speed=KMH] [lifted]   fixes every STEP, linearly
//	expect OFFSET CHANGE RULE PLATE SEVERITY [end=OFFSET] [place=ID] [at=X,Y] [value=LO..HI]
//	                                       a change with this event time; optionally the alert's end
//	                                       (a resolution decided after clear_for), the place it
//	                                       names, where it is (within 30 m of X,Y metres from the
//	                                       city origin) and its value (between LO and HI)
//
// Offsets are Go durations (0s, 90s, 10m). Adding a case is adding a file.

func loadTestCity(t testing.TB) *city.City {
	t.Helper()
	c, err := city.Load("testdata/city")
	if err != nil {
		t.Fatalf("cannot load the scenario city: %v", err)
	}
	return c
}

// loadTestEngine returns the scenario city and an engine over it with the default config.
func loadTestEngine(tb testing.TB) (*city.City, *Engine) {
	tb.Helper()
	c := loadTestCity(tb)
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		tb.Fatalf("cannot create the engine: %v", err)
	}
	return c, eng
}

type expectation struct {
	at       time.Time
	kind     ChangeKind
	rule     Rule
	plate    string
	severity Severity
	end      time.Time // checked when the expectation names it
	// checked when the expectation names them: the place, the position (city plane, metres) and
	// the value's bounds
	place            string
	xy               orb.Point
	hasXY            bool
	valueLo, valueHi float64
	hasValue         bool
}

func (e expectation) String() string {
	s := fmt.Sprintf("%s %s %s %s %s", e.at.Format("15:04:05"), e.kind, e.rule, e.plate, e.severity)
	if !e.end.IsZero() {
		s += " end=" + e.end.Format("15:04:05")
	}
	if e.place != "" {
		s += " place=" + e.place
	}
	if e.hasXY {
		s += fmt.Sprintf(" at=%.0f,%.0f", e.xy[0], e.xy[1])
	}
	if e.hasValue {
		s += fmt.Sprintf(" value=%.1f..%.1f", e.valueLo, e.valueHi)
	}
	return s
}

// scenarioPositionSlack is how far an alert may be from the position a scenario expects.
const scenarioPositionSlack = 30.0 // metres

// matches reports whether got (a change as it came) meets the expectation want.
func (want expectation) matches(got expectation) bool {
	if !got.at.Equal(want.at) || got.kind != want.kind || got.rule != want.rule || got.plate != want.plate || got.severity != want.severity {
		return false
	}
	if !want.end.IsZero() && !got.end.Equal(want.end) {
		return false
	}
	if want.place != "" && got.place != want.place {
		return false
	}
	if want.hasXY && math.Hypot(got.xy[0]-want.xy[0], got.xy[1]-want.xy[1]) > scenarioPositionSlack {
		return false
	}
	return !want.hasValue || (got.valueLo >= want.valueLo && got.valueLo <= want.valueHi)
}

func runScenario(t *testing.T, path string, c *city.City) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eng, err := NewEngine(Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var start time.Time
	var got, want []expectation
	var newest time.Time // the newest device time fed: "tick" runs the time-driven rules up to it
	collect := func() {
		for _, ch := range eng.Changes() {
			a := &ch.Alert
			got = append(got, expectation{at: a.Updated, kind: ch.Kind, rule: a.Rule, plate: a.VehicleID, severity: a.Severity, end: a.End,
				place: a.Place, xy: c.Proj.Forward(orb.Point{a.Lon, a.Lat}), hasXY: true, valueLo: a.Value, valueHi: a.Value, hasValue: true})
		}
		eng.Reset()
		checkSlots(t, eng)
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		where := fmt.Sprintf("%s:%d", path, n)
		offset := func(s string) time.Time {
			d, err := time.ParseDuration(s)
			if err != nil {
				t.Fatalf("%s: bad offset %q: %v", where, s, err)
			}
			return start.Add(d)
		}
		num := func(s string) float64 {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("%s: bad number %q", where, s)
			}
			return x
		}
		fix := func(at time.Time, plate string, ll orb.Point, opts []string) {
			fx := record.Fix{FixID: plate + at.String(), VehicleID: plate, Time: at, Lat: ll[1], Lon: ll[0]}
			for _, o := range opts {
				k, v, _ := strings.Cut(o, "=")
				switch k {
				case "speed":
					fx.SpeedKmh, fx.HasSpeed = float32(num(v)), true
				case "lifted":
					fx.Lifted = true
				default:
					t.Fatalf("%s: unknown fix option %q", where, o)
				}
			}
			newest = maxTime(newest, fx.Time)
			eng.Advance(newest) // one input, read in order: read up to its newest record
			eng.ProcessFix(&fx)
			collect()
		}
		switch fields[0] {
		case "start":
			if start, err = time.Parse(time.RFC3339, fields[1]); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		case "fix":
			fix(offset(fields[1]), fields[2], c.Proj.Inverse(orb.Point{num(fields[3]), num(fields[4])}), fields[5:])
		case "fixll":
			fix(offset(fields[1]), fields[2], orb.Point{num(fields[4]), num(fields[3])}, fields[5:])
		case "fixes", "fixesll":
			from, to := offset(fields[1]), offset(fields[2])
			step, err := time.ParseDuration(fields[3])
			if err != nil || step <= 0 {
				t.Fatalf("%s: bad step %q", where, fields[3])
			}
			x0, y0, x1, y1 := num(fields[5]), num(fields[6]), num(fields[7]), num(fields[8])
			span := to.Sub(from).Seconds()
			for at := from; !at.After(to); at = at.Add(step) {
				k := 0.0
				if span > 0 {
					k = at.Sub(from).Seconds() / span
				}
				if fields[0] == "fixesll" { // LAT0 LON0 LAT1 LON1
					fix(at, fields[4], orb.Point{y0 + (y1-y0)*k, x0 + (x1-x0)*k}, fields[9:])
					continue
				}
				fix(at, fields[4], c.Proj.Inverse(orb.Point{x0 + (x1-x0)*k, y0 + (y1-y0)*k}), fields[9:])
			}
		case "tick":
			tickTo(eng, newest)
			collect()
		case "event":
			ev := record.Event{EventID: where, VehicleID: fields[2], Time: offset(fields[1]), Kind: record.ParseEventKind(fields[3]), Source: "cam", Confidence: 1}
			if ev.Kind == record.KindUnknown {
				t.Fatalf("%s: unknown event kind %q", where, fields[3])
			}
			for _, o := range fields[4:] {
				k, v, _ := strings.Cut(o, "=")
				switch k {
				case "site":
					ev.SiteID = v
				case "load":
					ev.LoadKg, ev.HasLoad = num(v), true
				case "cover":
					ev.HasCover, ev.CoverClosed = true, v == "closed"
				case "conf":
					ev.Confidence = float32(num(v))
				case "source":
					ev.Source = v
				default:
					t.Fatalf("%s: unknown event option %q", where, o)
				}
			}
			newest = maxTime(newest, ev.Time)
			eng.Advance(newest)
			eng.ProcessEvent(&ev)
			collect()
		case "expect":
			if len(fields) < 6 {
				t.Fatalf("%s: expect needs OFFSET CHANGE RULE PLATE SEVERITY [end=OFFSET] [place=ID] [at=X,Y] [value=LO..HI]", where)
			}
			x := expectation{at: offset(fields[1]), kind: ChangeKind(fields[2]), rule: Rule(fields[3]), plate: fields[4], severity: Severity(fields[5])}
			for _, o := range fields[6:] {
				k, v, _ := strings.Cut(o, "=")
				switch k {
				case "end":
					x.end = offset(v)
				case "place":
					x.place = v
				case "at":
					xs, ys, ok := strings.Cut(v, ",")
					if !ok {
						t.Fatalf("%s: at needs X,Y, got %q", where, v)
					}
					x.xy, x.hasXY = orb.Point{num(xs), num(ys)}, true
				case "value":
					lo, hi, ok := strings.Cut(v, "..")
					if !ok {
						hi = lo
					}
					x.valueLo, x.valueHi, x.hasValue = num(lo), num(hi), true
				default:
					t.Fatalf("%s: unknown expect option %q", where, o)
				}
			}
			want = append(want, x)
		default:
			t.Fatalf("%s: unknown directive %q", where, fields[0])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d changes, want %d\n got: %v\nwant: %v", path, len(got), len(want), got, want)
		return
	}
	for i := range want {
		if !want[i].matches(got[i]) {
			t.Errorf("%s: change %d:\n got %v\nwant %v", path, i+1, got[i], want[i])
		}
	}
}

func TestScenarios(t *testing.T) {
	c := loadTestCity(t)
	files, err := filepath.Glob("testdata/*.test")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".test"), func(t *testing.T) { runScenario(t, f, c) })
	}
}

// checkSlots fails unless every track keeps episode slots exactly while one of them holds an
// episode, and muckwatch_episodes counts them.
func checkSlots(t *testing.T, eng *Engine) {
	t.Helper()
	for id, tr := range eng.tracks {
		held := slices.ContainsFunc(tr.episodes, func(ep *Episode) bool { return ep != nil })
		if tr.episodes != nil && !held {
			t.Fatalf("%s keeps %d episode slots that hold nothing", id, len(tr.episodes))
		}
		if tr.episodes != nil && len(tr.episodes) != len(eng.names) {
			t.Fatalf("%s has %d episode slots for %d rules", id, len(tr.episodes), len(eng.names))
		}
	}
	checkEpisodeGauges(t, eng)
}

// TestEpisodeSlots: a truck has episode slots only while a rule keeps an episode for it, and
// loses them once the last one is over.
func TestEpisodeSlots(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC) // 10:00 in the city
	const plate = "粤B00001"                                // permitted on R1, along y = 0
	drive := func(from, to time.Duration, x0, x1 float64, kmh float32) {
		for at := from; at <= to; at += 10 * time.Second {
			x := x0 + (x1-x0)*float64(at-from)/float64(max(to-from, 1))
			ll := c.Proj.Inverse(orb.Point{x, 0})
			eng.ProcessFix(&record.Fix{VehicleID: plate, Time: start.Add(at), Lat: ll[1], Lon: ll[0], SpeedKmh: kmh, HasSpeed: true})
		}
	}
	slots := func() []*Episode { return eng.tracks[plate].episodes }
	drive(0, 20*time.Second, 1700, 1900, 20)
	if s := slots(); s != nil {
		t.Fatalf("a truck within every rule keeps %d episode slots", len(s))
	}
	drive(30*time.Second, 90*time.Second, 2100, 2700, 45) // 45 km/h in the 30 km/h school zone
	if eng.tracks[plate].episodes == nil || !slices.ContainsFunc(slots(), func(ep *Episode) bool { return ep != nil && ep.State() == StateFiring }) {
		t.Fatalf("speeding in the school zone: slots %v, want a firing episode", slots())
	}
	drive(100*time.Second, 200*time.Second, 2800, 3800, 20) // slow again for longer than clear_for
	if s := slots(); s != nil {
		t.Fatalf("the speeding episode is over but the truck keeps its slots %v", s)
	}
	checkSlots(t, eng)
}
