package api

// Alerts read back from ClickHouse. The alerts table (tables.Alerts) keeps one row per alert
// version (ReplacingMergeTree(version)) and merges them only eventually, so every read first
// reduces it to the newest version of each alert (latestAlerts): an alert counts once however
// many versions are stored. An alert's id is derived from its rule, vehicle and start, so those
// columns (Fixed in the description) are the same in every version and are grouped on beside id;
// filters on them go inside the reduction, where they use the table's key and partitions, and
// filters on what may change (severity, company, place, district) apply to the newest version,
// outside it.

import (
	"math"
	"strings"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/tables"
)

// latest is the name of alerts column col in the newest version of an alert, as latestAlerts
// selects it: a Fixed column keeps its name; any other is aliased, because an alias equal to the
// column it aggregates would be read as the aggregate inside itself. It panics when col is not a
// column of tables.Alerts.
func latest(col string) string {
	c, ok := tables.Alerts.Column(col)
	if !ok {
		panic("api: alerts has no column " + col)
	}
	if c.Fixed {
		return col
	}
	return "last_" + col
}

// latestAlertsSelect and latestAlertsGroupBy reduce the alerts table to the newest version of
// each alert: the Fixed columns grouped on, every other column as argMax(column, version).
var latestAlertsSelect, latestAlertsGroupBy = func() (string, string) {
	t := tables.Alerts
	var sel, group []string
	for _, c := range t.Columns {
		if c.Fixed {
			sel, group = append(sel, c.Name), append(group, c.Name)
			continue
		}
		sel = append(sel, "argMax("+c.Name+", "+t.Version+") AS "+latest(c.Name))
	}
	return strings.Join(sel, ", "), " GROUP BY " + strings.Join(group, ", ")
}()

// alertColumns are the columns an alert is read from: every column of alerts but the DateTime
// twins of the *_ms columns, which hold the alert's times.
var alertColumns = func() []string {
	var out []string
	for _, c := range tables.Alerts.Columns {
		if c.Seconds == "" {
			out = append(out, c.Name)
		}
	}
	return out
}()

// latestAlertList is the select list of alertColumns over latestAlerts, in alertColumns' order.
var latestAlertList = func() string {
	out := make([]string, len(alertColumns))
	for i, c := range alertColumns {
		out[i] = latest(c)
	}
	return strings.Join(out, ", ")
}()

// alertRow is where one row of alertColumns is scanned.
type alertRow struct {
	a                             detectors.Alert
	rule, severity, phase, status string
	startMs, endMs, updatedMs     int64
	dest                          []any
}

func newAlertRow() *alertRow {
	r := &alertRow{}
	r.dest = make([]any, len(alertColumns))
	for i, c := range alertColumns {
		r.dest[i] = r.field(c)
	}
	return r
}

// field is where the value of column col goes.
func (r *alertRow) field(col string) any {
	a := &r.a
	switch col {
	case "id":
		return &a.ID
	case "rule":
		return &r.rule
	case "severity":
		return &r.severity
	case "phase":
		return &r.phase
	case "status":
		return &r.status
	case "vehicle_id":
		return &a.VehicleID
	case "company":
		return &a.Company
	case "permit_id":
		return &a.PermitID
	case "place":
		return &a.Place
	case "district":
		return &a.District
	case "start_ms":
		return &r.startMs
	case "end_ms":
		return &r.endMs
	case "lat":
		return &a.Lat
	case "lon":
		return &a.Lon
	case "value":
		return &a.Value
	case "limit_value":
		return &a.Limit
	case "evidence":
		return &a.Evidence
	case "version":
		return &a.Version
	case "updated_ms":
		return &r.updatedMs
	}
	panic("api: no alert field is read from column alerts." + col)
}

// alert returns the alert scanned.
func (r *alertRow) alert() detectors.Alert {
	a := r.a
	a.Rule, a.Severity, a.Phase, a.Status = detectors.Rule(r.rule), detectors.Severity(r.severity), detectors.Phase(r.phase), detectors.Status(r.status)
	a.Start, a.End, a.Updated = detectors.FromUnixMilli(r.startMs), detectors.FromUnixMilli(r.endMs), detectors.FromUnixMilli(r.updatedMs)
	tidyAlert(&a)
	return a
}

// tidyAlert rounds away the noise of binary floating point in an alert's numbers as the API
// shows them (0.8999999761581421 → 0.9, 37.97717100000001 → 37.977171): coordinates to 1e-7
// degrees (about a centimetre), measured values and limits to 1e-6.
func tidyAlert(a *detectors.Alert) {
	a.Lat, a.Lon = roundDeg(a.Lat), roundDeg(a.Lon)
	a.Value, a.Limit = roundValue(a.Value), roundValue(a.Limit)
}

// roundValue rounds x to 1e-6, leaving values too large for that as they are.
func roundValue(x float64) float64 {
	if math.Abs(x) >= 1e9 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	return math.Round(x*1e6) / 1e6
}
