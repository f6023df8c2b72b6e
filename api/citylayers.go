package api

// The console's endpoints: who a token is (GET /api/v1/me), the city's reference layers as
// GeoJSON (GET /api/v1/city/layers) and every truck's live position and state
// (GET /api/v1/fleet). They serve any client, the browser console first.

import (
	"errors"
	"net/http"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"github.com/muckwatch/muckwatch/detectors"
)

// Fleet states of a truck, as the command centre's map colours them. An open alert wins over
// the movement; a truck silent for longer than the silence threshold has no signal.
const (
	FleetMoving   = "moving"
	FleetStopped  = "stopped"
	FleetNoSignal = "no_signal"
	// FleetAlertPrefix is followed by the severity of the truck's worst open alert.
	FleetAlertPrefix = "alert_"
)

// movingKmh is the speed from which a truck counts as moving rather than stopped (parked trucks
// report a few km/h of GPS jitter).
const movingKmh = 5

// Me is who a token belongs to.
type Me struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// FleetAnswer is every truck's newest position and state. Each row of Vehicles lists the values
// named by Fields, in that order: rows rather than objects keep the answer for 15,000 trucks
// small enough to refresh every few seconds.
type FleetAnswer struct {
	NowMs    int64    `json:"now_ms"`
	Fields   []string `json:"fields"`
	Vehicles [][]any  `json:"vehicles"`
}

// fleetFields names the columns of FleetAnswer.Vehicles.
var fleetFields = []string{"plate", "lon", "lat", "speed_kmh", "time_ms", "state"}

func (s *Server) consoleRoutes() ([]route, map[string]http.HandlerFunc) {
	all := []Role{RoleSquad, RoleSupervisor, RoleAnalyst}
	return []route{
			{"GET", "/api/v1/me", all},
			{"GET", "/api/v1/city/layers", all},
			{"GET", "/api/v1/fleet", []Role{RoleSupervisor}},
		}, map[string]http.HandlerFunc{
			"/api/v1/me":          s.handleMe,
			"/api/v1/city/layers": s.handleCityLayers,
			"/api/v1/fleet":       s.handleFleet,
		}
}

// SetConsole serves h at every path outside /api/ and /healthz (the browser console). Call it
// before serving.
func (s *Server) SetConsole(h http.Handler) { s.console = h }

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	writeJSON(w, http.StatusOK, Me{Name: p.Name, Role: p.Role})
}

// handleCityLayers answers the city's reference data as one GeoJSON FeatureCollection: its
// districts, sites, approved routes (with their corridor half-width), restricted zones (with
// their closed hours and whether they are closed now) and speed zones, each feature's "layer"
// property telling which. Foreign members give the city's name, time zone, origin and the
// default speed limit.
func (s *Server) handleCityLayers(w http.ResponseWriter, _ *http.Request) {
	c := s.city.City()
	now := s.now()
	fc := geojson.NewFeatureCollection()
	add := func(g orb.Geometry, props geojson.Properties) {
		f := geojson.NewFeature(g)
		f.Properties = props
		fc.Append(f)
	}
	for _, d := range c.Districts {
		add(d.WGS, geojson.Properties{"layer": "district", "id": d.ID, "name": d.Name})
	}
	for _, st := range c.Sites {
		add(st.WGS, geojson.Properties{"layer": "site", "id": st.ID, "name": st.Name, "kind": string(st.Kind), "district": st.District})
	}
	for _, rt := range c.Routes {
		half := 0.0
		if rt.Corridor != nil {
			half = rt.Corridor.HalfWidthM
		}
		add(rt.WGS, geojson.Properties{"layer": "route", "id": rt.ID, "name": rt.Name, "corridor_m": half,
			"from_site": rt.FromSite, "to_site": rt.ToSite})
	}
	for _, z := range c.Zones {
		props := geojson.Properties{"layer": string(z.Kind), "id": z.ID, "name": z.Name}
		if z.Kind == "speed" {
			props["speed_limit_kmh"] = z.SpeedLimitKmh
		} else {
			windows := make([]string, len(z.Closed))
			for i, win := range z.Closed {
				windows[i] = win.String()
			}
			props["closed_hours"] = windows
			props["closed_now"] = z.ClosedAt(now, c.Location)
		}
		add(z.WGS, props)
	}
	fc.ExtraMembers = geojson.Properties{
		"city": c.Name, "time_zone": c.Location.String(), "origin": []float64{c.Origin[0], c.Origin[1]},
		"default_speed_limit_kmh": c.DefaultSpeedLimitKmh, "at_ms": now.UnixMilli(),
	}
	b, err := fc.MarshalJSON()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "cannot encode the city's layers")
		return
	}
	w.Header().Set("Content-Type", "application/geo+json; charset=utf-8")
	w.Write(b)
}

// handleFleet answers every truck seen within max_age (default 2h) with its state; a truck
// silent for longer than silent_after (default 5m) has no signal. Not audited: it names no
// vehicle a person asked about, it is the map everyone in the centre sees.
func (s *Server) handleFleet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	maxAge, err1 := durationParam(orDefault(q.Get("max_age"), "2h"), "max_age", time.Minute, 7*24*time.Hour)
	silent, err2 := durationParam(orDefault(q.Get("silent_after"), "5m"), "silent_after", 30*time.Second, 24*time.Hour)
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.live.Fleet(maxAge, silent))
}

// Fleet returns every vehicle whose last position is at most maxAge old (event time), with its
// state: its worst open alert, else no signal when silent for longer than silent, else moving or
// stopped.
func (l *Live) Fleet(maxAge, silent time.Duration) FleetAnswer {
	nowMs := l.eventNowMs()
	cutoff, quiet := nowMs-maxAge.Milliseconds(), nowMs-silent.Milliseconds()
	worst := l.worstAlerts()
	p := &l.positions
	p.mu.RLock()
	rows := make([][]any, 0, len(p.list))
	for _, pos := range p.list {
		if pos.TimeMs < cutoff {
			continue
		}
		state := FleetStopped
		switch sv, alerted := worst[pos.Plate]; {
		case alerted:
			state = FleetAlertPrefix + string(sv)
		case pos.TimeMs < quiet:
			state = FleetNoSignal
		case pos.SpeedKmh >= movingKmh:
			state = FleetMoving
		}
		rows = append(rows, []any{pos.Plate, pos.Lon, pos.Lat, pos.SpeedKmh, pos.TimeMs, state})
	}
	p.mu.RUnlock()
	return FleetAnswer{NowMs: nowMs, Fields: fleetFields, Vehicles: rows}
}

// worstAlerts is the severity of each vehicle's worst open alert.
func (l *Live) worstAlerts() map[string]detectors.Severity {
	l.alerts.mu.RLock()
	defer l.alerts.mu.RUnlock()
	out := make(map[string]detectors.Severity, len(l.alerts.byVehicle))
	for plate, vs := range l.alerts.byVehicle {
		for _, v := range vs {
			if cur, ok := out[plate]; !ok || v.Severity.Rank() > cur.Rank() {
				out[plate] = v.Severity
			}
		}
	}
	return out
}
