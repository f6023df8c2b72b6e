package api

// The KPI queries (docs/kpis.md has each KPI with the SQL an auditor runs by hand): the handling
// of the alerts raised in a window, per period and district or handling unit; the violations,
// trips and kilometres of each vehicle per period, from which the scorecards and rankings are
// scored in Go (kpi.go). Every value is a parameter; every query is bounded by the store's
// timeout and, through Server.query, by api.query_timeout.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/tables"
)

// Intervals of the KPI periods.
const (
	IntervalDay   = "day"
	IntervalWeek  = "week"
	IntervalMonth = "month"
	IntervalAll   = "all"
)

// periodExpr is the SQL expression of the start ('YYYY-MM-DD', in zone ?) of the period of
// interval that DateTime expression t falls in; for IntervalAll, the empty string.
func periodExpr(interval, t string) (string, bool) {
	switch interval {
	case IntervalDay:
		return "toString(toDate(" + t + ", ?))", true
	case IntervalWeek:
		return "toString(toMonday(" + t + ", ?))", true
	case IntervalMonth:
		return "toString(toStartOfMonth(" + t + ", ?))", true
	}
	return "''", false
}

// dayPeriodExpr is periodExpr for a Date expression (no zone).
func dayPeriodExpr(interval, d string) string {
	switch interval {
	case IntervalDay:
		return "toString(" + d + ")"
	case IntervalWeek:
		return "toString(toMonday(" + d + "))"
	case IntervalMonth:
		return "toString(toStartOfMonth(" + d + "))"
	}
	return "''"
}

// HandlingQuery selects the alerts raised in [From, To) whose handling is counted.
type HandlingQuery struct {
	From, To time.Time
	// By is "district" or "unit"; Interval one of IntervalDay, …, IntervalAll.
	By, Interval string
	// Districts selects the alerts of these districts (the newest version's); empty selects all.
	Districts []string
	// Location is the zone of the periods (an IANA name).
	Location *time.Location
	// AckWithin is the deadline of the first action, by the severity an alert opened with.
	AckWithin AckWithin
	// NowMs: an alert with no action whose deadline passed before NowMs is overdue.
	NowMs int64
	// Teams maps an officer id to their team; GridStaff a district to its grid staff channel.
	Teams, GridStaff map[string]string
}

// HandlingRow is the handling of the alerts of one period and district or unit.
type HandlingRow struct {
	Period, Key                                           string
	Raised, Dispatched, Acknowledged, Resolved, Dismissed uint64
	// Acted: alerts with any action; WithinDeadline: their first action within the deadline;
	// Overdue: first action after the deadline, or none and the deadline has passed.
	Acted, WithinDeadline, Overdue uint64
	// ClosedLoop: resolved with a recorded outcome.
	ClosedLoop uint64
	// Seconds from the alert's start to its first action and to its resolution: median and p90
	// (valid when Acted and Resolved are not 0).
	FirstActionP50, FirstActionP90, ResolutionP50, ResolutionP90 float64
	// DismissedBy counts the dismissed alerts by reason.
	DismissedBy map[string]uint64
}

// handlingCols are the columns of one alert's handling (handlingAlerts): its key (cityHash64 of
// the id: a fixed-size key hashes and joins several times faster than the id), start (DateTime
// and ms), district (the newest version's), deadline (ms, by the severity it opened with), and
// the ms of the first action of each kind (0 when none), the dismissal's reason, the
// resolution's outcome and the officer dispatched last.
const handlingCols = "k_id, k_time, k_start, k_district, k_deadline, h_first, h_dispatch, h_ack, h_resolve, h_dismiss, h_reason, h_outcome, h_officer"

