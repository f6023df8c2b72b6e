package api

// The analysts' answers and how they are encoded: JSON, CSV and GeoJSON.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/jsonenc"
)

// ViolationView is one violation as the analysts see it: an alert with its times in the city's
// zone. Its JSON object and its CSV row have the fields of violationFields, in that order.
type ViolationView struct {
	alert *detectors.Alert
	loc   *time.Location
}

// violationView is alert a as the analysts see it, its times in loc.
func violationView(a *detectors.Alert, loc *time.Location) ViolationView {
	return ViolationView{alert: a, loc: loc}
}

// violationField is one field of a ViolationView: text (defused in CSV, see csvText), a time
// (RFC 3339; null in JSON and empty in CSV when zero) or a number (null in JSON and empty in CSV
// when not finite).
type violationField struct {
	name   string
	text   func(a *detectors.Alert) string
	time   func(a *detectors.Alert) time.Time
	number func(a *detectors.Alert) float64
	// nullable: a zero time is null (an open alert's end); otherwise it is formatted as it is.
	nullable bool
}

// violationFields are the fields of a violation, in the order of the answer's JSON and CSV.
var violationFields = []violationField{
	{name: "alert_id", text: func(a *detectors.Alert) string { return a.ID }},
	{name: "rule", text: func(a *detectors.Alert) string { return string(a.Rule) }},
	{name: "severity", text: func(a *detectors.Alert) string { return string(a.Severity) }},
	{name: "status", text: func(a *detectors.Alert) string { return string(a.Status) }},
	{name: "vehicle_id", text: func(a *detectors.Alert) string { return a.VehicleID }},
	{name: "company", text: func(a *detectors.Alert) string { return a.Company }},
	{name: "permit_id", text: func(a *detectors.Alert) string { return a.PermitID }},
	{name: "place", text: func(a *detectors.Alert) string { return a.Place }},
	{name: "district", text: func(a *detectors.Alert) string { return a.District }},
	{name: "start", time: func(a *detectors.Alert) time.Time { return a.Start }},
	{name: "end", time: func(a *detectors.Alert) time.Time { return a.End }, nullable: true},
	{name: "lat", number: func(a *detectors.Alert) float64 { return a.Lat }},
	{name: "lon", number: func(a *detectors.Alert) float64 { return a.Lon }},
	{name: "value", number: func(a *detectors.Alert) float64 { return a.Value }},
	{name: "limit", number: func(a *detectors.Alert) float64 { return a.Limit }},
	{name: "evidence", text: func(a *detectors.Alert) string { return a.Evidence }},
}

// violationCSVHeader is the CSV header of a violations list: the fields' names.
var violationCSVHeader = func() []string {
	out := make([]string, len(violationFields))
	for i, f := range violationFields {
		out[i] = f.name
	}
	return out
}()

// appendJSON appends the field's JSON value for v.
func (f *violationField) appendJSON(b []byte, v ViolationView) []byte {
	switch {
	case f.text != nil:
		return jsonenc.AppendString(b, f.text(v.alert))
	case f.number != nil:
		return jsonenc.AppendFloat(b, f.number(v.alert))
	}
	t := f.time(v.alert)
	if f.nullable && t.IsZero() {
		return append(b, "null"...)
	}
	return jsonenc.AppendString(b, formatTime(t, v.loc))
}

// csv is the field's CSV value for v.
func (f *violationField) csv(v ViolationView) string {
	switch {
	case f.text != nil:
		return csvText(f.text(v.alert))
	case f.number != nil:
		x := f.number(v.alert)
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return ""
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	t := f.time(v.alert)
	if f.nullable && t.IsZero() {
		return ""
	}
	return formatTime(t, v.loc)
}

// appendFields appends the JSON members of the named fields of v (all of them when names is
// empty), each followed by a comma.
func (v ViolationView) appendFields(b []byte, names ...string) []byte {
	for i := range violationFields {
		f := &violationFields[i]
		if len(names) > 0 && !slices.Contains(names, f.name) {
			continue
		}
		b = jsonenc.AppendString(b, f.name)
		b = append(b, ':')
		b = f.appendJSON(b, v)
		b = append(b, ',')
	}
	return b
}

// MarshalJSON writes the fields of violationFields.
func (v ViolationView) MarshalJSON() ([]byte, error) {
	b := v.appendFields([]byte{'{'})
	b[len(b)-1] = '}'
	return b, nil
}

func (v ViolationView) csvRecord() []string {
	out := make([]string, len(violationFields))
	for i := range violationFields {
		out[i] = violationFields[i].csv(v)
	}
	return out
}

// ViolationsAnswer is the answer of GET /api/v1/violations without group_by.
type ViolationsAnswer struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Total counts every violation selected; Violations holds up to limit of them, newest first,
	// after skipping Offset; Next is the request for the next page ("" on the last).
	Total      uint64          `json:"total"`
	Offset     int             `json:"offset"`
	Violations []ViolationView `json:"violations"`
	Next       string          `json:"next"`
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
	// TimesMs are the Unix milliseconds of the line's points, in order; SpeedsKmh their speeds.
	TimesMs   []int64   `json:"times_ms"`
	SpeedsKmh []float64 `json:"speeds_kmh"`
}

// AlertProperties are the properties of an alert's point on a track: "kind": "alert" and some
// of the alert's violation fields.
type AlertProperties struct {
	ViolationView
}

// alertPropertyFields are the violation fields an alert's point on a track has.
var alertPropertyFields = []string{"alert_id", "rule", "severity", "status", "start", "end", "evidence"}

// MarshalJSON writes {"kind":"alert", …alertPropertyFields}.
func (p AlertProperties) MarshalJSON() ([]byte, error) {
	b := p.appendFields([]byte(`{"kind":"alert",`), alertPropertyFields...)
	b[len(b)-1] = '}'
	return b, nil
}

// HeatCellProperties are the properties of a heatmap cell.
type HeatCellProperties struct {
	Violations uint64  `json:"violations"`
	CellM      float64 `json:"cell_m"`
}

// writeBody writes v as JSON with content type ct, and returns the status sent. The answer is
// encoded before anything is sent, so that a failure is still an error answer.
func writeBody(w http.ResponseWriter, ct string, v any) int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the answer (a bug: please report it)")
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
	b.WriteString("\ufeff") // a byte-order mark: Excel then reads the file as UTF-8, not the system's code page
	cw := csv.NewWriter(&b)
	if err := cw.WriteAll(records); err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the answer as CSV (a bug: please report it)")
		return http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
	return http.StatusOK
}
