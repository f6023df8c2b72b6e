package api

// The km per vehicle and hour (007_km_hourly, docs/kpis.md "Speed"): the days not rolled up into
// vehicle_km_daily yet (today) are summed from their ended hours' roll-ups, and only the hours
// not rolled up (the one going on) are read from positions.

import (
	"context"
	"fmt"
	"time"

	"github.com/muckwatch/muckwatch/tables"
)

// hourSettle: an hour is rolled up once it ended this long ago (the fixes of its last minutes
// have been written by then).
const hourSettle = 5 * time.Minute

// kmStepsExpr is the km of the steps from each fix of array prev to the fix of array next at the
// same index ((ts_ms, lat, lon) tuples), a step faster than 150 km/h counting nothing.
func kmStepsExpr(prev, next string) string {
	return "arraySum(arrayMap((p, n) -> if(" + stepM + " * 24 <= tupleElement(n, 1) - tupleElement(p, 1), " + stepM + ", 0), " + prev + ", " + next + ")) / 1000"
}

// kmHoursFromPositions appends the SELECT of (k_day, k_hour, vehicle_id, km, fixes, k_first,
// k_last) computed from the positions of [from, to): per vehicle, day of zone and whole UTC hour,
// the km of the steps between its fixes and its first and last fix ((ts_ms, lat, lon)).
func (s *Store) kmHoursFromPositions(q *sqlText, from, to time.Time, zone string, vehicles []string) {
	p := tables.Positions
	ts, tsMs := p.Col("ts"), p.Col("ts_ms")
	q.add("SELECT k_day, k_hour, "+p.Col("vehicle_id")+", "+kmDayExpr+" AS km, toUInt64(length(k_pts)) AS fixes, k_pts[1] AS k_first, k_pts[-1] AS k_last FROM (SELECT "+
		p.Col("vehicle_id")+", toDate("+ts+", ?) AS k_day, toDateTime(intDiv(toUInt32("+ts+"), 3600) * 3600) AS k_hour,"+
		" arraySort(groupArray(("+tsMs+", "+p.Col("lat")+", "+p.Col("lon")+"))) AS k_pts FROM "+p.In(s.db)+
		" WHERE "+ts+" >= toDateTime(?) AND "+ts+" < toDateTime(?)", zone, unixSeconds(from), unixSeconds(to))
	if len(vehicles) > 0 {
		q.add(" AND has(?, "+p.Col("vehicle_id")+")", vehicles)
	}
	q.add(" GROUP BY " + p.Col("vehicle_id") + ", k_day, k_hour)")
}

// RollUpKmHour writes the km of every vehicle in the hour starting at hour (a whole UTC hour) to
// vehicle_km_hourly, with a row of vehicle "" marking the hour done, and replaces an earlier
// roll-up of it.
func (s *Store) RollUpKmHour(ctx context.Context, hour time.Time, loc *time.Location, now time.Time) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	k := tables.VehicleKmHourly
	var q sqlText
	q.add(k.Insert(s.db)+" SELECT k_day, k_hour, vehicle_id, km, fixes, tupleElement(k_first, 1), tupleElement(k_first, 2), tupleElement(k_first, 3),"+
		" tupleElement(k_last, 1), tupleElement(k_last, 2), tupleElement(k_last, 3), toDateTime(?) FROM (", unixSeconds(now))
	s.kmHoursFromPositions(&q, hour, hour.Add(time.Hour), loc.String(), nil)
	q.add(") UNION ALL SELECT toDate(toDateTime(?), ?), toDateTime(?), '', toFloat64(0), toUInt64(0), toInt64(0), toFloat64(0), toFloat64(0), toInt64(0), toFloat64(0), toFloat64(0), toDateTime(?)",
		unixSeconds(hour), loc.String(), unixSeconds(hour), unixSeconds(now))
	if err := s.conn.Exec(ctx, q.String(), q.args...); err != nil {
		return fmt.Errorf("cannot roll up the km of the hour from %s into %s: %w", hour.UTC().Format(time.RFC3339), k.Name, err)
	}
	return nil
}

// rolledHours returns the hours (unix seconds of their start) in [from, to) marked rolled up into
// vehicle_km_hourly.
func (s *Store) rolledHours(ctx context.Context, from, to time.Time) (map[int64]bool, error) {
	k := tables.VehicleKmHourly
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT toInt64(toUInt32("+k.Col("hour")+")) FROM "+k.In(s.db)+" WHERE "+k.Col("vehicle_id")+" = '' AND "+
		k.Col("hour")+" >= toDateTime(?) AND "+k.Col("hour")+" < toDateTime(?)", unixSeconds(from), unixSeconds(to))
	if err != nil {
		return nil, fmt.Errorf("cannot list the hours rolled up into %s: %w", k.Name, err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("cannot list the hours rolled up into %s: %w", k.Name, err)
		}
		out[h] = true
	}
	return out, rows.Err()
}

