package api

// Analysts' endpoints: the history of violations, a vehicle's track and the violation heatmap,
// read from ClickHouse.
//
// The alerts table keeps one row per alert version (ReplacingMergeTree(version)) and merges them
// only eventually, so every query here first reduces it to the newest version of each alert
// (GROUP BY id with argMax(…, version)): an alert counts once however many versions are stored.
// An alert's id is derived from its rule, vehicle and start, so those columns are the same in
// every version and are grouped on beside id, and filters on them go inside the reduction (where
// they use the table's key and partitions); filters on what may change (severity, company, place,
// district) apply to the newest version, outside it.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
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
	// Limit bounds the alerts listed or the groups counted.
	Limit int
}

// ViolationRecord is the newest version of one alert.
type ViolationRecord struct {
	AlertID, Rule, Severity, Status, VehicleID, Company, PermitID, Place, District string
	// StartMs and EndMs are Unix milliseconds; EndMs is 0 while the alert is open.
	StartMs, EndMs         int64
	Lat, Lon, Value, Limit float64
	Evidence               string
}

// ViolationGroup is the count of violations with one combination of group keys.
type ViolationGroup struct {
	// Keys are the values of ViolationQuery.GroupBy, in that order, as the answer shows them.
	Keys       []string
	Violations uint64
}

// groupKey is a key violations can be counted by: an expression over the columns of
// latestAlertsColumns, which takes the time zone as its parameter when zoned.
type groupKey struct {
	name, expr string
	zoned      bool
	// unixHour: the expression is the Unix second of an hour, shown as RFC 3339 in the zone.
	unixHour bool
}

