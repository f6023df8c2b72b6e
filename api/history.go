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
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/city"
)

// ---------------------------------------------------------------------------------------------
// Queries

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

// sqlText is an SQL statement built in pieces, with its positional arguments kept in step.
type sqlText struct {
	b    strings.Builder
	args []any
}

// add appends sql, whose '?' placeholders take args in order.
func (q *sqlText) add(sql string, args ...any) {
	if n := strings.Count(sql, "?"); n != len(args) {
		panic(fmt.Sprintf("api: SQL fragment %q has %d placeholders and %d arguments", sql, n, len(args)))
	}
	q.b.WriteString(sql)
	q.args = append(q.args, args...)
}

func (q *sqlText) String() string { return q.b.String() }

// conditions are ANDed SQL conditions with their arguments.
type conditions struct {
	parts []string
	args  []any
}

func (c *conditions) add(cond string, args ...any) {
	c.parts = append(c.parts, cond)
	c.args = append(c.args, args...)
}

// in adds "col IN (?, …)" when vals is not empty.
func (c *conditions) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	c.add(col+" IN ("+ph+")", args...)
}

// appendTo appends " WHERE …" (or nothing) to q.
func (c *conditions) appendTo(q *sqlText) {
	if len(c.parts) == 0 {
		return
	}
	q.add(" WHERE "+strings.Join(c.parts, " AND "), c.args...)
}

// unixSeconds is t as a DateTime parameter (Unix seconds, clamped to DateTime's range) for
// toDateTime(?): a number binds the same whatever the server's time zone.
func unixSeconds(t time.Time) int64 {
	return min(max(t.Unix(), 0), math.MaxUint32)
}

// fromLatestAlerts appends to q " FROM (the newest version of every alert q selects) WHERE …",
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

// ---------------------------------------------------------------------------------------------
// Answers

// ViolationView is one violation as the analysts see it.
type ViolationView struct {
	AlertID   string    `json:"alert_id"`
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity"`
	Status    string    `json:"status"`
	VehicleID string    `json:"vehicle_id"`
	Company   string    `json:"company"`
	PermitID  string    `json:"permit_id"`
	Place     string    `json:"place"`
	District  string    `json:"district"`
	Start     string    `json:"start"`
	End       *string   `json:"end"` // null while open
	Lat       jsonFloat `json:"lat"`
	Lon       jsonFloat `json:"lon"`
	Value     jsonFloat `json:"value"`
	Limit     jsonFloat `json:"limit"`
	Evidence  string    `json:"evidence"`
}

// violationCSVHeader is the CSV header of a violations list: ViolationView's JSON names.
var violationCSVHeader = []string{"alert_id", "rule", "severity", "status", "vehicle_id", "company", "permit_id", "place",
	"district", "start", "end", "lat", "lon", "value", "limit", "evidence"}

func violationView(v ViolationRecord, loc *time.Location) ViolationView {
	out := ViolationView{AlertID: v.AlertID, Rule: v.Rule, Severity: v.Severity, Status: v.Status, VehicleID: v.VehicleID,
		Company: v.Company, PermitID: v.PermitID, Place: v.Place, District: v.District,
		Start: formatTime(time.UnixMilli(v.StartMs), loc), Lat: jsonFloat(v.Lat), Lon: jsonFloat(v.Lon),
		Value: jsonFloat(v.Value), Limit: jsonFloat(v.Limit), Evidence: v.Evidence}
	if v.EndMs != 0 {
		end := formatTime(time.UnixMilli(v.EndMs), loc)
		out.End = &end
	}
	return out
}

func (v ViolationView) csvRecord() []string {
	end := ""
	if v.End != nil {
		end = *v.End
	}
	return []string{csvText(v.AlertID), csvText(v.Rule), csvText(v.Severity), csvText(v.Status), csvText(v.VehicleID),
		csvText(v.Company), csvText(v.PermitID), csvText(v.Place), csvText(v.District), v.Start, end,
		v.Lat.String(), v.Lon.String(), v.Value.String(), v.Limit.String(), csvText(v.Evidence)}
}

