package api

// The KPIs' daily roll-ups (006_kpi_daily, docs/kpis.md "Speed"): which days of a window are
// read from a roll-up and which from the raw tables, and the marks that say a day is rolled up.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/tables"
)

// dayPlan splits a window into the whole days read from a roll-up and the spans read raw.
type dayPlan struct {
	// rolled are runs of days marked rolled up: [first day, the day after the last), as
	// YYYY-MM-DD.
	rolled [][2]string
	// raw are the spans [from, to) of the window that are not.
	raw [][2]time.Time
}

// planDays splits [from, to) into the whole days of loc that marked holds (YYYY-MM-DD) and the
// rest, each merged into runs.
func planDays(from, to time.Time, loc *time.Location, marked map[string]bool) dayPlan {
	var p dayPlan
	for d := dayFloor(from, loc); d.Before(to); {
		next := d.AddDate(0, 0, 1)
		day := d.Format(time.DateOnly)
		if !d.Before(from) && !next.After(to) && marked[day] {
			if n := len(p.rolled); n > 0 && p.rolled[n-1][1] == day {
				p.rolled[n-1][1] = next.Format(time.DateOnly)
			} else {
				p.rolled = append(p.rolled, [2]string{day, next.Format(time.DateOnly)})
			}
		} else {
			a, b := maxTime(d, from), minTime(next, to)
			if n := len(p.raw); n > 0 && p.raw[n-1][1].Equal(a) {
				p.raw[n-1][1] = b
			} else {
				p.raw = append(p.raw, [2]time.Time{a, b})
			}
		}
		d = next
	}
	return p
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// rolledRows appends the condition that selects, of roll-up table t, the rows of p's rolled days,
// each day's of its newest mark in kpi_rollups.
func (s *Store) rolledRows(q *sqlText, t *tables.Table, p dayPlan) {
	day := t.Col("day")
	runs := make([]string, len(p.rolled))
	var args []any
	for i, r := range p.rolled {
		runs[i] = day + " >= toDate(?) AND " + day + " < toDate(?)"
		args = append(args, r[0], r[1])
	}
	q.add("("+strings.Join(runs, " OR ")+")", args...)
	m := tables.KPIRollups
	q.add(" AND ("+day+", "+t.Col("rolled_at")+") IN (SELECT "+m.Col("day")+", max("+m.Col("rolled_at")+") FROM "+m.In(s.db)+
		" WHERE "+m.Col("roll_up")+" = ? AND "+m.Col("day")+" >= toDate(?) AND "+m.Col("day")+" < toDate(?) GROUP BY "+m.Col("day")+")",
		t.Name, p.rolled[0][0], p.rolled[len(p.rolled)-1][1])
}

// markedDays returns the days of [from, to) (midnights) that kpi_rollups marks rolled up into
// table t.
func (s *Store) markedDays(ctx context.Context, t *tables.Table, from, to time.Time) (map[string]bool, error) {
	m := tables.KPIRollups
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT toString("+m.Col("day")+") FROM "+m.In(s.db)+" WHERE "+m.Col("roll_up")+" = ? AND "+
		m.Col("day")+" >= toDate(?) AND "+m.Col("day")+" < toDate(?)", t.Name, from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, fmt.Errorf("cannot list the days rolled up into %s: %w", t.Name, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("cannot list the days rolled up into %s: %w", t.Name, err)
		}
		out[d] = true
	}
	return out, rows.Err()
}

// mark records the days [from, to) (midnights) as rolled up into t at rolledAt.
func (s *Store) mark(ctx context.Context, t *tables.Table, from, to time.Time, rolledAt time.Time) error {
	days := 0
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		days++
	}
	m := tables.KPIRollups
	if err := s.conn.Exec(ctx, m.Insert(s.db)+" SELECT ?, toDate(?) + number, toDateTime(?) FROM system.numbers LIMIT ?",
		t.Name, from.Format(time.DateOnly), unixSeconds(rolledAt), days); err != nil {
		return fmt.Errorf("cannot mark %s to %s rolled up into %s: %w", from.Format(time.DateOnly), to.Format(time.DateOnly), t.Name, err)
	}
	return nil
}

// unionAll appends "SELECT * FROM (part) UNION ALL …" of the parts that add something.
func unionAll(q *sqlText, parts ...func(q *sqlText) bool) {
	first := true
	for _, part := range parts {
		var p sqlText
		if !part(&p) {
			continue
		}
		if !first {
			q.add(" UNION ALL ")
		}
		first = false
		q.add("SELECT * FROM ("+p.String()+")", p.args...)
	}
	if first {
		q.add("SELECT * FROM system.one WHERE 0")
	}
}