// MissingKmHours lists the whole UTC hours starting in [from, to) not rolled up yet into
// vehicle_km_hourly.
func (s *Store) MissingKmHours(ctx context.Context, from, to time.Time) ([]time.Time, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	from = hourCeil(from)
	done, err := s.rolledHours(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for h := from; h.Before(to); h = h.Add(time.Hour) {
		if !done[h.Unix()] {
			out = append(out, h)
		}
	}
	return out, nil
}

// hourCeil is the first whole UTC hour at or after t.
func hourCeil(t time.Time) time.Time {
	h := t.Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// kmDays appends to q the SELECT of (k_day, k_vehicle, k_km) of the spans (not rolled up into
// vehicle_km_daily): the hours wholly inside a span and rolled up are read from
// vehicle_km_hourly, the rest from positions, and each day's km is its hours' km plus the steps
// from each hour's last fix to the next hour's first.
func (s *Store) kmDays(ctx context.Context, q *sqlText, spans [][2]time.Time, zone string, vehicles []string) error {
	rolled, err := s.rolledHours(ctx, hourCeil(spans[0][0]), spans[len(spans)-1][1])
	if err != nil {
		return err
	}
	// runs of hours rolled up, and the spans read from positions
	var hours, raw [][2]time.Time
	add := func(runs *[][2]time.Time, a, b time.Time) {
		if n := len(*runs); n > 0 && (*runs)[n-1][1].Equal(a) {
			(*runs)[n-1][1] = b
		} else {
			*runs = append(*runs, [2]time.Time{a, b})
		}
	}
	for _, sp := range spans {
		for a := sp[0]; a.Before(sp[1]); {
			h := a.Truncate(time.Hour)
			b := minTime(h.Add(time.Hour), sp[1])
			if h.Equal(a) && b.Equal(h.Add(time.Hour)) && rolled[h.Unix()] {
				add(&hours, a, b)
			} else {
				add(&raw, a, b)
			}
			a = b
		}
	}
	k := tables.VehicleKmHourly
	q.add("SELECT k_day, vehicle_id AS k_vehicle, arraySum(arrayMap(x -> tupleElement(x, 2), k_hours)) + " +
		kmStepsExpr("arrayPopBack(arrayMap(x -> tupleElement(x, 4), k_hours))", "arrayPopFront(arrayMap(x -> tupleElement(x, 3), k_hours))") +
		" AS k_km FROM (SELECT k_day, vehicle_id, arraySort(groupArray((toUInt32(k_hour), km, k_first, k_last))) AS k_hours FROM (")
	unionAll(q, func(p *sqlText) bool {
		if len(hours) == 0 {
			return false
		}
		p.add("SELECT " + k.Col("day") + " AS k_day, " + k.Col("hour") + " AS k_hour, " + k.Col("vehicle_id") + " AS vehicle_id, " + k.Col("km") + " AS km, (" +
			k.Col("first_ms") + ", " + k.Col("first_lat") + ", " + k.Col("first_lon") + ") AS k_first, (" +
			k.Col("last_ms") + ", " + k.Col("last_lat") + ", " + k.Col("last_lon") + ") AS k_last FROM " + k.In(s.db) + " FINAL WHERE (")
		for i, r := range hours {
			if i > 0 {
				p.add(" OR ")
			}
			p.add(k.Col("hour")+" >= toDateTime(?) AND "+k.Col("hour")+" < toDateTime(?)", unixSeconds(r[0]), unixSeconds(r[1]))
		}
		p.add(") AND " + k.Col("vehicle_id") + " != ''")
		if len(vehicles) > 0 {
			p.add(" AND has(?, "+k.Col("vehicle_id")+")", vehicles)
		}
		return true
	}, func(p *sqlText) bool {
		if len(raw) == 0 {
			return false
		}
		for i, sp := range raw {
			if i > 0 {
				p.add(" UNION ALL ")
			}
			p.add("SELECT k_day, k_hour, vehicle_id, km, k_first, k_last FROM (")
			s.kmHoursFromPositions(p, sp[0], sp[1], zone, vehicles)
			p.add(")")
		}
		return true
	})
	q.add(") GROUP BY k_day, vehicle_id)")
	return nil
}