// handlingAlerts appends to q a SELECT of handlingCols, one row per alert that started in
// [from, to), read from alerts and alert_actions (the actions of those alerts only). GLOBAL IN:
// on a cluster both are Distributed tables, and a subquery of one inside the other is refused
// (distributed_product_mode 'deny'); the alerts' ids are read once and sent to the shards.
func (s *Store) handlingAlerts(q *sqlText, from, to time.Time, ack AckWithin) {
	a, act := tables.Alerts, tables.AlertActions
	start, startMs := a.Col("start_time"), a.Col("start_ms")
	inWindow := start + " >= toDateTime(?) AND " + start + " <= toDateTime(?) AND " + startMs + " >= ? AND " + startMs + " < ?"
	window := []any{unixSeconds(from), unixSeconds(to), from.UnixMilli(), to.UnixMilli()}
	q.add("SELECT "+handlingCols+" FROM (SELECT cityHash64("+a.Col("id")+") AS k_id, any("+start+") AS k_time, any("+startMs+") AS k_start,"+
		" argMax("+a.Col("district")+", "+a.Col("version")+") AS k_district,"+
		" toInt64(multiIf(argMin("+a.Col("severity")+", "+a.Col("version")+") = 'severe', ?, argMin("+a.Col("severity")+", "+a.Col("version")+") = 'warning', ?, ?)) AS k_deadline"+
		" FROM "+a.In(s.db)+" WHERE "+inWindow,
		append([]any{ack.Severe.Milliseconds(), ack.Warning.Milliseconds(), ack.Info.Milliseconds()}, window...)...)
	at, action, reason := act.Col("at_ms"), act.Col("action"), act.Col("reason")
	q.add(" GROUP BY k_id) AS k_alerts ANY LEFT JOIN (SELECT cityHash64("+act.Col("alert_id")+") AS k_id, min("+at+") AS h_first,"+
		" minIf("+at+", "+action+" = 'dispatch') AS h_dispatch, minIf("+at+", "+action+" = 'acknowledge') AS h_ack,"+
		" minIf("+at+", "+action+" = 'resolve') AS h_resolve, minIf("+at+", "+action+" = 'dismiss') AS h_dismiss,"+
		" anyIf("+reason+", "+action+" = 'dismiss') AS h_reason, anyIf("+reason+", "+action+" = 'resolve') AS h_outcome,"+
		" argMaxIf("+act.Col("officer_id")+", "+at+", "+action+" = 'dispatch') AS h_officer"+
		" FROM "+act.In(s.db)+" WHERE "+act.Col("at")+" >= toDateTime(?) AND "+at+" >= ?"+
		" AND "+act.Col("alert_id")+" GLOBAL IN (SELECT "+a.Col("id")+" FROM "+a.In(s.db)+" WHERE "+inWindow+") GROUP BY k_id) AS k_handling USING k_id",
		append([]any{unixSeconds(from), from.UnixMilli()}, window...)...)
}

// handlingDailyCols are handling_daily's columns but rolled_at, in order.
const handlingDailyCols = "day, district, officer, raised, dispatched, acknowledged, resolved, dismissed, acted, within_deadline, overdue," +
	" closed_loop, pending_due, first_ms, resolve_ms, dismiss_reasons"

// handlingDays appends to q a SELECT of handlingDailyCols: the handling of the alerts that
// started in the spans, per day (in zone), district and officer dispatched last, with overdue
// as of nowMs. The roll-up writes it to handling_daily; the handling KPIs read it for the days
// not rolled up.
func (s *Store) handlingDays(q *sqlText, spans [][2]time.Time, ack AckWithin, zone string, nowMs int64) {
	q.add("SELECT toDate(k_time, ?) AS day, k_district AS district, h_officer AS officer, count() AS raised,"+
		" countIf(h_dispatch > 0) AS dispatched, countIf(h_ack > 0) AS acknowledged, countIf(h_resolve > 0) AS resolved,"+
		" countIf(h_dismiss > 0) AS dismissed, countIf(h_first > 0) AS acted, countIf(h_first > 0 AND h_first - k_start <= k_deadline) AS within_deadline,"+
		" countIf(h_first - k_start > k_deadline OR (h_first = 0 AND k_start + k_deadline <= ?)) AS overdue,"+
		" countIf(h_resolve > 0 AND h_outcome != '') AS closed_loop, groupArrayIf(k_start + k_deadline, h_first = 0 AND k_start + k_deadline > ?) AS pending_due,"+
		" groupArrayIf(h_first - k_start, h_first > 0) AS first_ms, groupArrayIf(h_resolve - k_start, h_resolve > 0) AS resolve_ms,"+
		" groupArrayIf(h_reason, h_dismiss > 0) AS dismiss_reasons FROM (", zone, nowMs, nowMs)
	parts := make([]func(*sqlText) bool, len(spans))
	for i, sp := range spans {
		parts[i] = func(p *sqlText) bool {
			s.handlingAlerts(p, sp[0], sp[1], ack)
			return true
		}
	}
	unionAll(q, parts...)
	q.add(") GROUP BY day, district, officer")
}

