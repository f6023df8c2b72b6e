package api

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// usersServer is a server without ClickHouse over the sample city at a fixed time.
func usersServer(t *testing.T) (*Server, map[Role]string, *time.Time) {
	t.Helper()
	s, tok := plainServer(t, nil)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	s.live.now = s.now
	return s, tok, &now
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("cannot read the answer: %v\n%s", err, body)
	}
	return v
}

// The squads' report says at the top whether a permit is valid now and why; the last position
// has its time, age and district; a plate without its province character gets a suggestion; the
// dispatch plan (officers' positions) is only the command centre's.
func TestVehicleReportForSquads(t *testing.T) {
	s, tok, now := usersServer(t)
	h := s.Handler()
	plate := "粤B70214" // registered, permit ZY-000001 valid 2026-01-01 to 2027-12-31
	s.live.Observe([]record.Fix{{VehicleID: plate, Time: now.Add(-90 * time.Second), Lat: 22.54, Lon: 114.06, SpeedKmh: 12}},
		[]record.OfficerPosition{{OfficerID: "o-1", Time: *now, Lat: 22.545, Lon: 114.06, Available: true}},
		[]detectors.Change{change(detectors.ChangeOpened, "a1", plate, detectors.SeveritySevere, detectors.StatusOpen, 1, *now)})

	rec := request(t, h, "GET", "/api/v1/vehicles/"+url.PathEscape(plate), tok[RoleSquad], "")
	rep := decode[VehicleReport](t, rec.Body.Bytes())
	if !rep.PermitValidNow || !strings.Contains(rep.PermitStatus, "ZY-000001 is valid until 2027-12-31T23:59:59+08:00") {
		t.Errorf("permit: %v %q", rep.PermitValidNow, rep.PermitStatus)
	}
	p := rep.Position
	if p == nil || p.District != "futian" || p.DistrictName != "福田区" || p.AgeS != 90 || p.Time != "2026-11-23T15:58:30+08:00" {
		t.Errorf("last position %+v, want futian, 90 s old, in city time", p)
	}
	if len(rep.OpenAlerts) != 1 || rep.OpenAlerts[0].Dispatch != nil {
		t.Errorf("squad sees open alerts %d with dispatch %+v, want 1 without", len(rep.OpenAlerts), rep.OpenAlerts)
	}
	rec = request(t, h, "GET", "/api/v1/vehicles/"+url.PathEscape(plate), tok[RoleSupervisor], "")
	if rep := decode[VehicleReport](t, rec.Body.Bytes()); len(rep.OpenAlerts) != 1 || rep.OpenAlerts[0].Dispatch == nil {
		t.Error("the supervisor does not see the dispatch plan")
	}

	rec = request(t, h, "GET", "/api/v1/vehicles/B70214", tok[RoleSquad], "")
	if msg := errorMessage(t, rec); rec.Code != 404 || !strings.Contains(msg, "did you mean 粤B70214?") {
		t.Errorf("B70214: %d %s, want 404 suggesting 粤B70214", rec.Code, msg)
	}
	rec = request(t, h, "GET", "/api/v1/vehicles/"+url.PathEscape("粤Z00000"), tok[RoleSquad], "")
	if msg := errorMessage(t, rec); rec.Code != 404 || strings.Contains(msg, "did you mean") {
		t.Errorf("粤Z00000: %d %s, want 404 without a suggestion", rec.Code, msg)
	}
	// the permit's validity is judged at the report's time
	*now = time.Date(2028, 1, 2, 0, 0, 0, 0, time.UTC)
	rec = request(t, h, "GET", "/api/v1/vehicles/"+url.PathEscape(plate), tok[RoleSquad], "")
	if rep := decode[VehicleReport](t, rec.Body.Bytes()); rep.PermitValidNow || !strings.Contains(rep.PermitStatus, "expired at 2027-12-31T23:59:59+08:00") {
		t.Errorf("after expiry: %v %q", rep.PermitValidNow, rep.PermitStatus)
	}
}

