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

// handlingCols are the columns of one alert's handling (handlingAlerts, alert_handling): its key
// (cityHash64 of the id: a fixed-size key hashes and joins several times faster than the id),
// start (DateTime and ms), district (the newest version's), deadline (ms, by the severity it
// opened with), and the ms of the first action of each kind (0 when none), the dismissal's
// reason, the resolution's outcome and the officer dispatched last.
const handlingCols = "k_id, k_time, k_start, k_district, k_deadline, h_first, h_dispatch, h_ack, h_resolve, h_dismiss, h_reason, h_outcome, h_officer"

// handlingAlerts appends to q a subquery of handlingCols, one row per alert that started in
// [from, to), read from alerts and alert_actions, leaving out the alerts whose day (in zone) is
// one of skip.
func (s *Store) handlingAlerts(q *sqlText, from, to time.Time, ack AckWithin, zone string, skip []string) {
	a, act := tables.Alerts, tables.AlertActions
	start, startMs := a.Col("start_time"), a.Col("start_ms")
	q.add("(SELECT "+handlingCols+" FROM (SELECT cityHash64("+a.Col("id")+") AS k_id, any("+start+") AS k_time, any("+startMs+") AS k_start,"+
		" argMax("+a.Col("district")+", "+a.Col("version")+") AS k_district,"+
		" multiIf(argMin("+a.Col("severity")+", "+a.Col("version")+") = 'severe', ?, argMin("+a.Col("severity")+", "+a.Col("version")+") = 'warning', ?, ?) AS k_deadline"+
		" FROM "+a.In(s.db)+" WHERE "+start+" >= toDateTime(?) AND "+start+" <= toDateTime(?) AND "+startMs+" >= ? AND "+startMs+" < ?",
		ack.Severe.Milliseconds(), ack.Warning.Milliseconds(), ack.Info.Milliseconds(),
		unixSeconds(from), unixSeconds(to), from.UnixMilli(), to.UnixMilli())
	if len(skip) > 0 {
		q.add(" AND NOT has(?, toString(toDate("+start+", ?)))", skip, zone)
	}
	at, action, reason := act.Col("at_ms"), act.Col("action"), act.Col("reason")
	q.add(" GROUP BY k_id) AS k_alerts ANY LEFT JOIN (SELECT cityHash64("+act.Col("alert_id")+") AS k_id, min("+at+") AS h_first,"+
		" minIf("+at+", "+action+" = 'dispatch') AS h_dispatch, minIf("+at+", "+action+" = 'acknowledge') AS h_ack,"+
		" minIf("+at+", "+action+" = 'resolve') AS h_resolve, minIf("+at+", "+action+" = 'dismiss') AS h_dismiss,"+
		" anyIf("+reason+", "+action+" = 'dismiss') AS h_reason, anyIf("+reason+", "+action+" = 'resolve') AS h_outcome,"+
		" argMaxIf("+act.Col("officer_id")+", "+at+", "+action+" = 'dispatch') AS h_officer"+
		" FROM "+act.In(s.db)+" WHERE "+act.Col("at")+" >= toDateTime(?) AND "+at+" >= ? GROUP BY k_id) AS k_handling USING k_id)",
		unixSeconds(from), from.UnixMilli())
}

// handlingFrom appends to q " FROM (one row per alert hq selects, with its handling)": the
// handlingCols, k_period and k_key. The alerts of the days rolled up (rolled, in
// alert_handling) are read from there, the others from alerts and alert_actions.
func (s *Store) handlingFrom(q *sqlText, hq HandlingQuery, rolled []string) error {
	zone := hq.Location.String()
	period, zoned := periodExpr(hq.Interval, "k_time")
	var key string
	var keyArgs []any
	switch hq.By {
	case "district":
		key = "k_district"
	case "unit":
		// the team of the officer dispatched last; without one, the district's grid staff
		grid := "concat('grid-staff:', if(k_district = '', 'unassigned', k_district))"
		if len(hq.GridStaff) > 0 {
			ds, cs := mapArrays(hq.GridStaff)
			grid = "transform(k_district, ?, ?, " + grid + ")"
			keyArgs = append(keyArgs, ds, cs)
		}
		officer := "concat('officer:', h_officer)"
		if len(hq.Teams) > 0 {
			os, ts := mapArrays(hq.Teams)
			officer = "transform(h_officer, ?, ?, " + officer + ")"
			keyArgs = append(keyArgs, os, ts)
		}
		key = "if(h_officer = '', " + grid + ", " + officer + ")"
	default:
		return fmt.Errorf("cannot count the handling by %q: not district or unit", hq.By)
	}
	q.add(" FROM (SELECT *, "+key+" AS k_key", keyArgs...)
	q.add(", "+period+" AS k_period FROM ", zoneArgs(zoned, zone)...)
	if len(rolled) > 0 {
		h := tables.AlertHandling
		q.add("(SELECT "+handlingCols+" FROM "+h.In(s.db)+" WHERE "+h.Col("day")+" >= toDate(?) AND "+h.Col("day")+" < toDate(?) AND has(?, toString("+h.Col("day")+"))"+
			" AND k_id != 0 AND k_start >= ? AND k_start < ? UNION ALL SELECT "+handlingCols+" FROM ",
			rolled[0], dayAfter(rolled[len(rolled)-1]), rolled, hq.From.UnixMilli(), hq.To.UnixMilli())
		s.handlingAlerts(q, hq.From, hq.To, hq.AckWithin, zone, rolled)
		q.add(")")
	} else {
		s.handlingAlerts(q, hq.From, hq.To, hq.AckWithin, zone, nil)
	}
	q.add(")")
	var where conditions
	where.in("k_district", hq.Districts)
	where.appendTo(q)
	return nil
}

