package detectors

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
	"unicode/utf8"
)

// wantMessage is the muck.alerts message as a plain struct, the oracle of the hand-written
// encoder: encoding/json of it is what Change.AppendJSON must write.
type wantMessage struct {
	Change    string  `json:"change"`
	AlertID   string  `json:"alert_id"`
	Rule      string  `json:"rule"`
	Severity  string  `json:"severity"`
	Action    string  `json:"action"`
	Phase     string  `json:"phase"`
	Status    string  `json:"status"`
	VehicleID string  `json:"vehicle_id"`
	Company   string  `json:"company"`
	PermitID  string  `json:"permit_id"`
	Place     string  `json:"place"`
	District  string  `json:"district"`
	StartMs   int64   `json:"start_ms"`
	EndMs     int64   `json:"end_ms"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Value     float64 `json:"value"`
	Limit     float64 `json:"limit"`
	Evidence  string  `json:"evidence"`
	Version   uint64  `json:"version"`
	UpdatedMs int64   `json:"updated_ms"`
}

func jsonTestChange(id string, version uint64, kind ChangeKind) Change {
	start := time.Date(2026, 5, 17, 8, 30, 15, 123e6, time.UTC)
	a := Alert{ID: id, Rule: RuleSpeeding, Severity: SeverityWarning, Phase: PhaseIn, Status: StatusOpen, VehicleID: "粤B12345",
		Company: "深圳市泥头车运输有限公司", PermitID: "ZTC-2026-0042", Place: "深南大道限速区", District: "福田区", Start: start,
		Lat: 22.543099, Lon: 114.057868, Value: 62.5, Limit: 40, Evidence: "62.5 km/h for 35 s where the limit is 40 km/h",
		Version: version, Updated: start.Add(time.Duration(version) * 7 * time.Second)}
	if kind == ChangeResolved {
		a.Status, a.End, a.Severity = StatusResolved, a.Updated, SeveritySevere
	}
	return Change{Kind: kind, Alert: a}
}

func TestChangeJSONMatchesEncodingJSON(t *testing.T) {
	f := func(c Change) {
		t.Helper()
		a := &c.Alert
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(wantMessage{Change: string(c.Kind), AlertID: a.ID, Rule: string(a.Rule), Severity: string(a.Severity),
			Action: a.Severity.Action(), Phase: string(a.Phase), Status: string(a.Status), VehicleID: a.VehicleID, Company: a.Company,
			PermitID: a.PermitID, Place: a.Place, District: a.District, StartMs: UnixMilli(a.Start), EndMs: UnixMilli(a.End),
			Lat: a.Lat, Lon: a.Lon, Value: a.Value, Limit: a.Limit, Evidence: a.Evidence, Version: a.Version,
			UpdatedMs: UnixMilli(a.Updated)}); err != nil {
			t.Fatal(err)
		}
		got := append(c.AppendJSON(nil), '\n')
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("AppendJSON\n got %s\nwant %s", got, want.Bytes())
		}
		if m, _ := c.MarshalJSON(); !bytes.Equal(append(m, '\n'), got) {
			t.Errorf("MarshalJSON differs from AppendJSON: %s", m)
		}
		var back Change
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("the JSON of a change does not read back: %v", err)
		}
		if utf8.ValidString(a.ID) && utf8.ValidString(a.Evidence) && !sameChange(back, c) {
			t.Errorf("read back\n got %+v\nwant %+v", back, c)
		}
	}
	f(jsonTestChange("569d95e0eb3e293365f0f63d", 3, ChangeResolved))
	f(jsonTestChange("a", 1, ChangeOpened))
	f(Change{})
	c := jsonTestChange("a\"\\\n\t\x00\x1f<>&\u2028\u2029\x7f", math.MaxUint64, ChangeUpdated)
	c.Alert.Evidence = "bad utf-8 \xff\xfe end \xe4\xb8"
	c.Alert.Lat, c.Alert.Lon, c.Alert.Value, c.Alert.Limit = 1e-7, -1e21, 123456789.125, -0.000001
	f(c)
}

// sameChange compares changes with their times by instant.
func sameChange(a, b Change) bool {
	ta, tb := a.Alert, b.Alert
	if !ta.Start.Equal(tb.Start) || !ta.End.Equal(tb.End) || !ta.Updated.Equal(tb.Updated) {
		return false
	}
	ta.Start, ta.End, ta.Updated = time.Time{}, time.Time{}, time.Time{}
	tb.Start, tb.End, tb.Updated = time.Time{}, time.Time{}, time.Time{}
	return a.Kind == b.Kind && ta == tb
}

func TestChangeJSONNaN(t *testing.T) {
	c := jsonTestChange("a", 1, ChangeOpened)
	c.Alert.Value, c.Alert.Limit = math.NaN(), math.Inf(1)
	var m map[string]any
	if err := json.Unmarshal(c.AppendJSON(nil), &m); err != nil {
		t.Fatalf("the JSON of a change with NaN is not JSON: %v", err)
	}
	if m["value"] != nil || m["limit"] != nil {
		t.Errorf("NaN and Inf written as %v and %v, want null", m["value"], m["limit"])
	}
	var back Change
	if err := json.Unmarshal(c.AppendJSON(nil), &back); err != nil || !math.IsNaN(back.Alert.Value) || back.Alert.Lat != c.Alert.Lat {
		t.Errorf("null reads back as %v (lat %v), err %v; want NaN", back.Alert.Value, back.Alert.Lat, err)
	}
}

func TestUnixMilli(t *testing.T) {
	if UnixMilli(time.Time{}) != 0 || !FromUnixMilli(0).IsZero() {
		t.Error("the zero time is not 0 ms both ways")
	}
	at := time.UnixMilli(1779006615123)
	if got := FromUnixMilli(UnixMilli(at)); !got.Equal(at) {
		t.Errorf("%v reads back as %v", at, got)
	}
}
