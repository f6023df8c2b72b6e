package sim

import (
	"fmt"
	"time"
)

// PastStart is the latest day's clock time hhmm (in loc) from which a span of d ends at least an
// hour before now: a fixed time of day makes runs comparable (rush hours, zones' closed hours).
func PastStart(now time.Time, hhmm string, d time.Duration, loc *time.Location) (time.Time, error) {
	tod, err := time.Parse("15:04", hhmm)
	if err != nil {
		return time.Time{}, fmt.Errorf("the start must be a time of day HH:MM, got %q", hhmm)
	}
	latest := now.Add(-d - time.Hour).In(loc)
	start := time.Date(latest.Year(), latest.Month(), latest.Day(), tod.Hour(), tod.Minute(), 0, 0, loc)
	if start.After(latest) {
		start = start.AddDate(0, 0, -1)
	}
	return start, nil
}
