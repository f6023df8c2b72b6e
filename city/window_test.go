package city

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func days(ds ...time.Weekday) [7]bool {
	var d [7]bool
	for _, x := range ds {
		d[x] = true
	}
	return d
}

var allDays = [7]bool{true, true, true, true, true, true, true}

var parseWindowCases = []struct {
	in   string
	want Window
	str  string // String() of the result
	err  string // substring of the error; "" for success
}{
	{in: "daily 07:00-09:00", want: Window{allDays, 420, 540}, str: "daily 07:00-09:00"},
	{in: "mon-fri 17:00-19:30", want: Window{days(1, 2, 3, 4, 5), 1020, 1170}, str: "mon-fri 17:00-19:30"},
	{in: "sat,sun 22:00-06:00", want: Window{days(0, 6), 1320, 360}, str: "sat,sun 22:00-06:00"},
	{in: "  Mon-Fri  7:00 - 9:00 ", want: Window{days(1, 2, 3, 4, 5), 420, 540}, str: "mon-fri 07:00-09:00"},
	{in: "mon,wed-fri 07:30-09:00", want: Window{days(1, 3, 4, 5), 450, 540}, str: "mon,wed-fri 07:30-09:00"},
	{in: "fri-mon 22:00-06:00", want: Window{days(5, 6, 0, 1), 1320, 360}, str: "mon,fri-sun 22:00-06:00"},
	{in: "sun 00:00-24:00", want: Window{days(0), 0, 1440}, str: "sun 00:00-24:00"},
	{in: "mon-sun 23:59-00:00", want: Window{allDays, 1439, 0}, str: "daily 23:59-00:00"},
	{in: "sat, sun 10:00-12:00", want: Window{days(0, 6), 600, 720}, str: "sat,sun 10:00-12:00"},
	{in: "tue,tue 10:00-12:00", want: Window{days(2), 600, 720}, str: "tue 10:00-12:00"},
	{in: "07:00-09:00", err: "missing days"},
	{in: "daily", err: "missing time range"},
	{in: "", err: "missing time range"},
	{in: "mon-fry 07:00-09:00", err: `unknown day "fry"`},
	{in: "daily,mon 07:00-09:00", err: `"daily" cannot be combined`},
	{in: "mon,,tue 07:00-09:00", err: "empty item"},
	{in: "daily 07:00", err: "want start-end"},
	{in: "daily 7-9", err: "want HH:MM"},
	{in: "daily 07:60-09:00", err: "out of range"},
	{in: "daily 25:00-09:00", err: "out of range"},
	{in: "daily 24:00-09:00", err: "start"},
	{in: "daily 07:00-24:01", err: "out of range"},
	{in: "daily 07:00-07:00", err: "ambiguous"},
	{in: "daily 07:00-+9:00", err: "want HH:MM"},
	{in: "daily 07:00-09:00-10:00", err: "want HH:MM"},
}

