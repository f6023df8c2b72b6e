package sim

import (
	"testing"
	"time"
)

func TestPastStart(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		now  string // UTC
		hhmm string
		d    time.Duration
		want string // Shanghai
	}{
		{"2026-11-23T09:00:00Z", "06:00", 6 * time.Hour, "2026-11-23T06:00:00+08:00"}, // 17:00 local: today's 06:00–12:00 is past
		{"2026-11-23T03:00:00Z", "06:00", 6 * time.Hour, "2026-11-22T06:00:00+08:00"}, // 11:00 local: yesterday's
		{"2026-11-23T03:00:00Z", "06:00", 24 * time.Hour, "2026-11-22T06:00:00+08:00"},
		{"2026-11-23T16:30:00Z", "22:00", 2 * time.Hour, "2026-11-22T22:00:00+08:00"}, // 00:30 local: 22:00–00:00 is not an hour past
	}
	for _, tc := range tests {
		now, _ := time.Parse(time.RFC3339, tc.now)
		got, err := PastStart(now, tc.hhmm, tc.d, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := time.Parse(time.RFC3339, tc.want); !got.Equal(want) || got.Add(tc.d).After(now) {
			t.Errorf("PastStart(%s, %s, %s) = %s, want %s", tc.now, tc.hhmm, tc.d, got, tc.want)
		}
	}
	if _, err := PastStart(time.Now(), "6am", time.Hour, shanghai); err == nil {
		t.Error("a malformed time of day is accepted")
	}
}
