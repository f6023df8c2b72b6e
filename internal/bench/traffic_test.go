package bench

import (
	"testing"
	"time"
)

// TestDeviceStart: the backlog's device time starts at the asked local time of day on the
// latest weekday that leaves room for it before now, in the city's zone.
func TestDeviceStart(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, sh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		now  string
		span time.Duration
		at   string
		want string // empty: an error
	}{
		{"2026-12-04 09:17", 200 * time.Second, "10:00", "2026-12-03 10:00"}, // Friday morning: Thursday's
		{"2026-12-04 10:30", 200 * time.Second, "10:00", "2026-12-04 10:00"}, // Friday, room after 10:00
		{"2026-12-04 10:03", 200 * time.Second, "10:00", "2026-12-03 10:00"}, // not room for the span plus a minute
		{"2026-12-06 12:00", 200 * time.Second, "10:00", "2026-12-04 10:00"}, // Sunday: Friday's
		{"2026-12-07 08:00", 200 * time.Second, "08:00", "2026-12-04 08:00"}, // Monday before 08:04: Friday's
		{"2026-12-07 23:59", 2 * time.Hour, "22:00", "2026-12-04 22:00"},     // 22:00 + 2h is past now
		{"2026-12-04 09:17", 200 * time.Second, "now", "2026-12-04 09:13"},   // now − span − a minute, to the second
		{"2026-12-07 09:00", 132 * time.Hour, "23:00", ""},                   // would start over 6 days back
		{"2026-12-04 09:17", 200 * time.Second, "9am", ""},
	} {
		got, err := deviceStart(at(tc.now), tc.span, tc.at, sh)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("now %s, span %s, at %s: %s, want an error", tc.now, tc.span, tc.at, got)
		case tc.want != "" && err != nil:
			t.Errorf("now %s, span %s, at %s: %v", tc.now, tc.span, tc.at, err)
		case tc.want != "" && tc.at != "now" && !got.Equal(at(tc.want)):
			t.Errorf("now %s, span %s, at %s: starts %s, want %s", tc.now, tc.span, tc.at, got.In(sh), tc.want)
		case tc.at == "now" && !got.Equal(at(tc.now).Add(-tc.span-time.Minute)):
			t.Errorf("now %s, span %s, at now: starts %s, want %s before now", tc.now, tc.span, got.In(sh), tc.span+time.Minute)
		}
	}
}