func TestParseWindow(t *testing.T) {
	for _, tc := range parseWindowCases {
		t.Run(tc.in, func(t *testing.T) {
			w, err := ParseWindow(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseWindow(%q) = %v, %v; want error containing %q", tc.in, w, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWindow(%q): %v", tc.in, err)
			}
			if w != tc.want {
				t.Errorf("ParseWindow(%q) = %+v, want %+v", tc.in, w, tc.want)
			}
			if s := w.String(); s != tc.str {
				t.Errorf("String() = %q, want %q", s, tc.str)
			}
			back, err := ParseWindow(w.String())
			if err != nil || back != w {
				t.Errorf("ParseWindow(String()) = %+v, %v; want %+v", back, err, w)
			}
		})
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, tc := range parseWindowCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWindow(s)
		if err != nil {
			return
		}
		if w.StartMin < 0 || w.StartMin >= 1440 || w.EndMin < 0 || w.EndMin > 1440 || w.StartMin == w.EndMin {
			t.Fatalf("ParseWindow(%q) = %+v: out of range", s, w)
		}
		if w.Days == ([7]bool{}) {
			t.Fatalf("ParseWindow(%q) = %+v: no days", s, w)
		}
		str := w.String()
		back, err := ParseWindow(str)
		if err != nil {
			t.Fatalf("ParseWindow(%q).String() = %q does not parse: %v", s, str, err)
		}
		if back != w || back.String() != str {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v", s, w, str, back)
		}
		for day := time.Sunday; day <= time.Saturday; day++ {
			for _, m := range []int{0, w.StartMin, w.EndMin - 1, 1439} {
				if m >= 0 && m < 1440 {
					_ = w.Covers(day, m)
				}
			}
		}
	})
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestClosedAt(t *testing.T) {
	sh := mustLoc(t, "Asia/Shanghai")
	ny := mustLoc(t, "America/New_York")
	mk := func(ws ...string) *Zone {
		z := &Zone{ID: "Z", Kind: ZoneRestricted}
		for _, s := range ws {
			w, err := ParseWindow(s)
			if err != nil {
				t.Fatal(err)
			}
			z.Closed = append(z.Closed, w)
		}
		return z
	}
	school := mk("mon-fri 07:00-09:00", "mon-fri 17:00-19:30")
	night := mk("fri 22:00-06:00")
	weekend := mk("sat,sun 22:00-06:00")
	allDay := mk("sun 00:00-24:00")
	// 2026-01-05 is a Monday; 2026-01-09 a Friday.
	at := func(loc *time.Location, day, h, m, s int) time.Time {
		return time.Date(2026, 1, day, h, m, s, 0, loc)
	}
	cases := []struct {
		name string
		z    *Zone
		t    time.Time
		loc  *time.Location
		want bool
	}{
		{"school monday 06:59:59", school, at(sh, 5, 6, 59, 59), sh, false},
		{"school monday 07:00", school, at(sh, 5, 7, 0, 0), sh, true},
		{"school monday 08:59:59", school, at(sh, 5, 8, 59, 59), sh, true},
		{"school monday 09:00 end is exclusive", school, at(sh, 5, 9, 0, 0), sh, false},
		{"school monday 19:29", school, at(sh, 5, 19, 29, 0), sh, true},
		{"school saturday 07:30", school, at(sh, 10, 7, 30, 0), sh, false},
		{"school friday 08:00", school, at(sh, 9, 8, 0, 0), sh, true},
		{"utc instant read in shanghai", school, time.Date(2026, 1, 5, 0, 30, 0, 0, time.UTC), sh, true}, // 08:30 CST
		{"utc instant read in utc", school, time.Date(2026, 1, 5, 0, 30, 0, 0, time.UTC), nil, false},
		{"night friday 21:59", night, at(sh, 9, 21, 59, 0), sh, false},
		{"night friday 22:00", night, at(sh, 9, 22, 0, 0), sh, true},
		{"night friday 23:59", night, at(sh, 9, 23, 59, 59), sh, true},
		{"night saturday 00:00", night, at(sh, 10, 0, 0, 0), sh, true},
		{"night saturday 05:59", night, at(sh, 10, 5, 59, 0), sh, true},
		{"night saturday 06:00", night, at(sh, 10, 6, 0, 0), sh, false},
		{"night saturday 22:30 not a start day", night, at(sh, 10, 22, 30, 0), sh, false},
		{"night friday 03:00 belongs to thursday", night, at(sh, 9, 3, 0, 0), sh, false},
		{"weekend sunday 23:00", weekend, at(sh, 11, 23, 0, 0), sh, true},
		{"weekend monday 05:00 from sunday", weekend, at(sh, 12, 5, 0, 0), sh, true},
		{"weekend saturday 05:00 from friday: no", weekend, at(sh, 10, 5, 0, 0), sh, false},
		{"weekend sunday 05:00 from saturday", weekend, at(sh, 11, 5, 0, 0), sh, true},
		{"all sunday 00:00", allDay, at(sh, 11, 0, 0, 0), sh, true},
		{"all sunday 23:59:59", allDay, at(sh, 11, 23, 59, 59), sh, true},
		{"all monday 00:00", allDay, at(sh, 12, 0, 0, 0), sh, false},
		{"all saturday 23:59", allDay, at(sh, 10, 23, 59, 0), sh, false},
		// New York: 2026-03-08 02:00 EST jumps to 03:00 EDT; 2026-11-01 02:00 EDT falls back to 01:00 EST.
		{"new york wall clock on a DST morning", mk("sun 07:00-09:00"), time.Date(2026, 3, 8, 12, 30, 0, 0, time.UTC), ny, true}, // 08:30 EDT
		{"new york 11:30 UTC is 07:30 EDT after spring forward", mk("sun 07:00-09:00"), time.Date(2026, 3, 8, 11, 30, 0, 0, time.UTC), ny, true},
		{"new york 11:30 UTC is 06:30 EST a week before", mk("sun 07:00-09:00"), time.Date(2026, 3, 1, 11, 30, 0, 0, time.UTC), ny, false},
		{"new york 07:30 EST a week before", mk("sun 07:00-09:00"), time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC), ny, true},    // 07:30 EST
		{"new york night across spring forward", mk("sat 22:00-06:00"), time.Date(2026, 3, 8, 9, 30, 0, 0, time.UTC), ny, true}, // 05:30 EDT Sun
		{"new york night ends at 06:00 EDT", mk("sat 22:00-06:00"), time.Date(2026, 3, 8, 10, 0, 0, 0, time.UTC), ny, false},    // 06:00 EDT
		{"new york fall back 01:30 EST (second time)", mk("sun 01:00-02:00"), time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), ny, true},
		{"new york fall back 01:30 EDT (first time)", mk("sun 01:00-02:00"), time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), ny, true},
		{"new york fall back 02:00 EST", mk("sun 01:00-02:00"), time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC), ny, false},
		{"same instant, shanghai reading", mk("sun 01:00-02:00"), time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), sh, false}, // 14:30 CST
		{"speed zone is never closed", &Zone{Kind: ZoneSpeed, Closed: school.Closed}, at(sh, 5, 8, 0, 0), sh, false},
		{"restricted zone without windows", &Zone{Kind: ZoneRestricted}, at(sh, 5, 8, 0, 0), sh, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.z.ClosedAt(tc.t, tc.loc); got != tc.want {
				loc := tc.loc
				if loc == nil {
					loc = tc.t.Location()
				}
				t.Errorf("ClosedAt(%s) = %v, want %v", tc.t.In(loc).Format("Mon 2006-01-02 15:04:05 MST"), got, tc.want)
			}
		})
	}
}

