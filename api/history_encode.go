package api

// The analysts' answers and how they are encoded: JSON, CSV and GeoJSON.

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

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

// violationView is alert a as the analysts see it, its times in loc.
func violationView(a *detectors.Alert, loc *time.Location) ViolationView {
	out := ViolationView{AlertID: a.ID, Rule: string(a.Rule), Severity: string(a.Severity), Status: string(a.Status),
		VehicleID: a.VehicleID, Company: a.Company, PermitID: a.PermitID, Place: a.Place, District: a.District,
		Start: formatTime(a.Start, loc), Lat: jsonFloat(a.Lat), Lon: jsonFloat(a.Lon),
		Value: jsonFloat(a.Value), Limit: jsonFloat(a.Limit), Evidence: a.Evidence}
	if !a.End.IsZero() {
		end := formatTime(a.End, loc)
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