// dayAfter is the day after d (YYYY-MM-DD).
func dayAfter(d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return d
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// RollUpHandling writes the handling of the alerts that started on the days [from, to)
// (midnights in loc) to alert_handling, with a row of key 0 marking each day done.
func (s *Store) RollUpHandling(ctx context.Context, from, to time.Time, loc *time.Location, ack AckWithin, now time.Time) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	h := tables.AlertHandling
	days := 0
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		days++
	}
	var q sqlText
	q.add(h.Insert(s.db)+" SELECT toDate(k_time, ?), "+handlingCols+", toDateTime(?) FROM ", loc.String(), unixSeconds(now))
	s.handlingAlerts(&q, from, to, ack, loc.String(), nil)
	q.add(" UNION ALL SELECT toDate(?) + number, toUInt64(0), toDateTime(0), toInt64(0), '', toInt64(0), toInt64(0), toInt64(0), toInt64(0), toInt64(0), toInt64(0), '', '', '', toDateTime(?)"+
		" FROM system.numbers LIMIT ?", from.Format(time.DateOnly), unixSeconds(now), days)
	if err := s.conn.Exec(ctx, q.String(), q.args...); err != nil {
		return fmt.Errorf("cannot roll up the handling of %s to %s into %s: %w", from.Format(time.DateOnly), to.Format(time.DateOnly), h.Name, err)
	}
	return nil
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
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	fromDay := dayFloor(hq.From, hq.Location)
	rolled, err := s.rolledDaysOf(ctx, tables.AlertHandling, "k_id = 0", fromDay.Format(time.DateOnly), dayCeil(hq.To, hq.Location).Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	var q sqlText
	q.add("SELECT k_period, k_key, count() AS raised, countIf(h_dispatch > 0) AS dispatched, countIf(h_ack > 0) AS acknowledged," +
		" countIf(h_resolve > 0) AS resolved, countIf(h_dismiss > 0) AS dismissed, countIf(h_first > 0) AS acted," +
		" countIf(h_first > 0 AND h_first - k_start <= k_deadline) AS within_deadline,")
	q.add(" countIf(h_first - k_start > k_deadline OR (h_first = 0 AND k_start + k_deadline <= ?)) AS overdue,", hq.NowMs)
	q.add(" countIf(h_resolve > 0 AND h_outcome != '') AS closed_loop," +
		" toFloat64(quantileExactIf(0.5)(h_first - k_start, h_first > 0)) AS first_p50, toFloat64(quantileExactIf(0.9)(h_first - k_start, h_first > 0)) AS first_p90," +
		" toFloat64(quantileExactIf(0.5)(h_resolve - k_start, h_resolve > 0)) AS resolve_p50, toFloat64(quantileExactIf(0.9)(h_resolve - k_start, h_resolve > 0)) AS resolve_p90," +
		" groupArrayIf(h_reason, h_dismiss > 0) AS reasons")
	if err := s.handlingFrom(&q, hq, rolled); err != nil {
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
		var reasons []string
		if err := rows.Scan(&r.Period, &r.Key, &r.Raised, &r.Dispatched, &r.Acknowledged, &r.Resolved, &r.Dismissed, &r.Acted,
			&r.WithinDeadline, &r.Overdue, &r.ClosedLoop, &r.FirstActionP50, &r.FirstActionP90, &r.ResolutionP50, &r.ResolutionP90, &reasons); err != nil {
			return nil, fmt.Errorf("cannot read the handling by %s: %w", hq.By, err)
		}
		for _, p := range []*float64{&r.FirstActionP50, &r.FirstActionP90, &r.ResolutionP50, &r.ResolutionP90} {
			*p /= 1000
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
// for the days [from, to) of zone (midnights), leaving out the days listed in skip.
func (s *Store) kmFromPositions(q *sqlText, from, to time.Time, zone string, skip []string, vehicles []string) {
	p := tables.Positions
	ts, tsMs := p.Col("ts"), p.Col("ts_ms")
	q.add("SELECT k_day, "+p.Col("vehicle_id")+", "+kmDayExpr+" AS km, toUInt64(length(k_pts)) AS fixes FROM (SELECT "+p.Col("vehicle_id")+", toDate("+ts+", ?) AS k_day,"+
		" arraySort(groupArray(("+tsMs+", "+p.Col("lat")+", "+p.Col("lon")+"))) AS k_pts FROM "+p.In(s.db)+
		" WHERE "+ts+" >= toDateTime(?) AND "+ts+" < toDateTime(?)", zone, unixSeconds(from), unixSeconds(to))
	if len(skip) > 0 {
		q.add(" AND NOT has(?, toString(toDate("+ts+", ?)))", skip, zone)
	}
	if len(vehicles) > 0 {
		q.add(" AND has(?, "+p.Col("vehicle_id")+")", vehicles)
	}
	q.add(" GROUP BY " + p.Col("vehicle_id") + ", k_day)")
}

// rolledDays lists the days of [from, to) (Date strings) that vehicle_km_daily holds.
func (s *Store) rolledDays(ctx context.Context, from, to string) ([]string, error) {
	return s.rolledDaysOf(ctx, tables.VehicleKmDaily, "vehicle_id = ''", from, to)
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
	s.kmFromPositions(&q, day, next, loc.String(), nil, nil)
	q.add(") UNION ALL SELECT toDate(?), '', toFloat64(0), toUInt64(0), toDateTime(?)", day.Format(time.DateOnly), unixSeconds(now))
	if err := s.conn.Exec(ctx, q.String(), q.args...); err != nil {
		return fmt.Errorf("cannot roll up the km of %s into %s: %w", day.Format(time.DateOnly), k.Name, err)
	}
	return nil
}

// MissingKmDays lists the days in [from, to) (midnights in loc) not rolled up yet into
// vehicle_km_daily.
func (s *Store) MissingKmDays(ctx context.Context, from, to time.Time, loc *time.Location) ([]time.Time, error) {
	return s.missingDays(ctx, tables.VehicleKmDaily, "vehicle_id = ''", from, to)
}

// MissingHandlingDays lists the days in [from, to) (midnights) not rolled up yet into
// alert_handling.
func (s *Store) MissingHandlingDays(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	return s.missingDays(ctx, tables.AlertHandling, "k_id = 0", from, to)
}

func (s *Store) missingDays(ctx context.Context, t *tables.Table, mark string, from, to time.Time) ([]time.Time, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	done, err := s.rolledDaysOf(ctx, t, mark, from.Format(time.DateOnly), to.Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		if !slices.Contains(done, d.Format(time.DateOnly)) {
			out = append(out, d)
		}
	}
	return out, nil
}

// Activity returns each vehicle's violations, trips and km per period, ordered by period and
// vehicle.
func (s *Store) Activity(ctx context.Context, aq ActivityQuery) ([]VehicleActivity, error) {
	if aq.Location == nil || aq.Location.String() == "Local" || aq.Location.String() == "" {
		return nil, fmt.Errorf("cannot read the vehicles' activity: the time zone has no IANA name")
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

	// violations: the distinct alerts by period, vehicle and rule, with the newest company
	a := tables.Alerts
	period, zoned := periodExpr(aq.Interval, "k_time")
	var v sqlText
	v.add("SELECT k_period, vehicle_id, rule, count(), argMax(k_company, k_start) FROM (SELECT *, "+period+" AS k_period", zoneArgs(zoned, zone)...)
	start, startMs := a.Col("start_time"), a.Col("start_ms")
	v.add(" FROM (SELECT cityHash64("+a.Col("id")+") AS k_id, "+a.Col("vehicle_id")+", "+a.Col("rule")+", any("+start+") AS k_time, any("+startMs+") AS k_start,"+
		" argMax("+a.Col("company")+", "+a.Col("version")+") AS k_company FROM "+a.In(s.db)+
		" WHERE "+start+" >= toDateTime(?) AND "+start+" <= toDateTime(?) AND "+startMs+" >= ? AND "+startMs+" < ?",
		unixSeconds(aq.From), unixSeconds(aq.To), aq.From.UnixMilli(), aq.To.UnixMilli())
	if len(aq.Vehicles) > 0 {
		v.add(" AND has(?, "+a.Col("vehicle_id")+")", aq.Vehicles)
	}
	v.add(" GROUP BY k_id, " + a.Col("vehicle_id") + ", " + a.Col("rule") + ")) GROUP BY k_period, vehicle_id, rule")
	rows, err := s.conn.Query(ctx, v.String(), v.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot count the violations per vehicle: %w", err)
	}
	for rows.Next() {
		var p, veh, rule, company string
		var n uint64
		if err := rows.Scan(&p, &veh, &rule, &n, &company); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cannot read the violations per vehicle: %w", err)
		}
		r := get(p, veh)
		r.Violations[rule] = n
		if company != "" {
			r.Company = company
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the violations per vehicle: %w", err)
	}

	// trips: gate exits from a construction site
	if len(aq.ConstructionSites) > 0 {
		e := tables.Events
		var t sqlText
		ts := e.Col("ts")
		tp, _ := periodExpr(aq.Interval, ts)
		t.add("SELECT "+tp+" AS k_period, "+e.Col("vehicle_id")+" AS k_vehicle, uniqExact("+e.Col("event_id")+") FROM "+e.In(s.db), zoneArgs(zoned, zone)...)
		t.add(" WHERE "+ts+" >= toDateTime(?) AND "+ts+" < toDateTime(?) AND "+e.Col("ts_ms")+" >= ? AND "+e.Col("ts_ms")+" < ?"+
			" AND "+e.Col("kind")+" = 'gate_exit' AND has(?, "+e.Col("site_id")+")",
			unixSeconds(aq.From), unixSeconds(aq.To), aq.From.UnixMilli(), aq.To.UnixMilli(), aq.ConstructionSites)
		if len(aq.Vehicles) > 0 {
			t.add(" AND has(?, "+e.Col("vehicle_id")+")", aq.Vehicles)
		}
		t.add(" GROUP BY k_period, k_vehicle")
		rows, err := s.conn.Query(ctx, t.String(), t.args...)
		if err != nil {
			return nil, fmt.Errorf("cannot count the trips per vehicle: %w", err)
		}
		for rows.Next() {
			var p, veh string
			var n uint64
			if err := rows.Scan(&p, &veh, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("cannot read the trips per vehicle: %w", err)
			}
			get(p, veh).Trips = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("cannot read the trips per vehicle: %w", err)
		}
	}

	// km: the days rolled up, and the others from positions
	fromDay, toDay := aq.From.In(aq.Location).Format(time.DateOnly), aq.To.In(aq.Location).Format(time.DateOnly)
	done, err := s.rolledDays(ctx, fromDay, toDay)
	if err != nil {
		return nil, err
	}
	k := tables.VehicleKmDaily
	var km sqlText
	km.add("SELECT " + dayPeriodExpr(aq.Interval, "k_day") + " AS k_period, k_vehicle, sum(k_km) FROM (")
	km.add("SELECT "+k.Col("day")+" AS k_day, "+k.Col("vehicle_id")+" AS k_vehicle, argMax("+k.Col("km")+", "+k.Col("rolled_at")+") AS k_km FROM "+k.In(s.db)+
		" WHERE "+k.Col("day")+" >= toDate(?) AND "+k.Col("day")+" < toDate(?) AND "+k.Col("vehicle_id")+" != ''", fromDay, toDay)
	if len(aq.Vehicles) > 0 {
		km.add(" AND has(?, "+k.Col("vehicle_id")+")", aq.Vehicles)
	}
	km.add(" GROUP BY k_day, k_vehicle UNION ALL SELECT k_day, vehicle_id, km FROM (")
	s.kmFromPositions(&km, aq.From, aq.To, zone, done, aq.Vehicles)
	km.add(")) GROUP BY k_period, k_vehicle")
	rows, err = s.conn.Query(ctx, km.String(), km.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot sum the km per vehicle: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p, veh string
		var n float64
		if err := rows.Scan(&p, &veh, &n); err != nil {
			return nil, fmt.Errorf("cannot read the km per vehicle: %w", err)
		}
		get(p, veh).Km = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the km per vehicle: %w", err)
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
