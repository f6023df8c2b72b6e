package api

// The analysts' queries: the history of violations, a vehicle's track and the violation
// heatmap, read from ClickHouse (the reduction of alerts to their newest versions is in
// alert_rows.go).

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/tables"
)

// ViolationQuery selects the violations (alerts) that started within a window.
type ViolationQuery struct {
	// From and To bound the start of the violations: From <= start < To.
	From, To time.Time
	// Rules, Severities and Districts select any of the values listed; empty selects all.
	Rules, Severities, Districts []string
	// Company, Site (the alert's place) and Vehicle (a normalised plate) select that value;
	// empty selects all.
	Company, Site, Vehicle string
	// GroupBy lists the keys to count by (see ViolationGroupKeys) in the order of the answer's
	// columns; empty lists the alerts themselves.
	GroupBy []string
	// Location is the time zone of the day and hour keys; it must have an IANA name.
	Location *time.Location
	// Limit bounds the alerts listed or the groups counted; Offset skips as many alerts first.
	Limit, Offset int
}

// ViolationGroup is the count of violations with one combination of group keys.
type ViolationGroup struct {
	// Keys are the values of ViolationQuery.GroupBy, in that order, as the answer shows them.
	Keys       []string
	Violations uint64
}

// groupKey is a key violations can be counted by: an expression over the newest version of the
// alerts (see latest), which takes the time zone as its parameter when zoned.
type groupKey struct {
	name, expr string
	zoned      bool
	// unixHour: the expression is the Unix second of an hour, shown as RFC 3339 in the zone.
	unixHour bool
}

var groupKeys = []groupKey{
	{name: "day", expr: "toString(toDate(" + latest("start_time") + ", ?))", zoned: true},
	{name: "hour", expr: "toUInt32(toStartOfHour(" + latest("start_time") + ", ?))", zoned: true, unixHour: true},
	{name: "rule", expr: latest("rule")},
	{name: "severity", expr: latest("severity")},
	{name: "company", expr: latest("company")},
	{name: "district", expr: latest("district")},
	{name: "site", expr: latest("place")},
}

// ViolationGroupKeys returns the keys violations can be grouped by.
func ViolationGroupKeys() []string {
	out := make([]string, len(groupKeys))
	for i, k := range groupKeys {
		out[i] = k.name
	}
	return out
}

func lookupGroupKey(name string) (groupKey, bool) {
	for _, k := range groupKeys {
		if k.name == name {
			return k, true
		}
	}
	return groupKey{}, false
}

// fromLatestAlerts appends to q " FROM (the newest version of every alert vq selects) WHERE …",
// with extra conditions on the columns of the newest version (see latest).
func (s *Store) fromLatestAlerts(q *sqlText, vq ViolationQuery, extra ...string) {
	t := tables.Alerts
	// start_time (seconds) selects partitions; start_ms makes the bounds exact.
	start, startMs := t.Col("start_time"), t.Col("start_ms")
	q.add(" FROM (SELECT "+latestAlertsSelect+" FROM "+t.In(s.db)+
		" WHERE "+start+" >= toDateTime(?) AND "+start+" <= toDateTime(?) AND "+startMs+" >= ? AND "+startMs+" < ?",
		unixSeconds(vq.From), unixSeconds(vq.To), vq.From.UnixMilli(), vq.To.UnixMilli())
	var inner conditions
	inner.in(t.Col("rule"), vq.Rules)
	if vq.Vehicle != "" {
		inner.add(t.Col("vehicle_id")+" = ?", vq.Vehicle)
	}
	if len(inner.parts) > 0 {
		q.add(" AND "+strings.Join(inner.parts, " AND "), inner.args...)
	}
	q.add(latestAlertsGroupBy + ")")
	var outer conditions
	outer.in(latest("severity"), vq.Severities)
	outer.in(latest("district"), vq.Districts)
	if vq.Company != "" {
		outer.add(latest("company")+" = ?", vq.Company)
	}
	if vq.Site != "" {
		outer.add(latest("place")+" = ?", vq.Site)
	}
	for _, e := range extra {
		outer.add(e)
	}
	outer.appendTo(q)
}

