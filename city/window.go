package city

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is a weekly time window, such as "mon-fri 07:00-09:00" or "daily 22:00-06:00".
//
// Days says on which days the window starts, indexed by time.Weekday. StartMin and EndMin are
// minutes of the day, 0 <= StartMin < 1440 and 0 <= EndMin <= 1440. A window with
// EndMin <= StartMin crosses midnight: "fri 22:00-06:00" covers Friday 22:00 to Saturday 06:00.
// The window covers [start, end): 07:00-09:00 covers 08:59:59 but not 09:00:00.
type Window struct {
	Days             [7]bool
	StartMin, EndMin int
}

// dayNames holds the three-letter day names of the window syntax in time.Weekday order.
const dayNames = "sunmontuewedthufrisat"

// dayName returns the window syntax's name of d.
func dayName(d time.Weekday) string { return dayNames[3*d : 3*d+3] }

// weekOrder returns the i-th day (0..6) in the order days are written: Monday first.
func weekOrder(i int) time.Weekday { return time.Weekday((i + 1) % 7) }

// CrossesMidnight reports whether the window ends on the day after it starts.
func (w Window) CrossesMidnight() bool { return w.EndMin <= w.StartMin }

// Covers reports whether the window covers the local wall-clock time given as a weekday and
// a minute of that day (0..1439).
func (w Window) Covers(day time.Weekday, minute int) bool {
	if !w.CrossesMidnight() {
		return w.Days[day] && minute >= w.StartMin && minute < w.EndMin
	}
	if w.Days[day] && minute >= w.StartMin {
		return true
	}
	return w.Days[(day+6)%7] && minute < w.EndMin
}

// CoversTime reports whether the window covers t, read as wall-clock time in loc (t's own
// location if loc is nil).
func (w Window) CoversTime(t time.Time, loc *time.Location) bool {
	if loc != nil {
		t = t.In(loc)
	}
	return w.Covers(t.Weekday(), t.Hour()*60+t.Minute())
}

// ClosedAt reports whether a restricted zone is closed to muck trucks at t: whether any of its
// windows covers t read as wall-clock time in loc (the city's time zone; t's own location if
// nil). It is false for speed zones.
func (z *Zone) ClosedAt(t time.Time, loc *time.Location) bool {
	if z.Kind != ZoneRestricted || len(z.Closed) == 0 {
		return false
	}
	if loc != nil {
		t = t.In(loc)
	}
	day, minute := t.Weekday(), t.Hour()*60+t.Minute()
	for _, w := range z.Closed {
		if w.Covers(day, minute) {
			return true
		}
	}
	return false
}

// String returns the window in the syntax ParseWindow reads, normalised: days Monday first,
// "daily" for every day, ranges of three or more days as "mon-fri", and zero-padded times,
// e.g. "sat,sun 22:00-06:00".
func (w Window) String() string {
	var b strings.Builder
	b.WriteString(daysString(w.Days))
	b.WriteByte(' ')
	b.WriteString(clock(w.StartMin))
	b.WriteByte('-')
	b.WriteString(clock(w.EndMin))
	return b.String()
}

func daysString(days [7]bool) string {
	all, none := true, true
	for _, d := range days {
		all = all && d
		none = none && !d
	}
	switch {
	case all:
		return "daily"
	case none:
		return "never"
	}
	var parts []string
	for i := 0; i < 7; {
		if !days[weekOrder(i)] {
			i++
			continue
		}
		j := i
		for j+1 < 7 && days[weekOrder(j+1)] {
			j++
		}
		switch j - i {
		case 0:
			parts = append(parts, dayName(weekOrder(i)))
		case 1:
			parts = append(parts, dayName(weekOrder(i)), dayName(weekOrder(j)))
		default:
			parts = append(parts, dayName(weekOrder(i))+"-"+dayName(weekOrder(j)))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func clock(min int) string {
	return fmt.Sprintf("%02d:%02d", min/60, min%60)
}

// ParseWindow parses a weekly window: days, then a time range, e.g. "daily 07:00-09:00",
// "mon-fri 17:00-19:30", "sat,sun 22:00-06:00", "mon,wed-fri 7:30-9:00".
//
// Days are mon tue wed thu fri sat sun (case-insensitive), ranges "mon-fri" (which may wrap:
// "fri-mon" is fri,sat,sun,mon), comma-separated lists, or "daily". Times are H:MM or HH:MM,
// 24-hour; the end may be 24:00. An end at or before the start crosses midnight into the next
// day. A window with equal start and end is rejected as ambiguous; write 00:00-24:00 for a
// whole day.
func ParseWindow(s string) (Window, error) {
	var w Window
	s = strings.TrimSpace(s)
	cut := strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' })
	if cut < 0 {
		return w, errors.New(`missing time range, want e.g. "mon-fri 07:00-09:00"`)
	}
	daysPart, timePart := strings.TrimSpace(s[:cut]), strings.TrimSpace(s[cut:])
	if daysPart == "" {
		return w, errors.New(`missing days before the time range, want e.g. "daily" or "mon-fri"`)
	}
	days, err := parseDays(daysPart)
	if err != nil {
		return w, err
	}
	w.Days = days
	from, to, ok := strings.Cut(timePart, "-")
	if !ok {
		return w, fmt.Errorf("time range %q: want start-end, e.g. 07:00-09:00", timePart)
	}
	if w.StartMin, err = parseClock(strings.TrimSpace(from), false); err != nil {
		return w, fmt.Errorf("start: %w", err)
	}
	if w.EndMin, err = parseClock(strings.TrimSpace(to), true); err != nil {
		return w, fmt.Errorf("end: %w", err)
	}
	if w.StartMin == w.EndMin {
		return w, fmt.Errorf("start and end are both %s: an empty or whole-day window is ambiguous, write 00:00-24:00 for a whole day", clock(w.StartMin))
	}
	return w, nil
}

func parseDays(s string) ([7]bool, error) {
	var days [7]bool
	s = strings.ToLower(s)
	if s == "daily" {
		for i := range days {
			days[i] = true
		}
		return days, nil
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return days, fmt.Errorf("days %q: empty item", s)
		}
		first, last, isRange := strings.Cut(item, "-")
		a, err := parseDay(strings.TrimSpace(first))
		if err != nil {
			return days, err
		}
		b := a
		if isRange {
			if b, err = parseDay(strings.TrimSpace(last)); err != nil {
				return days, err
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

func parseDay(s string) (time.Weekday, error) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if s == dayName(d) {
			return d, nil
		}
	}
	if s == "daily" {
		return 0, errors.New(`"daily" cannot be combined with other days`)
	}
	return 0, fmt.Errorf("unknown day %q, want mon, tue, wed, thu, fri, sat, sun or daily", s)
}

func parseClock(s string, isEnd bool) (int, error) {
	hs, ms, ok := strings.Cut(s, ":")
	if !ok || len(hs) < 1 || len(hs) > 2 || len(ms) != 2 {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	h, err1 := strconv.Atoi(hs)
	m, err2 := strconv.Atoi(ms)
	if err1 != nil || err2 != nil || h < 0 || m < 0 || hs[0] == '+' || ms[0] == '+' {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	if m > 59 || h > 24 || (h == 24 && (m != 0 || !isEnd)) {
		return 0, fmt.Errorf("time %q: out of range (00:00 to 23:59, or 24:00 as an end)", s)
	}
	return h*60 + m, nil
}