// actionsChecked is kpi_rollups' roll_up of the time up to which the actions have been checked
// for days to roll up again (a row of day 1970-01-01 whose rolled_at is that time).
const actionsChecked = "handling_daily:actions"

// ActionsChecked returns the time up to which the actions have been checked for late ones; when
// they never were, the time of the oldest roll-up of handling_daily (nothing before it can be
// late), and false when there is none either.
func (s *Store) ActionsChecked(ctx context.Context) (time.Time, bool, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	m := tables.KPIRollups
	var checked, oldest time.Time
	var n uint64
	if err := s.conn.QueryRow(ctx, "SELECT maxIf("+m.Col("rolled_at")+", "+m.Col("roll_up")+" = ?), minIf("+m.Col("rolled_at")+", "+m.Col("roll_up")+" = ?),"+
		" countIf("+m.Col("roll_up")+" = ?) FROM "+m.In(s.db)+" WHERE "+m.Col("roll_up")+" IN (?, ?)",
		actionsChecked, tables.HandlingDaily.Name, tables.HandlingDaily.Name, actionsChecked, tables.HandlingDaily.Name).Scan(&checked, &oldest, &n); err != nil {
		return time.Time{}, false, fmt.Errorf("cannot read how far the actions were checked for late ones: %w", err)
	}
	switch {
	case checked.Unix() > 0:
		return checked, true, nil
	case n > 0:
		return oldest, true, nil
	}
	return time.Time{}, false, nil
}

// SetActionsChecked records that the actions up to t have been checked for late ones.
func (s *Store) SetActionsChecked(ctx context.Context, t time.Time) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	m := tables.KPIRollups
	if err := s.conn.Exec(ctx, m.Insert(s.db)+" SELECT ?, toDate(0), toDateTime(?)", actionsChecked, unixSeconds(t)); err != nil {
		return fmt.Errorf("cannot record how far the actions were checked for late ones: %w", err)
	}
	return nil
}

// LateHandlingDays lists the days (midnights in loc) rolled up into handling_daily whose alerts
// got an action, among those taken since since, later than margin before the day's newest
// roll-up: the roll-up may lack it, and the day must be rolled up again.
func (s *Store) LateHandlingDays(ctx context.Context, since time.Time, loc *time.Location, margin time.Duration) ([]time.Time, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	a, act, m := tables.Alerts, tables.AlertActions, tables.KPIRollups
	recent := act.Col("at") + " >= toDateTime(?) AND " + act.Col("at_ms") + " >= ?"
	q := "SELECT toString(k_day), toUnixTimestamp(k_rolled) FROM (" +
		"SELECT k_day, max(k_last) AS k_action FROM (SELECT " + act.Col("alert_id") + " AS k_alert, max(" + act.Col("at_ms") + ") AS k_last FROM " + act.In(s.db) +
		" WHERE " + recent + " GROUP BY k_alert) AS k_acts ANY INNER JOIN (SELECT " + a.Col("id") + " AS k_alert, toDate(any(" + a.Col("start_time") + "), ?) AS k_day FROM " + a.In(s.db) +
		" WHERE " + a.Col("id") + " IN (SELECT " + act.Col("alert_id") + " FROM " + act.In(s.db) + " WHERE " + recent + ") GROUP BY k_alert) AS k_alerts USING k_alert GROUP BY k_day" +
		") AS k_days ANY INNER JOIN (SELECT " + m.Col("day") + " AS k_day, max(" + m.Col("rolled_at") + ") AS k_rolled FROM " + m.In(s.db) +
		" WHERE " + m.Col("roll_up") + " = ? GROUP BY k_day) AS k_marks USING k_day WHERE k_action >= (toInt64(toUnixTimestamp(k_rolled)) - ?) * 1000 ORDER BY k_day"
	rows, err := s.conn.Query(ctx, q, unixSeconds(since), since.UnixMilli(), loc.String(), unixSeconds(since), since.UnixMilli(),
		tables.HandlingDaily.Name, int64(margin/time.Second))
	if err != nil {
		return nil, fmt.Errorf("cannot find the days with late actions: %w", err)
	}
	defer rows.Close()
	var out []time.Time
	for rows.Next() {
		var d string
		var rolled uint32
		if err := rows.Scan(&d, &rolled); err != nil {
			return nil, fmt.Errorf("cannot find the days with late actions: %w", err)
		}
		day, err := time.ParseInLocation(time.DateOnly, d, loc)
		if err != nil {
			return nil, fmt.Errorf("cannot find the days with late actions: day %q: %w", d, err)
		}
		out = append(out, day)
	}
	return out, rows.Err()
}