// Violations returns the newest version of the alerts vq selects, newest first, up to vq.Limit,
// and how many alerts it selects in all.
func (s *Store) Violations(ctx context.Context, vq ViolationQuery) ([]detectors.Alert, uint64, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	var count sqlText
	count.add("SELECT count()")
	s.fromLatestAlerts(&count, vq)
	var total uint64
	if err := s.conn.QueryRow(ctx, count.String(), count.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("cannot count the violations: %w", err)
	}
	var list sqlText
	list.add("SELECT " + latestAlertList)
	s.fromLatestAlerts(&list, vq)
	list.add(" ORDER BY "+latest("start_ms")+" DESC, "+latest("id")+" LIMIT ?, ?", vq.Offset, vq.Limit)
	recs, err := s.scanAlerts(ctx, &list)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot read the violations: %w", err)
	}
	return recs, total, nil
}

// ViolationGroups counts the alerts vq selects by vq.GroupBy, ordered by the keys, up to
// vq.Limit groups; truncated reports that there were more.
func (s *Store) ViolationGroups(ctx context.Context, vq ViolationQuery) (groups []ViolationGroup, truncated bool, err error) {
	if len(vq.GroupBy) == 0 {
		return nil, false, errors.New("cannot count the violations by nothing: GroupBy is empty")
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	zone := ""
	if vq.Location != nil {
		zone = vq.Location.String()
	}
	keys := make([]groupKey, len(vq.GroupBy))
	aliases := make([]string, len(vq.GroupBy))
	var q sqlText
	q.add("SELECT ")
	for i, name := range vq.GroupBy {
		k, ok := lookupGroupKey(name)
		if !ok {
			return nil, false, fmt.Errorf("cannot count the violations by %q: not one of %s", name, strings.Join(ViolationGroupKeys(), ", "))
		}
		keys[i], aliases[i] = k, "g_"+k.name
		if k.zoned {
			if zone == "" || zone == "Local" {
				return nil, false, fmt.Errorf("cannot count the violations by %s: the time zone %q has no IANA name", k.name, zone)
			}
			q.add(k.expr+" AS "+aliases[i]+", ", zone)
		} else {
			q.add(k.expr + " AS " + aliases[i] + ", ")
		}
	}
	q.add("count() AS n")
	s.fromLatestAlerts(&q, vq)
	list := strings.Join(aliases, ", ")
	q.add(" GROUP BY "+list+" ORDER BY "+list+" LIMIT ?", vq.Limit+1)

	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, false, fmt.Errorf("cannot count the violations by %s: %w", strings.Join(vq.GroupBy, ", "), err)
	}
	defer rows.Close()
	strs := make([]string, len(keys))
	hours := make([]uint32, len(keys))
	dest := make([]any, len(keys)+1)
	for i, k := range keys {
		if k.unixHour {
			dest[i] = &hours[i]
		} else {
			dest[i] = &strs[i]
		}
	}
	var n uint64
	dest[len(keys)] = &n
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, false, fmt.Errorf("cannot read the violations by %s: %w", strings.Join(vq.GroupBy, ", "), err)
		}
		if len(groups) == vq.Limit {
			truncated = true
			break
		}
		g := ViolationGroup{Keys: make([]string, len(keys)), Violations: n}
		for i, k := range keys {
			if k.unixHour {
				g.Keys[i] = formatTime(time.Unix(int64(hours[i]), 0), vq.Location)
			} else {
				g.Keys[i] = strs[i]
			}
		}
		groups = append(groups, g)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("cannot read the violations by %s: %w", strings.Join(vq.GroupBy, ", "), err)
	}
	return groups, truncated, nil
}

// VehicleAlerts returns the newest version of the alerts of plate that overlap [from, to): they
// started before to and were open at from or ended after it. Oldest first, up to limit.
func (s *Store) VehicleAlerts(ctx context.Context, plate string, from, to time.Time, limit int) ([]detectors.Alert, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	t := tables.Alerts
	end := latest("end_ms")
	var q sqlText
	q.add("SELECT "+latestAlertList+" FROM (SELECT "+latestAlertsSelect+" FROM "+t.In(s.db)+
		" WHERE "+t.Col("vehicle_id")+" = ? AND "+t.Col("start_time")+" <= toDateTime(?) AND "+t.Col("start_ms")+" < ?"+latestAlertsGroupBy+")"+
		" WHERE "+end+" = 0 OR "+end+" >= ? ORDER BY "+latest("start_ms")+", "+latest("id")+" LIMIT ?",
		plate, unixSeconds(to), to.UnixMilli(), from.UnixMilli(), limit)
	recs, err := s.scanAlerts(ctx, &q)
	if err != nil {
		return nil, fmt.Errorf("cannot read the alerts of %s: %w", plate, err)
	}
	return recs, nil
}