// Near-by vehicles the risk model has not seen get detectors.UnseenRisk, as in the vehicle report.
func TestNearUnseenRisk(t *testing.T) {
	s, tok, now := usersServer(t)
	s.live.Observe([]record.Fix{
		{VehicleID: "粤B70214", Time: *now, Lat: 22.54, Lon: 114.06},
		{VehicleID: "粤Z12345", Time: *now, Lat: 22.5401, Lon: 114.06},
	}, nil, nil)
	rec := request(t, s.Handler(), "GET", "/api/v1/vehicles/near?lat=22.54&lon=114.06", tok[RoleSquad], "")
	ans := decode[struct{ Vehicles []NearVehicle }](t, rec.Body.Bytes())
	got := map[string]NearVehicle{}
	for _, v := range ans.Vehicles {
		got[v.Plate] = v
	}
	for plate, registered := range map[string]bool{"粤B70214": true, "粤Z12345": false} {
		want := detectors.UnseenRisk(registered)
		if v := got[plate]; v.RiskScore != want.Score || v.RiskLevel != want.Level {
			t.Errorf("%s: risk %d %s, want %d %s as the vehicle report", plate, v.RiskScore, v.RiskLevel, want.Score, want.Level)
		}
	}
	if got["粤Z12345"].RiskLevel == "low" {
		t.Error("an unregistered truck is low risk")
	}
}

// The supervisors' list filters by handling state and overdue, refuses an unknown district, and
// pages with a cursor that does not shift when alerts open meanwhile.
func TestAlertListForSupervisors(t *testing.T) {
	s, tok, now := usersServer(t)
	h := s.Handler()
	var changes []detectors.Change
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		changes = append(changes, change(detectors.ChangeOpened, id, "粤B7021"+id, detectors.SeverityWarning, detectors.StatusOpen, 1, now.Add(-time.Duration(i)*time.Minute)))
	}
	s.live.Observe(nil, nil, changes)
	sup := Principal{Name: "desk-1", Role: RoleSupervisor}
	if _, _, err := s.live.Act("b", "acknowledge", sup, "", ""); err != nil {
		t.Fatal(err)
	}
	list := func(query string) AlertsPage {
		t.Helper()
		rec := request(t, h, "GET", "/api/v1/alerts?"+query, tok[RoleSupervisor], "")
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", query, rec.Code, rec.Body)
		}
		return decode[AlertsPage](t, rec.Body.Bytes())
	}
	ids := func(p AlertsPage) string {
		var out []string
		for _, a := range p.Alerts {
			out = append(out, a.ID)
		}
		return strings.Join(out, ",")
	}
	if got := ids(list("state=acknowledged")); got != "b" {
		t.Errorf("state=acknowledged: %s", got)
	}
	if got := ids(list("state=new&district=futian")); got != "a,c,d,e" {
		t.Errorf("state=new: %s", got)
	}
	*now = now.Add(s.cfg.AckWithin.Warning + time.Second)
	s.live.CheckOverdue()
	if got := ids(list("overdue=true")); got != "a,c,d,e" {
		t.Errorf("overdue=true: %s", got)
	}
	if got := ids(list("overdue=false")); got != "b" {
		t.Errorf("overdue=false: %s", got)
	}
	// cursor paging, with an alert opening between the pages
	first := list("limit=2")
	if ids(first) != "a,b" || !strings.Contains(first.Next, "cursor=") {
		t.Fatalf("first page %s next %q", ids(first), first.Next)
	}
	s.live.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "new", "粤B1", detectors.SeverityWarning, detectors.StatusOpen, 1, *now)})
	u, _ := url.Parse(first.Next)
	second := list(u.RawQuery)
	if ids(second) != "c,d" {
		t.Errorf("second page %s, want c,d (the alert opened meanwhile comes first in the list, not here)", ids(second))
	}
	for _, tc := range []struct{ query, says string }{
		{"district=atlantis", `district "atlantis" is not a district of Shenzhen (sample)`},
		{"state=dismissed", `state "dismissed" is not new, dispatched or acknowledged`},
		{"overdue=maybe", "overdue must be true or false"},
		{"cursor=xyz", "is not a cursor of this list"},
		{"cursor=" + first.Next[strings.Index(first.Next, "cursor=")+7:] + "&offset=2", "either cursor or offset"},
	} {
		rec := request(t, h, "GET", "/api/v1/alerts?"+tc.query, tok[RoleSupervisor], "")
		if msg := errorMessage(t, rec); rec.Code != 400 || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: %d %s, want 400 saying %s", tc.query, rec.Code, msg, tc.says)
		}
	}
}