func TestWindowCovers(t *testing.T) {
	w, _ := ParseWindow("fri 22:00-06:00")
	if !w.Covers(time.Friday, 22*60) || !w.Covers(time.Saturday, 0) || w.Covers(time.Saturday, 6*60) || w.Covers(time.Friday, 0) {
		t.Error("Covers disagrees with the window fri 22:00-06:00")
	}
	if !w.CrossesMidnight() {
		t.Error("CrossesMidnight() = false")
	}
	sh := mustLoc(t, "Asia/Shanghai")
	if !w.CoversTime(time.Date(2026, 1, 9, 15, 0, 0, 0, time.UTC), sh) { // Fri 23:00 CST
		t.Error("CoversTime(Fri 23:00 CST) = false")
	}
	if (Window{}).String() != "never 00:00-00:00" {
		t.Errorf("zero Window String() = %q", Window{}.String())
	}
}

// AnyZoneClosedAt agrees with the zones' own ClosedAt at every minute of a week, in the mini
// city and the sample one (windows across midnight, weekday-only and weekend ones), whatever
// location the time is given in; just past a minute's start and just before its end too; and in
// a week before the Unix epoch (negative Unix times).
func TestAnyZoneClosedAt(t *testing.T) {
	for _, dir := range []string{filepath.Join("testdata", "mini"), filepath.Join("..", "configs", "cities", "shenzhen")} {
		c, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		closedSome, openAll := 0, 0
		for wm := range 2 * 7 * 24 * 60 {
			// two weeks from Sunday 00:00: one in 2026, one before the epoch
			start, m := time.Date(2026, 11, 29, 0, 0, 0, 0, c.Location), wm%(7*24*60)
			if wm >= 7*24*60 {
				start = time.Date(1969, 12, 21, 0, 0, 0, 0, c.Location)
			}
			for _, at := range []time.Time{start.Add(time.Duration(m) * time.Minute), start.Add(time.Duration(m)*time.Minute + 59*time.Second).UTC()} {
				want := false
				for _, z := range c.Zones {
					want = want || z.ClosedAt(at, c.Location)
				}
				if got := c.AnyZoneClosedAt(at); got != want {
					t.Fatalf("%s: AnyZoneClosedAt(%s) = %v, the zones say %v", dir, at.In(c.Location).Format("Mon 15:04:05"), got, want)
				}
				if want {
					closedSome++
				} else {
					openAll++
				}
			}
		}
		if closedSome == 0 || openAll == 0 {
			t.Errorf("%s: %d minutes with a zone closed, %d with none: the test needs both", dir, closedSome, openAll)
		}
	}
}