// ViolationsAnswer is the answer of GET /api/v1/violations without group_by.
type ViolationsAnswer struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Total counts every violation selected; Violations holds up to limit of them, newest first.
	Total      uint64          `json:"total"`
	Violations []ViolationView `json:"violations"`
}

// ViolationGroupsAnswer is the answer of GET /api/v1/violations with group_by.
type ViolationGroupsAnswer struct {
	From    string     `json:"from"`
	To      string     `json:"to"`
	GroupBy []string   `json:"group_by"`
	Rows    []groupRow `json:"rows"`
	// Truncated: there were more groups than limit.
	Truncated bool `json:"truncated"`
}

// groupRow is one row of counts: {"<key>": "<value>", …, "violations": N}, keys in group_by
// order.
type groupRow struct {
	names []string
	ViolationGroup
}

func (g groupRow) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, name := range g.names {
		k, _ := json.Marshal(name)
		v, _ := json.Marshal(g.Keys[i])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		b.WriteByte(',')
	}
	b.WriteString(`"violations":`)
	b.WriteString(strconv.FormatUint(g.Violations, 10))
	b.WriteByte('}')
	return b.Bytes(), nil
}

// jsonFloat is a float that is null in JSON (and empty in CSV) when it is not a finite number.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(f))
}

func (f jsonFloat) String() string {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return ""
	}
	return strconv.FormatFloat(float64(f), 'f', -1, 64)
}

// csvText defuses a text field that a spreadsheet would run as a formula (CSV injection): plates
// and evidence can come from devices. It prefixes such a field with an apostrophe.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// formatTime is t in loc as RFC 3339, with milliseconds when not whole seconds.
func formatTime(t time.Time, loc *time.Location) string {
	if loc != nil {
		t = t.In(loc)
	}
	if t.Nanosecond()/int(time.Millisecond) == 0 {
		return t.Format(time.RFC3339)
	}
	return t.Format("2006-01-02T15:04:05.000Z07:00")
}

// GeoJSON (RFC 7946) of the answers.
type featureCollection struct {
	Type     string    `json:"type"`
	Features []feature `json:"features"`
}

type feature struct {
	Type       string    `json:"type"`
	Geometry   *geometry `json:"geometry"` // null: no known location
	Properties any       `json:"properties"`
}

type geometry struct {
	Type        string `json:"type"`
	Coordinates any    `json:"coordinates"`
}

func newFeatureCollection() featureCollection {
	return featureCollection{Type: "FeatureCollection", Features: []feature{}}
}

// TrackProperties are the properties of a track's line.
type TrackProperties struct {
	Kind   string `json:"kind"` // "track"
	Plate  string `json:"plate"`
	From   string `json:"from"`
	To     string `json:"to"`
	Points int    `json:"points"`
	First  string `json:"first"` // time of the first point
	Last   string `json:"last"`  // time of the last point
	// TimesMs are the Unix milliseconds of the line's points, in order.
	TimesMs []int64 `json:"times_ms"`
}

// AlertProperties are the properties of an alert's point on a track.
type AlertProperties struct {
	Kind     string  `json:"kind"` // "alert"
	AlertID  string  `json:"alert_id"`
	Rule     string  `json:"rule"`
	Severity string  `json:"severity"`
	Status   string  `json:"status"`
	Start    string  `json:"start"`
	End      *string `json:"end"` // null while open
	Evidence string  `json:"evidence"`
}

// HeatCellProperties are the properties of a heatmap cell.
type HeatCellProperties struct {
	Violations uint64  `json:"violations"`
	CellM      float64 `json:"cell_m"`
}

// ---------------------------------------------------------------------------------------------
// Handlers