// An officer dispatched to one alert is not offered for another; the dispatch keeps the
// distance and ETA; GET /officers shows who is dispatched where.
func TestDispatchAndOfficers(t *testing.T) {
	s, tok, now := usersServer(t)
	h := s.Handler()
	s.live.Observe(nil, []record.OfficerPosition{
		{OfficerID: "o-1", Time: *now, Lat: 22.545, Lon: 114.06, Available: true},
		{OfficerID: "o-2", Time: *now, Lat: 22.55, Lon: 114.06, Available: true},
	}, []detectors.Change{
		change(detectors.ChangeOpened, "s1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, *now),
		change(detectors.ChangeOpened, "s2", "粤B2", detectors.SeveritySevere, detectors.StatusOpen, 1, *now),
	})
	rec := request(t, h, "POST", "/api/v1/alerts/s1/actions", tok[RoleSupervisor], `{"action":"dispatch"}`)
	v := decode[AlertView](t, rec.Body.Bytes())
	a := v.Handling.Actions[0]
	if a.OfficerID != "o-1" || a.DistanceM < 500 || a.DistanceM > 600 || a.ETASeconds <= 0 {
		t.Errorf("dispatch action %+v, want o-1 with its distance (~556 m) and ETA", a)
	}
	rec = request(t, h, "GET", "/api/v1/alerts/s2", tok[RoleSupervisor], "")
	v = decode[AlertView](t, rec.Body.Bytes())
	if v.Dispatch == nil || len(v.Dispatch.Officers) != 1 || v.Dispatch.Officers[0].OfficerID != "o-2" {
		t.Errorf("s2 offered %+v, want only o-2 (o-1 is dispatched to s1)", v.Dispatch)
	}
	rec = request(t, h, "GET", "/api/v1/officers", tok[RoleSupervisor], "")
	ans := decode[struct{ Officers []OfficerView }](t, rec.Body.Bytes())
	if len(ans.Officers) != 2 || ans.Officers[0].DispatchedTo != "s1" || ans.Officers[1].DispatchedTo != "" || ans.Officers[0].Time != "2026-11-23T16:00:00+08:00" {
		t.Errorf("officers %+v", ans.Officers)
	}
	if rec := request(t, h, "GET", "/api/v1/officers", tok[RoleAnalyst], ""); rec.Code != 403 {
		t.Errorf("an analyst sees the officers: %d", rec.Code)
	}
}

// The analysts' parameters: Unix seconds given for milliseconds are refused; an unknown district
// is refused.
func TestHistoryParametersForAnalysts(t *testing.T) {
	s, tok, _ := usersServer(t)
	for _, tc := range []struct{ path, says string }{
		{"/api/v1/violations?from=1795392000&to=1795395600", "looks like Unix seconds"},
		{"/api/v1/heatmap?from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z&district=atlantis", `district "atlantis" is not a district`},
		{"/api/v1/heatmap?from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z&severity=awful", `severity "awful"`},
		{"/api/v1/violations?from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z&group_by=day&offset=5", "does not apply with group_by"},
	} {
		rec := request(t, s.Handler(), "GET", tc.path, tok[RoleAnalyst], "")
		if msg := errorMessage(t, rec); rec.Code != 400 || !strings.Contains(msg, tc.says) {
			t.Errorf("%s: %d %s, want 400 saying %s", tc.path, rec.Code, msg, tc.says)
		}
	}
}

// Values and coordinates are shown without binary floating-point noise.
func TestAlertNumbersTidy(t *testing.T) {
	s, tok, now := usersServer(t)
	c := change(detectors.ChangeOpened, "f1", "粤B1", detectors.SeverityWarning, detectors.StatusOpen, 1, *now)
	c.Alert.Value, c.Alert.Limit, c.Alert.Lat, c.Alert.Lon = float64(float32(0.9)), 0.3+0.6, 37.97717100000001, 114.06000000000002
	s.live.Observe(nil, nil, []detectors.Change{c})
	body := request(t, s.Handler(), "GET", "/api/v1/alerts/f1", tok[RoleSupervisor], "").Body.String()
	for _, want := range []string{`"value":0.9,`, `"limit":0.9,`, `"lat":37.977171,`, `"lon":114.06,`} {
		if !strings.Contains(body, want) {
			t.Errorf("answer lacks %s: %s", want, body)
		}
	}
}

// A stream opened with snapshot=true starts with the open alerts the filters select.
func TestStreamSnapshot(t *testing.T) {
	s, tok, now := usersServer(t)
	s.live.Observe(nil, nil, []detectors.Change{
		change(detectors.ChangeOpened, "s1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, *now),
		change(detectors.ChangeOpened, "w1", "粤B2", detectors.SeverityWarning, detectors.StatusOpen, 1, *now),
	})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/alerts/stream?snapshot=true&severity=severe", nil)
	req.Header.Set("Authorization", "Bearer "+tok[RoleSupervisor])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	var event, data string
	for event == "" || data == "" {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before the snapshot: %v", err)
		}
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		}
	}
	snap := decode[struct{ Alerts []AlertView }](t, []byte(data))
	if event != "snapshot" || len(snap.Alerts) != 1 || snap.Alerts[0].ID != "s1" {
		t.Errorf("first event %q with %d alerts, want snapshot with s1 only", event, len(snap.Alerts))
	}
}
