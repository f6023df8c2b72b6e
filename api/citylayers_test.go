package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

func TestFleetStates(t *testing.T) {
	l, now := testLive()
	at := *now
	l.Observe([]record.Fix{
		{VehicleID: "粤B1", Time: at, Lat: 22.54, Lon: 114.06, SpeedKmh: 70},
		{VehicleID: "粤B2", Time: at, Lat: 22.55, Lon: 114.07, SpeedKmh: 30},
		{VehicleID: "粤B3", Time: at, Lat: 22.56, Lon: 114.08, SpeedKmh: 2},
		{VehicleID: "粤B4", Time: at.Add(-10 * time.Minute), Lat: 22.57, Lon: 114.09, SpeedKmh: 40},
		{VehicleID: "粤B5", Time: at.Add(-3 * time.Hour), Lat: 22.58, Lon: 114.10, SpeedKmh: 40},
		{VehicleID: "粤B6", Time: at, Lat: 22.59, Lon: 114.11, SpeedKmh: 20},
	}, nil, []detectors.Change{
		change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeverityWarning, detectors.StatusOpen, 1, at),
		change(detectors.ChangeOpened, "a2", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, at),
		change(detectors.ChangeOpened, "a3", "粤B6", detectors.SeverityWarning, detectors.StatusOpen, 1, at),
	})
	got := map[string]string{}
	ans := l.Fleet(2*time.Hour, 5*time.Minute)
	for _, row := range ans.Vehicles {
		if len(row) != len(ans.Fields) {
			t.Fatalf("row %v has %d values for %d fields", row, len(row), len(ans.Fields))
		}
		got[row[0].(string)] = row[5].(string)
	}
	want := map[string]string{"粤B1": "alert_severe", "粤B2": "moving", "粤B3": "stopped", "粤B4": "no_signal", "粤B6": "alert_warning"}
	if len(got) != len(want) {
		t.Errorf("fleet lists %v, want %v (粤B5 is older than max_age)", got, want)
	}
	for plate, st := range want {
		if got[plate] != st {
			t.Errorf("%s: state %q, want %q", plate, got[plate], st)
		}
	}
}

func TestConsoleEndpoints(t *testing.T) {
	s, tok := plainServer(t, nil)
	s.SetConsole(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("console at " + r.URL.Path))
	}))
	h := s.Handler()
	for _, tc := range []struct {
		name, path, token string
		want              int
	}{
		{"me without a token", "/api/v1/me", "", 401},
		{"layers without a token", "/api/v1/city/layers", "", 401},
		{"fleet as squad", "/api/v1/fleet", tok[RoleSquad], 403},
		{"fleet bad silence", "/api/v1/fleet?silent_after=1s", tok[RoleSupervisor], 400},
		{"fleet", "/api/v1/fleet", tok[RoleSupervisor], 200},
		{"layers as squad", "/api/v1/city/layers", tok[RoleSquad], 200},
		{"unknown api path stays JSON 404", "/api/v1/teleport", tok[RoleAdmin], 404},
		{"console", "/", "", 200},
	} {
		if w := request(t, h, "GET", tc.path, tc.token, ""); w.Code != tc.want {
			t.Errorf("%s: GET %s: %d %s, want %d", tc.name, tc.path, w.Code, w.Body, tc.want)
		}
	}
	if w := request(t, h, "GET", "/console/app.js", "", ""); w.Body.String() != "console at /console/app.js" {
		t.Errorf("GET /console/app.js: %q, want the console's answer", w.Body)
	}

	w := request(t, h, "GET", "/api/v1/me", tok[RoleAnalyst], "")
	var me Me
	if err := json.Unmarshal(w.Body.Bytes(), &me); err != nil || me.Role != RoleAnalyst || me.Name != "t-analyst" {
		t.Errorf("GET /api/v1/me as analyst: %s (%v), want name t-analyst, role analyst", w.Body, err)
	}

	w = request(t, h, "GET", "/api/v1/city/layers", tok[RoleSupervisor], "")
	var fc struct {
		Type     string `json:"type"`
		TimeZone string `json:"time_zone"`
		Features []struct {
			Geometry struct {
				Type string `json:"type"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		} `json:"features"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &fc); err != nil {
		t.Fatalf("layers: %v", err)
	}
	if fc.Type != "FeatureCollection" || fc.TimeZone != "Asia/Shanghai" {
		t.Errorf("layers: type %q, time zone %q; want a FeatureCollection in Asia/Shanghai", fc.Type, fc.TimeZone)
	}
	c := s.city.City()
	counts := map[string]int{}
	for _, f := range fc.Features {
		layer, _ := f.Properties["layer"].(string)
		counts[layer]++
		switch layer {
		case "route":
			if f.Geometry.Type != "LineString" || f.Properties["corridor_m"].(float64) <= 0 {
				t.Errorf("route %v: geometry %s, want a LineString with a corridor", f.Properties["id"], f.Geometry.Type)
			}
		case "restricted":
			if _, ok := f.Properties["closed_now"].(bool); !ok {
				t.Errorf("restricted zone %v has no closed_now", f.Properties["id"])
			}
		}
	}
	restricted := 0
	for _, z := range c.Zones {
		if z.Kind == "restricted" {
			restricted++
		}
	}
	for layer, want := range map[string]int{"district": len(c.Districts), "site": len(c.Sites), "route": len(c.Routes),
		"restricted": restricted, "speed": len(c.Zones) - restricted} {
		if counts[layer] != want {
			t.Errorf("layer %s: %d features, want %d", layer, counts[layer], want)
		}
	}
}

func BenchmarkFleet(b *testing.B) {
	l, now := testLive()
	fixes := make([]record.Fix, 15_000)
	for i := range fixes {
		fixes[i] = record.Fix{VehicleID: "粤B" + string(rune('A'+i%26)) + time.Duration(i).String(), Time: *now,
			Lat: 22.5 + float64(i%100)*0.001, Lon: 114 + float64(i/100)*0.001, SpeedKmh: float32(i % 60)}
	}
	l.Observe(fixes, nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		ans := l.Fleet(2*time.Hour, 5*time.Minute)
		if err := json.NewEncoder(httptest.NewRecorder()).Encode(ans); err != nil {
			b.Fatal(err)
		}
	}
}