// Limits of the parameters.
const (
	defaultViolationLimit = 1000
	maxFilterBytes        = 256
	defaultCellM          = 500
	minCellM, maxCellM    = 50, 20_000
	metresPerDegreeLat    = 111_320.0
)

func (s *Server) noStore(w http.ResponseWriter) bool {
	if s.store != nil {
		return false
	}
	writeError(w, http.StatusServiceUnavailable, "the history is not available: this server has no ClickHouse store configured")
	return true
}

func (s *Server) queryFailed(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, context.Canceled) {
		s.log.Warn("API history query failed", "path", r.URL.Path, "err", err)
	}
	writeError(w, http.StatusServiceUnavailable, "cannot query ClickHouse: "+err.Error())
}

// textParam checks a free-text filter.
func textParam(v, name string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) > maxFilterBytes {
		return "", fmt.Errorf("%s must be at most %d bytes, got %d", name, maxFilterBytes, len(v))
	}
	return v, nil
}

// plateParam normalises a plate given as parameter name.
func plateParam(raw, name string) (string, error) {
	plate := city.NormalizePlate(raw)
	if plate == "" || len(plate) > 32 {
		return "", fmt.Errorf("%s %q is not a licence plate", name, raw)
	}
	return plate, nil
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// violationParams parses GET /api/v1/violations' parameters.
func (s *Server) violationParams(r *http.Request) (ViolationQuery, string, error) {
	q := r.URL.Query()
	var vq ViolationQuery
	var errs []error
	var err error
	if vq.From, vq.To, err = s.window(r); err != nil {
		errs = append(errs, err)
	}
	f, err := alertFilter(q.Get("rule"), q.Get("severity"), "")
	if err != nil {
		errs = append(errs, err)
	}
	vq.Rules, vq.Severities = sortedKeys(f.Rules), sortedKeys(f.Severities)
	vq.Districts = sortedKeys(splitSet(q.Get("district")))
	for _, d := range vq.Districts {
		if len(d) > maxFilterBytes {
			errs = append(errs, fmt.Errorf("district: each district must be at most %d bytes, got one of %d", maxFilterBytes, len(d)))
			break
		}
	}
	if vq.Company, err = textParam(q.Get("company"), "company"); err != nil {
		errs = append(errs, err)
	}
	if vq.Site, err = textParam(q.Get("site"), "site"); err != nil {
		errs = append(errs, err)
	}
	if raw := q.Get("vehicle"); raw != "" {
		if vq.Vehicle, err = plateParam(raw, "vehicle"); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]bool{}
	for _, k := range strings.Split(q.Get("group_by"), ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		switch {
		case seen[k]:
			errs = append(errs, fmt.Errorf("group_by lists %q twice", k))
		case !slices.Contains(ViolationGroupKeys(), k):
			errs = append(errs, fmt.Errorf("group_by: %q is not one of %s", k, strings.Join(ViolationGroupKeys(), ", ")))
		default:
			vq.GroupBy = append(vq.GroupBy, k)
		}
		seen[k] = true
	}
	format := orDefault(q.Get("format"), "json")
	if format != "json" && format != "csv" {
		errs = append(errs, fmt.Errorf("format must be json or csv, got %q", format))
	}
	if vq.Limit, err = intParam(orDefault(q.Get("limit"), strconv.Itoa(min(defaultViolationLimit, s.cfg.MaxRows))), "limit", 1, s.cfg.MaxRows); err != nil {
		errs = append(errs, err)
	}
	return vq, format, errors.Join(errs...)
}

func (s *Server) handleViolations(w http.ResponseWriter, r *http.Request) {
	vq, format, err := s.violationParams(r)
	status := http.StatusOK
	if vq.Vehicle != "" { // looking at one truck's history is a vehicle lookup
		defer func() { s.audit(r, vq.Vehicle, status) }()
	}
	if err != nil {
		status = http.StatusBadRequest
		writeError(w, status, err.Error())
		return
	}
	if s.noStore(w) {
		status = http.StatusServiceUnavailable
		return
	}
	loc := s.city.City().Location
	vq.Location = loc
	from, to := formatTime(vq.From, loc), formatTime(vq.To, loc)
	if len(vq.GroupBy) > 0 {
		groups, truncated, err := s.store.ViolationGroups(r.Context(), vq)
		if err != nil {
			status = http.StatusServiceUnavailable
			s.queryFailed(w, r, err)
			return
		}
		if format == "csv" {
			recs := make([][]string, 0, len(groups)+1)
			recs = append(recs, append(slices.Clone(vq.GroupBy), "violations"))
			for _, g := range groups {
				rec := make([]string, 0, len(g.Keys)+1)
				for _, k := range g.Keys {
					rec = append(rec, csvText(k))
				}
				recs = append(recs, append(rec, strconv.FormatUint(g.Violations, 10)))
			}
			w.Header().Set("X-Truncated", strconv.FormatBool(truncated))
			status = writeCSV(w, "violations.csv", recs)
			return
		}
		ans := ViolationGroupsAnswer{From: from, To: to, GroupBy: vq.GroupBy, Rows: make([]groupRow, len(groups)), Truncated: truncated}
		for i, g := range groups {
			ans.Rows[i] = groupRow{names: vq.GroupBy, ViolationGroup: g}
		}
		status = writeBody(w, "application/json; charset=utf-8", ans)
		return
	}
	recs, total, err := s.store.Violations(r.Context(), vq)
	if err != nil {
		status = http.StatusServiceUnavailable
		s.queryFailed(w, r, err)
		return
	}
	views := make([]ViolationView, len(recs))
	for i, v := range recs {
		views[i] = violationView(v, loc)
	}
	if format == "csv" {
		rows := make([][]string, 0, len(views)+1)
		rows = append(rows, violationCSVHeader)
		for _, v := range views {
			rows = append(rows, v.csvRecord())
		}
		w.Header().Set("X-Total-Count", strconv.FormatUint(total, 10))
		status = writeCSV(w, "violations.csv", rows)
		return
	}
	status = writeBody(w, "application/json; charset=utf-8", ViolationsAnswer{From: from, To: to, Total: total, Violations: views})
}

func (s *Server) handleTrack(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("plate")
	plate := city.NormalizePlate(raw)
	_, perr := plateParam(raw, "plate")
	status := http.StatusOK
	defer func() { s.audit(r, plate, status) }()
	from, to, werr := s.window(r)
	if err := errors.Join(perr, werr); err != nil {
		status = http.StatusBadRequest
		writeError(w, status, err.Error())
		return
	}
	if s.noStore(w) {
		status = http.StatusServiceUnavailable
		return
	}
	maxRows := s.cfg.MaxRows
	points, err := s.store.Track(r.Context(), plate, from, to, maxRows+1)
	var alerts []ViolationRecord
	if err == nil {
		alerts, err = s.store.VehicleAlerts(r.Context(), plate, from, to, maxRows+1)
	}
	if err != nil {
		status = http.StatusServiceUnavailable
		s.queryFailed(w, r, err)
		return
	}
	loc := s.city.City().Location
	if len(points) > maxRows || len(alerts) > maxRows {
		status = http.StatusUnprocessableEntity
		what := "positions"
		if len(alerts) > maxRows {
			what = "alerts"
		}
		writeError(w, status, fmt.Sprintf("%s has more than %d %s from %s to %s; narrow the window (from, to)",
			plate, maxRows, what, formatTime(from, loc), formatTime(to, loc)))
		return
	}
	fc := newFeatureCollection()
	if len(points) > 0 {
		coords := make([][2]float64, len(points))
		props := TrackProperties{Kind: "track", Plate: plate, From: formatTime(from, loc), To: formatTime(to, loc), Points: len(points),
			First: formatTime(time.UnixMilli(points[0].TimeMs), loc), Last: formatTime(time.UnixMilli(points[len(points)-1].TimeMs), loc),
			TimesMs: make([]int64, len(points))}
		for i, p := range points {
			coords[i] = [2]float64{p.Lon, p.Lat}
			props.TimesMs[i] = p.TimeMs
		}
		// A LineString needs two positions (RFC 7946 §3.1.4): a single fix is a Point.
		g := &geometry{Type: "LineString", Coordinates: coords}
		if len(coords) == 1 {
			g = &geometry{Type: "Point", Coordinates: coords[0]}
		}
		fc.Features = append(fc.Features, feature{Type: "Feature", Geometry: g, Properties: props})
	}
	for _, a := range alerts {
		v := violationView(a, loc)
		var g *geometry
		if a.Lat != 0 || a.Lon != 0 {
			g = &geometry{Type: "Point", Coordinates: [2]float64{a.Lon, a.Lat}}
		}
		fc.Features = append(fc.Features, feature{Type: "Feature", Geometry: g, Properties: AlertProperties{Kind: "alert",
			AlertID: a.AlertID, Rule: a.Rule, Severity: a.Severity, Status: a.Status, Start: v.Start, End: v.End, Evidence: a.Evidence}})
	}
	status = writeBody(w, "application/geo+json", fc)
}

func (s *Server) handleHeatmap(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err1 := s.window(r)
	f, err2 := alertFilter(q.Get("rule"), "", "")
	cellM, err3 := floatParam(orDefault(q.Get("cell_m"), strconv.Itoa(defaultCellM)), "cell_m", minCellM, maxCellM)
	if err := errors.Join(err1, err2, err3); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.noStore(w) {
		return
	}
	c := s.city.City()
	dlat := cellM / metresPerDegreeLat
	dlon := cellM / (metresPerDegreeLat * math.Cos(c.Origin.Lat()*math.Pi/180))
	maxRows := s.cfg.MaxRows
	cells, err := s.store.Heatmap(r.Context(), HeatmapQuery{From: from, To: to, Rules: sortedKeys(f.Rules), DLat: dlat, DLon: dlon, Limit: maxRows + 1})
	if err != nil {
		s.queryFailed(w, r, err)
		return
	}
	if len(cells) > maxRows {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("the violations from %s to %s fall in more than %d cells of %g m; narrow the window (from, to), select rules or use larger cells (cell_m)",
			formatTime(from, c.Location), formatTime(to, c.Location), maxRows, cellM))
		return
	}
	fc := newFeatureCollection()
	for _, cell := range cells {
		lat0, lat1 := roundDeg(float64(cell.Row)*dlat), roundDeg(float64(cell.Row+1)*dlat)
		lon0, lon1 := roundDeg(float64(cell.Col)*dlon), roundDeg(float64(cell.Col+1)*dlon)
		ring := [][2]float64{{lon0, lat0}, {lon1, lat0}, {lon1, lat1}, {lon0, lat1}, {lon0, lat0}} // counter-clockwise, closed
		fc.Features = append(fc.Features, feature{Type: "Feature", Geometry: &geometry{Type: "Polygon", Coordinates: [][][2]float64{ring}},
			Properties: HeatCellProperties{Violations: cell.Violations, CellM: cellM}})
	}
	writeBody(w, "application/geo+json", fc)
}

// roundDeg rounds degrees to 1e-7 (about a centimetre).
func roundDeg(x float64) float64 { return math.Round(x*1e7) / 1e7 }

// writeBody writes v as JSON with content type ct, and returns the status sent. The answer is
// encoded before anything is sent, so that a failure is still an error answer.
func writeBody(w http.ResponseWriter, ct string, v any) int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the answer: "+err.Error())
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return http.StatusOK
}

// writeCSV writes records (the header first) as a CSV attachment named filename, and returns the
// status sent.
func writeCSV(w http.ResponseWriter, filename string, records [][]string) int {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	if err := cw.WriteAll(records); err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the answer as CSV: "+err.Error())
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return http.StatusOK
}