// handlingFrom appends to q " FROM (…)" of handlingDailyCols, k_period and k_key: the handling
// of the alerts hq selects per day, district and officer, of the days rolled up (plan.rolled)
// from handling_daily, of the rest from alerts and alert_actions.
func (s *Store) handlingFrom(q *sqlText, hq HandlingQuery, plan dayPlan) error {
	var key string
	var keyArgs []any
	switch hq.By {
	case "district":
		key = "district"
	case "unit":
		// the team of the officer dispatched last; without one, the district's grid staff
		grid := "concat('grid-staff:', if(district = '', 'unassigned', district))"
		if len(hq.GridStaff) > 0 {
			ds, cs := mapArrays(hq.GridStaff)
			grid = "transform(district, ?, ?, " + grid + ")"
			keyArgs = append(keyArgs, ds, cs)
		}
		officer := "concat('officer:', officer)"
		if len(hq.Teams) > 0 {
			os, ts := mapArrays(hq.Teams)
			officer = "transform(officer, ?, ?, " + officer + ")"
			keyArgs = append(keyArgs, os, ts)
		}
		key = "if(officer = '', " + grid + ", " + officer + ")"
	default:
		return fmt.Errorf("cannot count the handling by %q: not district or unit", hq.By)
	}
	q.add(" FROM (SELECT *, "+key+" AS k_key", keyArgs...)
	q.add(", " + dayPeriodExpr(hq.Interval, "day") + " AS k_period FROM (")
	h := tables.HandlingDaily
	unionAll(q, func(p *sqlText) bool {
		if len(plan.rolled) == 0 {
			return false
		}
		p.add("SELECT " + handlingDailyCols + " FROM " + h.In(s.db) + " FINAL WHERE ")
		s.rolledRows(p, h, plan)
		return true
	}, func(p *sqlText) bool {
		if len(plan.raw) == 0 {
			return false
		}
		s.handlingDays(p, plan.raw, hq.AckWithin, hq.Location.String(), hq.NowMs)
		return true
	})
	q.add("))")
	var where conditions
	where.in("district", hq.Districts)
	where.appendTo(q)
	return nil
}

// RollUpHandling writes the handling of the alerts that started on the days [from, to)
// (midnights in loc) to handling_daily, then marks the days rolled up.
func (s *Store) RollUpHandling(ctx context.Context, from, to time.Time, loc *time.Location, ack AckWithin, now time.Time) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	h := tables.HandlingDaily
	now = now.Truncate(time.Second)
	var q sqlText
	q.add(h.Insert(s.db)+" SELECT "+handlingDailyCols+", toDateTime(?) FROM (", unixSeconds(now))
	s.handlingDays(&q, [][2]time.Time{{from, to}}, ack, loc.String(), now.UnixMilli())
	q.add(")")
	if err := s.conn.Exec(ctx, q.String(), q.args...); err != nil {
		return fmt.Errorf("cannot roll up the handling of %s to %s into %s: %w", from.Format(time.DateOnly), to.Format(time.DateOnly), h.Name, err)
	}
	return s.mark(ctx, h, from, to, now)
}

// zoneArgs is the zone argument of a period expression, when it takes one.
func zoneArgs(zoned bool, zone string) []any {
	if zoned {
		return []any{zone}
	}
	return nil
}

// mapArrays returns m's keys, sorted, and their values, for transform(x, keys, values, default).
func mapArrays(m map[string]string) ([]string, []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return keys, vals
}

