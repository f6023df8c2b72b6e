package detectors

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/muckwatch/muckwatch/internal/jsonenc"
)

// The JSON form of a Change is the muck.alerts message: the change and the alert's snapshot after
// it in one flat object, times as Unix milliseconds of event time (end_ms 0 while open), and the
// severity's action beside it:
//
//	{"change":"opened","alert_id":"…","rule":"speeding","severity":"warning",
//	 "action":"notify_grid_staff","phase":"in_event","status":"open","vehicle_id":"…",
//	 "company":"…","permit_id":"…","place":"…","district":"…","start_ms":…,"end_ms":0,
//	 "lat":…,"lon":…,"value":…,"limit":…,"evidence":"…","version":1,"updated_ms":…}
//
// The API's alerts are this object with the API's own fields after it. A NaN or infinite number
// is written as null.

// AppendJSON appends the JSON of c (the muck.alerts message) to dst. It writes what
// encoding/json would write without HTML escaping.
func (c Change) AppendJSON(dst []byte) []byte {
	a := &c.Alert
	b := append(dst, `{"change":`...)
	b = jsonenc.AppendString(b, string(c.Kind))
	b = append(b, `,"alert_id":`...)
	b = jsonenc.AppendString(b, a.ID)
	b = append(b, `,"rule":`...)
	b = jsonenc.AppendString(b, string(a.Rule))
	b = append(b, `,"severity":`...)
	b = jsonenc.AppendString(b, string(a.Severity))
	b = append(b, `,"action":`...)
	b = jsonenc.AppendString(b, a.Severity.Action())
	b = append(b, `,"phase":`...)
	b = jsonenc.AppendString(b, string(a.Phase))
	b = append(b, `,"status":`...)
	b = jsonenc.AppendString(b, string(a.Status))
	b = append(b, `,"vehicle_id":`...)
	b = jsonenc.AppendString(b, a.VehicleID)
	b = append(b, `,"company":`...)
	b = jsonenc.AppendString(b, a.Company)
	b = append(b, `,"permit_id":`...)
	b = jsonenc.AppendString(b, a.PermitID)
	b = append(b, `,"place":`...)
	b = jsonenc.AppendString(b, a.Place)
	b = append(b, `,"district":`...)
	b = jsonenc.AppendString(b, a.District)
	b = append(b, `,"start_ms":`...)
	b = strconv.AppendInt(b, UnixMilli(a.Start), 10)
	b = append(b, `,"end_ms":`...)
	b = strconv.AppendInt(b, UnixMilli(a.End), 10)
	b = append(b, `,"lat":`...)
	b = jsonenc.AppendFloat(b, a.Lat)
	b = append(b, `,"lon":`...)
	b = jsonenc.AppendFloat(b, a.Lon)
	b = append(b, `,"value":`...)
	b = jsonenc.AppendFloat(b, a.Value)
	b = append(b, `,"limit":`...)
	b = jsonenc.AppendFloat(b, a.Limit)
	b = append(b, `,"evidence":`...)
	b = jsonenc.AppendString(b, a.Evidence)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, a.Version, 10)
	b = append(b, `,"updated_ms":`...)
	b = strconv.AppendInt(b, UnixMilli(a.Updated), 10)
	return append(b, '}')
}

// JSONSize is about how many bytes the JSON of c takes, to size a buffer for AppendJSON.
func (c *Change) JSONSize() int {
	a := &c.Alert
	// the field names, numbers and punctuation take about 300 bytes
	return 320 + len(c.Kind) + len(a.ID) + len(a.Rule) + len(a.Severity) + 20 + len(a.Phase) + len(a.Status) +
		len(a.VehicleID) + len(a.Company) + len(a.PermitID) + len(a.Place) + len(a.District) + len(a.Evidence)
}

// MarshalJSON returns the JSON of c (AppendJSON).
func (c Change) MarshalJSON() ([]byte, error) {
	return c.AppendJSON(make([]byte, 0, c.JSONSize())), nil
}

// changeJSON is how encoding/json reads the JSON of a Change; action is derived from severity
// and not read back.
type changeJSON struct {
	Change    ChangeKind `json:"change"`
	AlertID   string     `json:"alert_id"`
	Rule      Rule       `json:"rule"`
	Severity  Severity   `json:"severity"`
	Phase     Phase      `json:"phase"`
	Status    Status     `json:"status"`
	VehicleID string     `json:"vehicle_id"`
	Company   string     `json:"company"`
	PermitID  string     `json:"permit_id"`
	Place     string     `json:"place"`
	District  string     `json:"district"`
	StartMs   int64      `json:"start_ms"`
	EndMs     int64      `json:"end_ms"`
	Lat       *float64   `json:"lat"` // null: NaN or infinite when written
	Lon       *float64   `json:"lon"`
	Value     *float64   `json:"value"`
	Limit     *float64   `json:"limit"`
	Evidence  string     `json:"evidence"`
	Version   uint64     `json:"version"`
	UpdatedMs int64      `json:"updated_ms"`
}

// UnmarshalJSON reads the JSON of a change (fields it does not know are ignored; a null number
// reads as NaN). Times are read in the local time zone.
func (c *Change) UnmarshalJSON(data []byte) error {
	var m changeJSON
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("cannot read an alert change: %w", err)
	}
	*c = Change{Kind: m.Change, Alert: Alert{
		ID: m.AlertID, Rule: m.Rule, Severity: m.Severity, Phase: m.Phase, Status: m.Status, VehicleID: m.VehicleID,
		Company: m.Company, PermitID: m.PermitID, Place: m.Place, District: m.District,
		Start: FromUnixMilli(m.StartMs), End: FromUnixMilli(m.EndMs),
		Lat: orNaN(m.Lat), Lon: orNaN(m.Lon), Value: orNaN(m.Value), Limit: orNaN(m.Limit),
		Evidence: m.Evidence, Version: m.Version, Updated: FromUnixMilli(m.UpdatedMs),
	}}
	return nil
}

func orNaN(f *float64) float64 {
	if f == nil {
		return math.NaN()
	}
	return *f
}

// UnixMilli is t in Unix milliseconds, and 0 for the zero time: how an alert's times are written
// (an open alert's End is zero).
func UnixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// FromUnixMilli is the time of Unix milliseconds ms, and the zero time for 0 (UnixMilli's
// inverse).
func FromUnixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
