package city

import (
	"testing"
	"time"
)

// everyLayout is how a permit time reads when every layout is tried in turn: what
// ParsePermitTime must give, choosing the one layout that can match.
func everyLayout(s string, loc *time.Location) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

var permitTimes = []string{
	"2026-01-01T08:00:00+08:00", "2026-01-01T08:00:00Z", "2026-01-01T08:00:00.250+08:00", "2026-01-01T8:00:00+08:00",
	"2026-01-01 08:00", "2026-01-01 8:00", "2026-01-01 08:00:30", "2026-01-01T08:00", "2026-01-01T08:00:30", "2026-01-01",
	"2026-01-01 08:00:00+08:00", "2026-01-01T08:00:00+0800", "2026-01-01T08", "2026-01-01 ", "2026-1-01", "2026/01/01",
	"2026-01-01 08:00 ", "2026-01-01t08:00", "", "T", "2026-02-30", "2026-01-01 24:00", "2026-01-01T08:00:00+08:00:00",
}

// TestParsePermitTime: each layout is tried only where it can match, and what parses, and to
// what, is what trying every layout gives.
func TestParsePermitTime(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	for _, s := range permitTimes {
		want, ok := everyLayout(s, loc)
		got, err := ParsePermitTime(s, loc)
		switch {
		case ok && err != nil:
			t.Errorf("%q: %v, want %s", s, err, want)
		case !ok && err == nil:
			t.Errorf("%q parsed as %s; no layout reads it", s, got)
		case ok && !got.Equal(want):
			t.Errorf("%q = %s, want %s", s, got, want)
		}
	}
	if got, err := ParsePermitTime("2026-01-01 08:00", loc); err != nil || !got.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("local 08:00 in UTC+8 = %s, %v; want 00:00 UTC", got, err)
	}
}

func FuzzParsePermitTime(f *testing.F) {
	for _, s := range permitTimes {
		f.Add(s)
	}
	loc := time.FixedZone("CST", 8*3600)
	f.Fuzz(func(t *testing.T, s string) {
		want, ok := everyLayout(s, loc)
		got, err := ParsePermitTime(s, loc)
		if ok != (err == nil) || (ok && !got.Equal(want)) {
			t.Fatalf("%q = %s, %v; trying every layout gives %s, %v", s, got, err, want, ok)
		}
	})
}

// BenchmarkParsePermitTime is a permit time as the sample city writes them (local, to the
// minute).
func BenchmarkParsePermitTime(b *testing.B) {
	loc := time.FixedZone("CST", 8*3600)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePermitTime("2026-12-07 06:00", loc); err != nil {
			b.Fatal(err)
		}
	}
}