// Handling counts the handling of the alerts hq selects by period and key, ordered by both.
func (s *Store) Handling(ctx context.Context, hq HandlingQuery) ([]HandlingRow, error) {
	if hq.Location == nil || hq.Location.String() == "Local" || hq.Location.String() == "" {
		return nil, fmt.Errorf("cannot count the handling: the time zone has no IANA name")
	}
	if !hq.From.Before(hq.To) {
		return nil, nil
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	marked, err := s.markedDays(ctx, tables.HandlingDaily, dayFloor(hq.From, hq.Location), dayCeil(hq.To, hq.Location))
	if err != nil {
		return nil, err
	}
	plan := planDays(hq.From, hq.To, hq.Location, marked)
	var q sqlText
	q.add("SELECT k_period, k_key, sum(raised), sum(dispatched), sum(acknowledged), sum(resolved), sum(dismissed), sum(acted), sum(within_deadline),")
	q.add(" sum(overdue) + sum(arrayCount(x -> x <= ?, pending_due)), sum(closed_loop),", hq.NowMs)
	q.add(" quantilesExactArray(0.5, 0.9)(first_ms), quantilesExactArray(0.5, 0.9)(resolve_ms), groupArrayArray(dismiss_reasons)")
	if err := s.handlingFrom(&q, hq, plan); err != nil {
		return nil, err
	}
	q.add(" GROUP BY k_period, k_key ORDER BY k_period, k_key")
	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot count the handling by %s: %w", hq.By, err)
	}
	defer rows.Close()
	var out []HandlingRow
	for rows.Next() {
		var r HandlingRow
		var first, resolve []int64
		var reasons []string
		if err := rows.Scan(&r.Period, &r.Key, &r.Raised, &r.Dispatched, &r.Acknowledged, &r.Resolved, &r.Dismissed, &r.Acted,
			&r.WithinDeadline, &r.Overdue, &r.ClosedLoop, &first, &resolve, &reasons); err != nil {
			return nil, fmt.Errorf("cannot read the handling by %s: %w", hq.By, err)
		}
		if len(first) == 2 {
			r.FirstActionP50, r.FirstActionP90 = float64(first[0])/1000, float64(first[1])/1000
		}
		if len(resolve) == 2 {
			r.ResolutionP50, r.ResolutionP90 = float64(resolve[0])/1000, float64(resolve[1])/1000
		}
		r.DismissedBy = map[string]uint64{}
		for _, reason := range reasons {
			r.DismissedBy[reason]++
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the handling by %s: %w", hq.By, err)
	}
	return out, nil
}

// ActivityQuery selects whole days [From, To) (midnights in Location) of every vehicle's
// violations, trips and kilometres, by period.
type ActivityQuery struct {
	From, To time.Time
	Interval string
	Location *time.Location
	// ConstructionSites are the sites a trip starts from (a gate_exit there).
	ConstructionSites []string
	// Vehicles selects these plates; empty selects all.
	Vehicles []string
}

// VehicleActivity is one vehicle's record in one period.
type VehicleActivity struct {
	Period, Vehicle string
	// Company is the company of the vehicle's newest alert in the period ("" when none).
	Company string
	// Violations counts the distinct alerts by rule.
	Violations map[string]uint64
	Trips      uint64
	Km         float64
}

// kmDayExpr computes, over rows of positions grouped by vehicle and day, the km driven: the sum
// of the distances between consecutive fixes in time order (an equirectangular approximation on
// a sphere of 6,371,008.8 m, exact to well under 0.1 % at a city's scale), a step faster than
// 150 km/h counting nothing (distance m × 24 > time ms). Fixes are (ts_ms, lat, lon) tuples.
const kmDayExpr = "arraySum(arrayMap((p, n) -> if(" + stepM + " * 24 <= tupleElement(n, 1) - tupleElement(p, 1), " + stepM + ", 0)," +
	" arrayPopBack(k_pts), arrayPopFront(k_pts))) / 1000"

const stepM = "(6371008.8 * sqrt(pow((tupleElement(n, 2) - tupleElement(p, 2)) * pi() / 180, 2) + pow(cos((tupleElement(n, 2) + tupleElement(p, 2)) * pi() / 360) * (tupleElement(n, 3) - tupleElement(p, 3)) * pi() / 180, 2)))"

// kmFromPositions appends the SELECT of (k_day, vehicle_id, km, fixes) computed from positions
// for the days [from, to) of zone (midnights).
func (s *Store) kmFromPositions(q *sqlText, from, to time.Time, zone string, vehicles []string) {
	p := tables.Positions
	ts, tsMs := p.Col("ts"), p.Col("ts_ms")
	q.add("SELECT k_day, "+p.Col("vehicle_id")+", "+kmDayExpr+" AS km, toUInt64(length(k_pts)) AS fixes FROM (SELECT "+p.Col("vehicle_id")+", toDate("+ts+", ?) AS k_day,"+
		" arraySort(groupArray(("+tsMs+", "+p.Col("lat")+", "+p.Col("lon")+"))) AS k_pts FROM "+p.In(s.db)+
		" WHERE "+ts+" >= toDateTime(?) AND "+ts+" < toDateTime(?)", zone, unixSeconds(from), unixSeconds(to))
	if len(vehicles) > 0 {
		q.add(" AND has(?, "+p.Col("vehicle_id")+")", vehicles)
	}
	q.add(" GROUP BY " + p.Col("vehicle_id") + ", k_day)")
}

// rolledDaysOf lists the days of [from, to) (Date strings, in order) that roll-up table t has
// marked done (a row where mark holds).
func (s *Store) rolledDaysOf(ctx context.Context, t *tables.Table, mark, from, to string) ([]string, error) {
	day := t.Col("day")
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT toString("+day+") AS d FROM "+t.In(s.db)+" WHERE "+day+" >= toDate(?) AND "+day+" < toDate(?) AND "+mark+" ORDER BY d", from, to)
	if err != nil {
		return nil, fmt.Errorf("cannot list the days rolled up in %s: %w", t.Name, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("cannot list the days rolled up in %s: %w", t.Name, err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// RollUpKm writes the km of every vehicle on day (a midnight in loc) to vehicle_km_daily, with
// a row of vehicle "" marking the day done, and replaces an earlier roll-up of it.
func (s *Store) RollUpKm(ctx context.Context, day time.Time, loc *time.Location, now time.Time) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	k := tables.VehicleKmDaily
	next := day.AddDate(0, 0, 1)
	var q sqlText
	q.add(k.Insert(s.db)+" SELECT k_day, vehicle_id, km, fixes, toDateTime(?) FROM (", unixSeconds(now))
	s.kmFromPositions(&q, day, next, loc.String(), nil)
	q.add(") UNION ALL SELECT toDate(?), '', toFloat64(0), toUInt64(0), toDateTime(?)", day.Format(time.DateOnly), unixSeconds(now))
	if err := s.conn.Exec(ctx, q.String(), q.args...); err != nil {
		return fmt.Errorf("cannot roll up the km of %s into %s: %w", day.Format(time.DateOnly), k.Name, err)
	}
	return nil
}

// MissingKmDays lists the days in [from, to) (midnights in loc) not rolled up yet into
// vehicle_km_daily.
func (s *Store) MissingKmDays(ctx context.Context, from, to time.Time, loc *time.Location) ([]time.Time, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	done, err := s.rolledDaysOf(ctx, tables.VehicleKmDaily, "vehicle_id = ''", from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	return missing(from, to, func(d string) bool { return slices.Contains(done, d) }), nil
}

// MissingDailyDays lists the days in [from, to) (midnights) not rolled up yet into the daily
// roll-ups of the alerts (RollUpDaily marks handling_daily last).
func (s *Store) MissingDailyDays(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	done, err := s.markedDays(ctx, tables.HandlingDaily, from, to)
	if err != nil {
		return nil, err
	}
	return missing(from, to, func(d string) bool { return done[d] }), nil
}

// missing lists the days of [from, to) that are not done.
func missing(from, to time.Time, done func(day string) bool) []time.Time {
	var out []time.Time
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		if !done(d.Format(time.DateOnly)) {
			out = append(out, d)
		}
	}
	return out
}

// violationsDays appends to q a SELECT of (day, vehicle_id, rule, alerts, company, last_start):
// the distinct alerts that started in the spans per day (in zone), vehicle and rule, with the
// company of the newest (its newest version's) and its start.
func (s *Store) violationsDays(q *sqlText, spans [][2]time.Time, zone string, vehicles []string) {
	a := tables.Alerts
	start, startMs := a.Col("start_time"), a.Col("start_ms")
	q.add("SELECT toDate(k_time, ?) AS day, vehicle_id, rule, count() AS alerts, argMax(k_company, k_start) AS company, max(k_start) AS last_start FROM (", zone)
	parts := make([]func(*sqlText) bool, len(spans))
	for i, sp := range spans {
		parts[i] = func(p *sqlText) bool {
			p.add("SELECT cityHash64("+a.Col("id")+") AS k_id, "+a.Col("vehicle_id")+", "+a.Col("rule")+", any("+start+") AS k_time, any("+startMs+") AS k_start,"+
				" argMax("+a.Col("company")+", "+a.Col("version")+") AS k_company FROM "+a.In(s.db)+
				" WHERE "+start+" >= toDateTime(?) AND "+start+" <= toDateTime(?) AND "+startMs+" >= ? AND "+startMs+" < ?",
				unixSeconds(sp[0]), unixSeconds(sp[1]), sp[0].UnixMilli(), sp[1].UnixMilli())
			if len(vehicles) > 0 {
				p.add(" AND has(?, "+a.Col("vehicle_id")+")", vehicles)
			}
			p.add(" GROUP BY k_id, " + a.Col("vehicle_id") + ", " + a.Col("rule"))
			return true
		}
	}
	unionAll(q, parts...)
	q.add(") GROUP BY day, vehicle_id, rule")
}

// exitsDays appends to q a SELECT of (day, vehicle_id, site_ids, site_exits): the distinct gate
// exits in the spans per day (in zone) and vehicle, counted by site (the sites and their counts
// as arrays: one row per truck and day, however many sites it left).
func (s *Store) exitsDays(q *sqlText, spans [][2]time.Time, zone string, vehicles []string) {
	e := tables.Events
	ts, tsMs := e.Col("ts"), e.Col("ts_ms")
	q.add("SELECT day, vehicle_id, groupArray(site_id) AS site_ids, groupArray(exits) AS site_exits FROM (")
	parts := make([]func(*sqlText) bool, len(spans))
	for i, sp := range spans {
		parts[i] = func(p *sqlText) bool {
			p.add("SELECT toDate("+ts+", ?) AS day, "+e.Col("vehicle_id")+", "+e.Col("site_id")+", uniqExact("+e.Col("event_id")+") AS exits FROM "+e.In(s.db)+
				" WHERE "+ts+" >= toDateTime(?) AND "+ts+" < toDateTime(?) AND "+tsMs+" >= ? AND "+tsMs+" < ? AND "+e.Col("kind")+" = 'gate_exit'",
				zone, unixSeconds(sp[0]), unixSeconds(sp[1]), sp[0].UnixMilli(), sp[1].UnixMilli())
			if len(vehicles) > 0 {
				p.add(" AND has(?, "+e.Col("vehicle_id")+")", vehicles)
			}
			p.add(" GROUP BY day, " + e.Col("vehicle_id") + ", " + e.Col("site_id"))
			return true
		}
	}
	unionAll(q, parts...)
	q.add(") GROUP BY day, vehicle_id")
}

// RollUpDaily rolls up the alerts and gate exits of the days [from, to) (midnights in loc):
// the violations per vehicle (vehicle_violations_daily), the gate exits (vehicle_exits_daily)
// and, last, the handling (handling_daily), each table's days marked after its rows are written.
func (s *Store) RollUpDaily(ctx context.Context, from, to time.Time, loc *time.Location, ack AckWithin, now time.Time) error {
	now = now.Truncate(time.Second)
	for _, r := range []struct {
		t    *tables.Table
		cols string
		sel  func(q *sqlText)
	}{
		{tables.VehicleViolationsDaily, "day, vehicle_id, rule, alerts, company, last_start", func(q *sqlText) {
			s.violationsDays(q, [][2]time.Time{{from, to}}, loc.String(), nil)
		}},
		{tables.VehicleExitsDaily, "day, vehicle_id, site_ids, site_exits", func(q *sqlText) {
			s.exitsDays(q, [][2]time.Time{{from, to}}, loc.String(), nil)
		}},
	} {
		if err := s.rollUpInto(ctx, r.t, r.cols, r.sel, from, to, now); err != nil {
			return err
		}
	}
	return s.RollUpHandling(ctx, from, to, loc, ack, now)
}

// rollUpInto writes the rows sel selects, with rolled_at now, to t and marks the days [from, to).
func (s *Store) rollUpInto(ctx context.Context, t *tables.Table, cols string, sel func(q *sqlText), from, to, now time.Time) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var q sqlText
	q.add("INSERT INTO "+t.In(s.db)+" ("+cols+", rolled_at) SELECT "+cols+", toDateTime(?) FROM (", unixSeconds(now))
	sel(&q)
	q.add(")")
	if err := s.conn.Exec(ctx, q.String(), q.args...); err != nil {
		return fmt.Errorf("cannot roll up %s to %s into %s: %w", from.Format(time.DateOnly), to.Format(time.DateOnly), t.Name, err)
	}
	return s.mark(ctx, t, from, to, now)
}

// periodRows runs q and calls row for each row.
func (s *Store) periodRows(ctx context.Context, q *sqlText, what string, row func(scan func(dest ...any) error) error) error {
	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return fmt.Errorf("cannot read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot read %s: %w", what, err)
	}
	return nil
}

// Activity returns each vehicle's violations, trips and km per period, ordered by period and
// vehicle. The days rolled up are read from the daily roll-ups, the others from the raw tables.
func (s *Store) Activity(ctx context.Context, aq ActivityQuery) ([]VehicleActivity, error) {
	if aq.Location == nil || aq.Location.String() == "Local" || aq.Location.String() == "" {
		return nil, fmt.Errorf("cannot read the vehicles' activity: the time zone has no IANA name")
	}
	if !aq.From.Before(aq.To) {
		return nil, nil
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	zone := aq.Location.String()
	acts := map[[2]string]*VehicleActivity{}
	get := func(period, vehicle string) *VehicleActivity {
		k := [2]string{period, vehicle}
		if a := acts[k]; a != nil {
			return a
		}
		a := &VehicleActivity{Period: period, Vehicle: vehicle, Violations: map[string]uint64{}}
		acts[k] = a
		return a
	}
	period := dayPeriodExpr(aq.Interval, "day")
	// from, of each day, the roll-up t's rows (cols) or, for the days not rolled up, raw's
	from := func(q *sqlText, t *tables.Table, cols string, raw func(q *sqlText, spans [][2]time.Time)) error {
		marked, err := s.markedDays(ctx, t, aq.From, aq.To)
		if err != nil {
			return err
		}
		plan := planDays(aq.From, aq.To, aq.Location, marked)
		q.add(" FROM (SELECT *, " + period + " AS k_period FROM (")
		unionAll(q, func(p *sqlText) bool {
			if len(plan.rolled) == 0 {
				return false
			}
			p.add("SELECT " + cols + " FROM " + t.In(s.db) + " FINAL WHERE ")
			s.rolledRows(p, t, plan)
			if len(aq.Vehicles) > 0 {
				p.add(" AND has(?, "+t.Col("vehicle_id")+")", aq.Vehicles)
			}
			return true
		}, func(p *sqlText) bool {
			if len(plan.raw) == 0 {
				return false
			}
			raw(p, plan.raw)
			return true
		})
		q.add("))")
		return nil
	}

	// violations: the distinct alerts by period and vehicle, by rule (as arrays of each day's and
	// rule's counts, summed here: a GROUP BY per period and vehicle is much smaller than one per
	// period, vehicle and rule), with the company of the newest alert that names one
	var v sqlText
	v.add("SELECT k_period, vehicle_id, groupArray(rule), groupArray(alerts), argMaxIf(company, last_start, company != '')")
	if err := from(&v, tables.VehicleViolationsDaily, "day, vehicle_id, rule, alerts, company, last_start", func(q *sqlText, spans [][2]time.Time) {
		s.violationsDays(q, spans, zone, aq.Vehicles)
	}); err != nil {
		return nil, err
	}
	v.add(" GROUP BY k_period, vehicle_id")
	if err := s.periodRows(ctx, &v, "the violations per vehicle", func(scan func(dest ...any) error) error {
		var p, veh, company string
		var rules []string
		var ns []uint64
		if err := scan(&p, &veh, &rules, &ns, &company); err != nil {
			return err
		}
		a := get(p, veh)
		for i, rule := range rules {
			a.Violations[rule] += ns[i]
		}
		a.Company = company
		return nil
	}); err != nil {
		return nil, err
	}

	// trips: gate exits from a construction site
	if len(aq.ConstructionSites) > 0 {
		var t sqlText
		t.add("SELECT k_period, vehicle_id, sum(arraySum(arrayMap((site, n) -> if(has(?, site), n, 0), site_ids, site_exits)))", aq.ConstructionSites)
		if err := from(&t, tables.VehicleExitsDaily, "day, vehicle_id, site_ids, site_exits", func(q *sqlText, spans [][2]time.Time) {
			s.exitsDays(q, spans, zone, aq.Vehicles)
		}); err != nil {
			return nil, err
		}
		t.add(" GROUP BY k_period, vehicle_id")
		if err := s.periodRows(ctx, &t, "the trips per vehicle", func(scan func(dest ...any) error) error {
			var p, veh string
			var n uint64
			if err := scan(&p, &veh, &n); err != nil {
				return err
			}
			get(p, veh).Trips = n
			return nil
		}); err != nil {
			return nil, err
		}
	}

	// km: the days rolled up, and the others from their hours rolled up and positions
	done, err := s.rolledDaysOf(ctx, tables.VehicleKmDaily, "vehicle_id = ''", aq.From.In(aq.Location).Format(time.DateOnly), aq.To.In(aq.Location).Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	marked := map[string]bool{}
	for _, d := range done {
		marked[d] = true
	}
	plan := planDays(aq.From, aq.To, aq.Location, marked)
	k := tables.VehicleKmDaily
	var km sqlText
	km.add("SELECT " + dayPeriodExpr(aq.Interval, "k_day") + " AS k_period, k_vehicle, sum(k_km) FROM (")
	unionAll(&km, func(p *sqlText) bool {
		if len(plan.rolled) == 0 {
			return false
		}
		runs := make([]string, len(plan.rolled))
		var args []any
		for i, r := range plan.rolled {
			runs[i] = k.Col("day") + " >= toDate(?) AND " + k.Col("day") + " < toDate(?)"
			args = append(args, r[0], r[1])
		}
		// FINAL keeps each day's and vehicle's newest roll-up, as argMax(km, rolled_at) would,
		// without a GROUP BY over every vehicle and day (several times faster)
		p.add("SELECT "+k.Col("day")+" AS k_day, "+k.Col("vehicle_id")+" AS k_vehicle, "+k.Col("km")+" AS k_km FROM "+k.In(s.db)+
			" FINAL WHERE ("+strings.Join(runs, " OR ")+") AND "+k.Col("vehicle_id")+" != ''", args...)
		if len(aq.Vehicles) > 0 {
			p.add(" AND has(?, "+k.Col("vehicle_id")+")", aq.Vehicles)
		}
		return true
	}, func(p *sqlText) bool {
		if len(plan.raw) == 0 {
			return false
		}
		// the days not rolled up: their ended hours from vehicle_km_hourly, the rest from positions
		if err = s.kmDays(ctx, p, plan.raw, zone, aq.Vehicles); err != nil {
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	km.add(") GROUP BY k_period, k_vehicle")
	if err := s.periodRows(ctx, &km, "the km per vehicle", func(scan func(dest ...any) error) error {
		var p, veh string
		var n float64
		if err := scan(&p, &veh, &n); err != nil {
			return err
		}
		get(p, veh).Km = n
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]VehicleActivity, 0, len(acts))
	for _, a := range acts {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(x, y VehicleActivity) int {
		if c := strings.Compare(x.Period, y.Period); c != 0 {
			return c
		}
		return strings.Compare(x.Vehicle, y.Vehicle)
	})
	return out, nil
}