var groupKeys = []groupKey{
	{name: "day", expr: "toString(toDate(start_time, ?))", zoned: true},
	{name: "hour", expr: "toUInt32(toStartOfHour(start_time, ?))", zoned: true, unixHour: true},
	{name: "rule", expr: "rule"},
	{name: "severity", expr: "sev"},
	{name: "company", expr: "comp"},
	{name: "district", expr: "dist"},
	{name: "site", expr: "plc"},
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

// latestAlertsColumns reduce the alerts table to the newest version of each alert. The aliases
// differ from the column names on purpose: an alias equal to the column it aggregates would be
// read as the aggregate inside itself.
const latestAlertsColumns = `id, rule, vehicle_id, start_time, start_ms,
		argMax(severity, version) AS sev, argMax(status, version) AS stat, argMax(company, version) AS comp,
		argMax(permit_id, version) AS permit, argMax(place, version) AS plc, argMax(district, version) AS dist,
		argMax(end_ms, version) AS stop_ms, argMax(lat, version) AS alat, argMax(lon, version) AS alon,
		argMax(value, version) AS val, argMax(limit_value, version) AS lim, argMax(evidence, version) AS evid`

// latestAlertsGroupBy groups on id and the columns that never change for an id.
const latestAlertsGroupBy = " GROUP BY id, rule, vehicle_id, start_time, start_ms"

// violationColumns are what a ViolationRecord is scanned from, in scanViolations' order.
const violationColumns = "id, rule, sev, stat, vehicle_id, comp, permit, plc, dist, start_ms, stop_ms, alat, alon, val, lim, evid"

// with extra conditions on the columns of latestAlertsColumns.
func (s *Store) fromLatestAlerts(q *sqlText, vq ViolationQuery, extra ...string) {
	// start_time (seconds) selects partitions; start_ms makes the bounds exact.
	q.add(" FROM (SELECT "+latestAlertsColumns+" FROM "+s.db+".alerts"+
		" WHERE start_time >= toDateTime(?) AND start_time <= toDateTime(?) AND start_ms >= ? AND start_ms < ?",
		unixSeconds(vq.From), unixSeconds(vq.To), vq.From.UnixMilli(), vq.To.UnixMilli())
	var inner conditions
	inner.in("rule", vq.Rules)
	if vq.Vehicle != "" {
		inner.add("vehicle_id = ?", vq.Vehicle)
	}
	if len(inner.parts) > 0 {
		q.add(" AND "+strings.Join(inner.parts, " AND "), inner.args...)
	}
	q.add(latestAlertsGroupBy + ")")
	var outer conditions
	outer.in("sev", vq.Severities)
	outer.in("dist", vq.Districts)
	if vq.Company != "" {
		outer.add("comp = ?", vq.Company)
	}
	if vq.Site != "" {
		outer.add("plc = ?", vq.Site)
	}
	for _, e := range extra {
		outer.add(e)
	}
	outer.appendTo(q)
}

// Violations returns the newest version of the alerts vq selects, newest first, up to vq.Limit,
// and how many alerts it selects in all.
func (s *Store) Violations(ctx context.Context, vq ViolationQuery) ([]ViolationRecord, uint64, error) {
	var count sqlText
	count.add("SELECT count()")
	s.fromLatestAlerts(&count, vq)
	var total uint64
	if err := s.conn.QueryRow(ctx, count.String(), count.args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("cannot count the violations: %w", err)
	}
	var list sqlText
	list.add("SELECT " + violationColumns)
	s.fromLatestAlerts(&list, vq)
	list.add(" ORDER BY start_ms DESC, id LIMIT ?", vq.Limit)
	recs, err := s.scanViolations(ctx, &list)
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
func (s *Store) VehicleAlerts(ctx context.Context, plate string, from, to time.Time, limit int) ([]ViolationRecord, error) {
	var q sqlText
	q.add("SELECT "+violationColumns+" FROM (SELECT "+latestAlertsColumns+" FROM "+s.db+".alerts"+
		" WHERE vehicle_id = ? AND start_time <= toDateTime(?) AND start_ms < ?"+latestAlertsGroupBy+")"+
		" WHERE stop_ms = 0 OR stop_ms >= ? ORDER BY start_ms, id LIMIT ?",
		plate, unixSeconds(to), to.UnixMilli(), from.UnixMilli(), limit)
	recs, err := s.scanViolations(ctx, &q)
	if err != nil {
		return nil, fmt.Errorf("cannot read the alerts of %s: %w", plate, err)
	}
	return recs, nil
}

func (s *Store) scanViolations(ctx context.Context, q *sqlText) ([]ViolationRecord, error) {
	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ViolationRecord{}
	for rows.Next() {
		var v ViolationRecord
		if err := rows.Scan(&v.AlertID, &v.Rule, &v.Severity, &v.Status, &v.VehicleID, &v.Company, &v.PermitID, &v.Place,
			&v.District, &v.StartMs, &v.EndMs, &v.Lat, &v.Lon, &v.Value, &v.Limit, &v.Evidence); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// TrackPoint is one stored fix of a vehicle.
type TrackPoint struct {
	TimeMs   int64
	Lat, Lon float64
}

// Track returns plate's fixes with from <= time < to, each fix once, in time order, up to
// limit.
func (s *Store) Track(ctx context.Context, plate string, from, to time.Time, limit int) ([]TrackPoint, error) {
	var q sqlText
	q.add("SELECT t, la, lo FROM (SELECT fix_id, any(ts_ms) AS t, any(lat) AS la, any(lon) AS lo FROM "+s.db+".positions"+
		" WHERE vehicle_id = ? AND ts >= toDateTime(?) AND ts <= toDateTime(?) AND ts_ms >= ? AND ts_ms < ?"+
		" GROUP BY fix_id) ORDER BY t, fix_id LIMIT ?",
		plate, unixSeconds(from), unixSeconds(to), from.UnixMilli(), to.UnixMilli(), limit)
	rows, err := s.conn.Query(ctx, q.String(), q.args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read the track of %s: %w", plate, err)
	}
	defer rows.Close()
	out := []TrackPoint{}
	for rows.Next() {
		var p TrackPoint
		if err := rows.Scan(&p.TimeMs, &p.Lat, &p.Lon); err != nil {
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
	From, To   time.Time
	Rules      []string
	DLat, DLon float64
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
	var q sqlText
	q.add("SELECT toInt64(floor(alat / ?)) AS cy, toInt64(floor(alon / ?)) AS cx, count() AS n", hq.DLat, hq.DLon)
	s.fromLatestAlerts(&q, ViolationQuery{From: hq.From, To: hq.To, Rules: hq.Rules}, "NOT (alat = 0 AND alon = 0)")
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