// scanAlerts runs q, which selects latestAlertList, and returns the alerts it reads.
func (s *Store) scanAlerts(ctx context.Context, q *sqlText) ([]detectors.Alert, error) {
	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []detectors.Alert{}
	r := newAlertRow()
	for rows.Next() {
		if err := rows.Scan(r.dest...); err != nil {
			return nil, err
		}
		out = append(out, r.alert())
	}
	return out, rows.Err()
}

// TrackPoint is one stored fix of a vehicle.
type TrackPoint struct {
	TimeMs   int64
	Lat, Lon float64
	SpeedKmh float32
}

// Track returns plate's fixes with from <= time < to, each fix once, in time order, up to
// limit.
func (s *Store) Track(ctx context.Context, plate string, from, to time.Time, limit int) ([]TrackPoint, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	t := tables.Positions
	id, ts, tsMs := t.Col("fix_id"), t.Col("ts"), t.Col("ts_ms")
	var q sqlText
	q.add("SELECT t, la, lo, sp FROM (SELECT "+id+", any("+tsMs+") AS t, any("+t.Col("lat")+") AS la, any("+t.Col("lon")+") AS lo, any("+t.Col("speed_kmh")+") AS sp FROM "+t.In(s.db)+
		" WHERE "+t.Col("vehicle_id")+" = ? AND "+ts+" >= toDateTime(?) AND "+ts+" <= toDateTime(?) AND "+tsMs+" >= ? AND "+tsMs+" < ?"+
		" GROUP BY "+id+") ORDER BY t, "+id+" LIMIT ?",
		plate, unixSeconds(from), unixSeconds(to), from.UnixMilli(), to.UnixMilli(), limit)
	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read the track of %s: %w", plate, err)
	}
	defer rows.Close()
	out := []TrackPoint{}
	for rows.Next() {
		var p TrackPoint
		if err := rows.Scan(&p.TimeMs, &p.Lat, &p.Lon, &p.SpeedKmh); err != nil {
			return nil, fmt.Errorf("cannot read the track of %s: %w", plate, err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the track of %s: %w", plate, err)
	}
	return out, nil
}

// HeatmapQuery selects the violations to count on a grid of DLat × DLon degree cells.
type HeatmapQuery struct {
	From, To                     time.Time
	Rules, Severities, Districts []string
	DLat, DLon                   float64
	// Limit bounds the cells returned.
	Limit int
}

// HeatCell is one grid cell: it spans latitudes [Row·DLat, (Row+1)·DLat) and longitudes
// [Col·DLon, (Col+1)·DLon).
type HeatCell struct {
	Row, Col   int64
	Violations uint64
}

// Heatmap counts the distinct alerts hq selects by the grid cell of where they started, ordered
// by row then column, up to hq.Limit cells. Alerts without a position (0, 0) are left out.
func (s *Store) Heatmap(ctx context.Context, hq HeatmapQuery) ([]HeatCell, error) {
	if !(hq.DLat > 0) || !(hq.DLon > 0) || math.IsInf(hq.DLat, 0) || math.IsInf(hq.DLon, 0) {
		return nil, fmt.Errorf("cannot count the violations on a grid of %g × %g degrees: the cells must be positive", hq.DLat, hq.DLon)
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	lat, lon := latest("lat"), latest("lon")
	var q sqlText
	q.add("SELECT toInt64(floor("+lat+" / ?)) AS cy, toInt64(floor("+lon+" / ?)) AS cx, count() AS n", hq.DLat, hq.DLon)
	s.fromLatestAlerts(&q, ViolationQuery{From: hq.From, To: hq.To, Rules: hq.Rules, Severities: hq.Severities, Districts: hq.Districts}, "NOT ("+lat+" = 0 AND "+lon+" = 0)")
	q.add(" GROUP BY cy, cx ORDER BY cy, cx LIMIT ?", hq.Limit)
	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot count the violations per grid cell: %w", err)
	}
	defer rows.Close()
	out := []HeatCell{}
	for rows.Next() {
		var c HeatCell
		if err := rows.Scan(&c.Row, &c.Col, &c.Violations); err != nil {
			return nil, fmt.Errorf("cannot read the violations per grid cell: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the violations per grid cell: %w", err)
	}
	return out, nil
}
