package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/detectors"
)

// VehicleReport is the squads' answer about one vehicle.
type VehicleReport struct {
	Plate      string  `json:"plate"`
	Registered bool    `json:"registered"`
	Company    string  `json:"company,omitempty"`
	RatedLoad  float64 `json:"rated_load_kg,omitempty"`
	// PermitValidNow says whether one of the permits is valid now; PermitStatus says why (which
	// permit until when, or why none is).
	PermitValidNow bool           `json:"permit_valid_now"`
	PermitStatus   string         `json:"permit_status"`
	Permits        []PermitView   `json:"permits"`
	Position       *LastPosition  `json:"last_position"`
	Risk           detectors.Risk `json:"risk"`
	OpenAlerts     []AlertView    `json:"open_alerts"`
	// Violations30d counts the violations of the last 30 days by rule.
	Violations30d map[string]int `json:"violations_30d"`
	ViolationsSum int            `json:"violations_30d_total"`
}

// LastPosition is a vehicle's last known position with its time in the city's zone, its age and
// the district it is in.
type LastPosition struct {
	VehiclePosition
	Time         string  `json:"time"`
	AgeS         float64 `json:"age_s"`
	District     string  `json:"district,omitempty"`
	DistrictName string  `json:"district_name,omitempty"`
}

// PermitView is a transport permit as the squads see it.
type PermitView struct {
	ID        string  `json:"id"`
	ValidNow  bool    `json:"valid_now"`
	Route     string  `json:"route"`
	RouteName string  `json:"route_name,omitempty"`
	FromSite  string  `json:"from_site"`
	FromName  string  `json:"from_site_name,omitempty"`
	ToSite    string  `json:"to_site"`
	ToName    string  `json:"to_site_name,omitempty"`
	ValidFrom string  `json:"valid_from"`
	ValidTo   string  `json:"valid_to"`
	MaxLoadKg float64 `json:"max_load_kg,omitempty"`
	Company   string  `json:"company"`
}

func (s *Server) handleVehicle(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("plate")
	plate := city.NormalizePlate(raw)
	auditPlates(r, plate)
	if plate == "" || len(plate) > 32 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("plate %q is not a licence plate", raw))
		return
	}
	rep, found, err := s.vehicleReport(r, plate)
	if err != nil {
		s.historyFailed(w, r, err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("vehicle %s is unknown: not registered, no permit, and never seen by muckwatch%s", plate, s.plateHint(plate)))
		return
	}
	if p := principal(r); p.Role != RoleSupervisor && p.Role != RoleAdmin {
		// who is sent where, and the officers' positions, are the command centre's
		for i := range rep.OpenAlerts {
			rep.OpenAlerts[i].Dispatch = nil
		}
	}
	writeJSON(w, http.StatusOK, rep)
}

// plateHint suggests known plates that end with plate (a plate given without its province
// character, B70214 for 粤B70214), as text to append to a 404 message.
func (s *Server) plateHint(plate string) string {
	if plate == "" || plate[0] >= 0x80 { // starts with a province character: nothing to add
		return ""
	}
	seen := map[string]bool{}
	var out []string
	for _, v := range s.city.City().Vehicles {
		if len(v.Plate) > len(plate) && strings.HasSuffix(v.Plate, plate) && !seen[v.Plate] {
			seen[v.Plate] = true
			out = append(out, v.Plate)
		}
	}
	for _, p := range s.live.PlatesEndingWith(plate, 5) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return "; a plate starts with its province character (粤B12345)"
	}
	slices.Sort(out)
	return "; did you mean " + strings.Join(out[:min(len(out), 5)], " or ") + "?"
}

// permitStatus says whether a permit is valid at now and why, in the city's zone.
func permitStatus(ps []*city.Permit, now time.Time, loc *time.Location) (bool, string) {
	if len(ps) == 0 {
		return false, "no muck-transport permit"
	}
	var next, last *city.Permit
	for _, p := range ps {
		switch {
		case p.Valid(now):
			return true, fmt.Sprintf("permit %s is valid until %s", p.ID, p.ValidTo.In(loc).Format(time.RFC3339))
		case now.Before(p.ValidFrom):
			if next == nil || p.ValidFrom.Before(next.ValidFrom) {
				next = p
			}
		default:
			if last == nil || p.ValidTo.After(last.ValidTo) {
				last = p
			}
		}
	}
	if next != nil {
		return false, fmt.Sprintf("no permit valid now: permit %s is valid from %s", next.ID, next.ValidFrom.In(loc).Format(time.RFC3339))
	}
	return false, fmt.Sprintf("no permit valid now: permit %s expired at %s", last.ID, last.ValidTo.In(loc).Format(time.RFC3339))
}

func (s *Server) vehicleReport(r *http.Request, plate string) (VehicleReport, bool, error) {
	c := s.city.City()
	now := s.now()
	rep := VehicleReport{Plate: plate, Permits: []PermitView{}, OpenAlerts: []AlertView{}}
	found := false
	if v := c.Vehicle(plate); v != nil {
		rep.Registered, rep.Company, rep.RatedLoad, found = true, v.Company, v.RatedLoadKg, true
	}
	for _, p := range c.PermitsOf(plate) {
		found = true
		pv := PermitView{ID: p.ID, ValidNow: p.Valid(now), Route: p.RouteID, FromSite: p.FromSite, ToSite: p.ToSite,
			ValidFrom: p.ValidFrom.In(c.Location).Format(time.RFC3339), ValidTo: p.ValidTo.In(c.Location).Format(time.RFC3339),
			MaxLoadKg: p.MaxLoadKg, Company: p.Company}
		if rt := c.Route(p.RouteID); rt != nil {
			pv.RouteName = rt.Name
		}
		if st := c.Site(p.FromSite); st != nil {
			pv.FromName = st.Name
		}
		if st := c.Site(p.ToSite); st != nil {
			pv.ToName = st.Name
		}
		rep.Permits = append(rep.Permits, pv)
	}
	rep.PermitValidNow, rep.PermitStatus = permitStatus(c.PermitsOf(plate), now, c.Location)
	var last *VehiclePosition
	if pos, ok := s.live.Position(plate); ok {
		last, found = &pos, true
	} else if s.store != nil && !s.live.KnownUnseen(plate) {
		var pos VehiclePosition
		var ok bool
		err := s.query(r.Context(), func(ctx context.Context) (err error) {
			pos, ok, err = s.store.LastPosition(ctx, plate)
			return err
		})
		if err != nil {
			return rep, false, err
		}
		if ok {
			s.live.RememberPosition(pos)
			last, found = &pos, true
		} else {
			s.live.RememberUnseen(plate)
		}
	}
	if last != nil {
		lp := &LastPosition{VehiclePosition: *last, Time: formatTime(time.UnixMilli(last.TimeMs), c.Location),
			AgeS: round1(max(0, float64(s.live.eventNowMs()-last.TimeMs)/1000))}
		if d := c.DistrictAt(c.Proj.Forward(orb.Point{last.Lon, last.Lat})); d != nil {
			lp.District, lp.DistrictName = d.ID, d.Name
		}
		rep.Position = lp
	}
	if risk, ok := s.risk.Risk(plate); ok {
		rep.Risk = risk
	} else {
		rep.Risk = detectors.UnseenRisk(rep.Registered)
	}
	rep.OpenAlerts = s.live.OpenAlerts(AlertFilter{Vehicle: plate})
	rep.Violations30d, rep.ViolationsSum = s.live.ViolationsByRule(plate)
	if len(rep.OpenAlerts) > 0 || rep.ViolationsSum > 0 {
		found = true
	}
	return rep, found, nil
}

// NearVehicle is one vehicle near a squad.
type NearVehicle struct {
	VehiclePosition
	DistanceM  float64 `json:"distance_m"`
	Registered bool    `json:"registered"`
	Company    string  `json:"company,omitempty"`
	RiskScore  int     `json:"risk_score"`
	RiskLevel  string  `json:"risk_level"`
	OpenAlerts int     `json:"open_alerts"`
}

func (s *Server) handleNear(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lat, err1 := floatParam(q.Get("lat"), "lat", -90, 90)
	lon, err2 := floatParam(q.Get("lon"), "lon", -180, 180)
	radius, err3 := floatParam(orDefault(q.Get("radius_m"), "1000"), "radius_m", 1, 50_000)
	limit, err4 := intParam(orDefault(q.Get("limit"), "100"), "limit", 1, 1000)
	maxAge, err5 := durationParam(orDefault(q.Get("max_age"), "30m"), "max_age", time.Minute, 7*24*time.Hour)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ps, ds := s.live.Near(lat, lon, radius, maxAge, limit)
	c := s.city.City()
	out := make([]NearVehicle, len(ps))
	plates := make([]string, len(ps))
	for i, p := range ps {
		nv := NearVehicle{VehiclePosition: p, DistanceM: round1(ds[i])}
		if v := c.Vehicle(p.Plate); v != nil {
			nv.Registered, nv.Company = true, v.Company
		}
		risk, ok := s.risk.Risk(p.Plate)
		if !ok {
			risk = detectors.UnseenRisk(nv.Registered)
		}
		nv.RiskScore, nv.RiskLevel = risk.Score, risk.Level
		nv.OpenAlerts = s.live.OpenAlertCount(p.Plate)
		plates[i] = p.Plate
		out[i] = nv
	}
	auditPlates(r, plates...) // one audit row for the request, listing the vehicles shown
	writeJSON(w, http.StatusOK, map[string]any{"lat": lat, "lon": lon, "radius_m": radius, "vehicles": out})
}

// AlertsPage is the answer of GET /api/v1/alerts.
type AlertsPage struct {
	Total  int         `json:"total"`
	Offset int         `json:"offset"`
	Limit  int         `json:"limit"`
	Alerts []AlertView `json:"alerts"`
	// Next is the request for the next page ("" on the last): it carries a cursor, the position
	// after this page's last alert, so that alerts opened or closed meanwhile do not shift items
	// between pages.
	Next string `json:"next"`
}

func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := s.liveFilter(q)
	limit, err2 := intParam(orDefault(q.Get("limit"), "100"), "limit", 1, 1000)
	offset, err3 := intParam(orDefault(q.Get("offset"), "0"), "offset", 0, math.MaxInt32)
	var err4 error
	var after *alertCursor
	if c := q.Get("cursor"); c != "" {
		after, err4 = parseCursor(c)
		if err4 == nil && offset > 0 {
			err4 = errors.New("give either cursor or offset, not both")
		}
	}
	var err5 error
	if st := q.Get("state"); st != "" {
		f.States = splitSet(st)
		for s := range f.States {
			if s != StateNew && s != StateDispatched && s != StateAcknowledged {
				err5 = fmt.Errorf("state %q is not new, dispatched or acknowledged (resolved and dismissed alerts are not open; GET /api/v1/alerts/{id} shows one)", s)
			}
		}
	}
	var err6 error
	switch q.Get("overdue") {
	case "":
	case "true":
		f.Overdue = new(true)
	case "false":
		f.Overdue = new(false)
	default:
		err6 = fmt.Errorf("overdue must be true or false, got %q", q.Get("overdue"))
	}
	if err := errors.Join(err, err2, err3, err4, err5, err6); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if v := q.Get("vehicle"); v != "" {
		f.Vehicle = city.NormalizePlate(v)
		auditPlates(r, f.Vehicle) // a vehicle's alerts are a lookup of the vehicle
	}
	all := s.live.OpenAlerts(f)
	start := min(offset, len(all))
	if after != nil {
		start = sort.Search(len(all), func(i int) bool { return after.before(&all[i]) })
	}
	page := all[start:min(start+limit, len(all))]
	next := ""
	if start+limit < len(all) && len(page) > 0 {
		nq := r.URL.Query()
		nq.Del("offset")
		nq.Set("cursor", cursorOf(&page[len(page)-1]).String())
		next = r.URL.Path + "?" + nq.Encode()
	}
	writeJSON(w, http.StatusOK, AlertsPage{Total: len(all), Offset: start, Limit: limit, Alerts: page, Next: next})
}

// liveFilter parses the rule, severity and district filters of the live alerts and the stream.
func (s *Server) liveFilter(q url.Values) (AlertFilter, error) {
	f, err := alertFilter(q.Get("rule"), q.Get("severity"), "")
	districts, err2 := s.districtParam(q.Get("district"))
	f.Districts = districts
	return f, errors.Join(err, err2)
}

func (s *Server) handleAlert(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if v, ok := s.live.Alert(id); ok {
		writeJSON(w, http.StatusOK, v)
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("alert %q is not open (unknown, ended, or resolved or dismissed); query /api/v1/violations for history", id))
}

// ActionRequest is the body of POST /api/v1/alerts/{id}/actions.
type ActionRequest struct {
	Action    string `json:"action"`
	OfficerID string `json:"officer_id"`
	Reason    string `json:"reason"`
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	var req ActionRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, describeJSONError(err)+`; the body must be {"action": "dispatch|acknowledge|resolve|dismiss", "officer_id": "…", "reason": "…"}`)
		return
	}
	if len(req.Reason) > 1000 || len(req.OfficerID) > 64 {
		writeError(w, http.StatusBadRequest, "reason must be at most 1000 bytes and officer_id at most 64")
		return
	}
	id := r.PathValue("id")
	p := principal(r)
	v, a, err := s.live.Act(id, req.Action, p, req.OfficerID, strings.TrimSpace(req.Reason))
	if err != nil {
		var ae *ActionError
		if errors.As(err, &ae) {
			writeError(w, ae.Status, ae.Msg)
			return
		}
		s.log.Error("cannot apply an alert action", "alert", r.PathValue("id"), "err", err)
		writeError(w, http.StatusInternalServerError, "cannot apply the action (a bug: please report it)")
		return
	}
	if s.store != nil {
		if err := s.store.WriteAction(r.Context(), id, v.Handling.State, a); err != nil {
			s.log.Error("cannot record an alert action in ClickHouse", "alert", id, "action", a.Action, "err", err)
		}
	}
	if s.announce != nil {
		if err := s.announce.Announce(r.Context(), []FeedItem{{Change: ChangeHandling, Alert: v}}); err != nil {
			s.log.Warn("cannot announce an alert action on the alerts topic", "alert", id, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, v)
}

func alertFilter(rules, severities, districts string) (AlertFilter, error) {
	f := AlertFilter{Rules: splitSet(rules), Severities: splitSet(severities), Districts: splitSet(districts)}
	for r := range f.Rules {
		if !knownRule(r) {
			return f, fmt.Errorf("rule %q is not one of %s", r, strings.Join(ruleNames(), ", "))
		}
	}
	for sv := range f.Severities {
		if _, ok := detectors.ParseSeverity(sv); !ok {
			return f, fmt.Errorf("severity %q is not info, warning or severe", sv)
		}
	}
	return f, nil
}

func ruleNames() []string {
	out := make([]string, 0, len(detectors.AllRules()))
	for _, r := range detectors.AllRules() {
		out = append(out, string(r))
	}
	return out
}

func knownRule(s string) bool {
	for _, r := range detectors.AllRules() {
		if string(r) == s {
			return true
		}
	}
	return false
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func floatParam(s, name string, lo, hi float64) (float64, error) {
	if s == "" {
		return 0, fmt.Errorf("%s is required", name)
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || x < lo || x > hi {
		return 0, fmt.Errorf("%s must be a number within [%g, %g], got %q", name, lo, hi, s)
	}
	return x, nil
}

func intParam(s, name string, lo, hi int) (int, error) {
	x, err := strconv.Atoi(s)
	if err != nil || x < lo || x > hi {
		return 0, fmt.Errorf("%s must be an integer within [%d, %d], got %q", name, lo, hi, s)
	}
	return x, nil
}

func durationParam(s, name string, lo, hi time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%s must be a duration within [%s, %s] (e.g. 30m), got %q", name, lo, hi, s)
	}
	return d, nil
}

// minPlausibleMs: a Unix-milliseconds time before it (2001-09-09) is taken for Unix seconds given
// by mistake (every Unix second of this century is below it) and refused. 0 stays allowed.
const minPlausibleMs = 1_000_000_000_000

// timeParam parses RFC 3339 or Unix milliseconds.
func timeParam(s, name string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%s is required (RFC 3339, e.g. 2026-11-23T08:00:00+08:00, or Unix milliseconds)", name)
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms > 0 && ms < minPlausibleMs {
			return time.Time{}, fmt.Errorf("%s %s reads as Unix milliseconds, %s: it looks like Unix seconds; give milliseconds (%s000) or RFC 3339",
				name, s, time.UnixMilli(ms).UTC().Format(time.RFC3339), s)
		}
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s must be RFC 3339 (e.g. 2026-11-23T08:00:00+08:00) or Unix milliseconds, got %q", name, s)
	}
	return t, nil
}

// window parses from and to, and checks from < to and the span against the cap.
func (s *Server) window(r *http.Request) (time.Time, time.Time, error) {
	q := r.URL.Query()
	from, err1 := timeParam(q.Get("from"), "from")
	to, err2 := timeParam(q.Get("to"), "to")
	if err := errors.Join(err1, err2); err != nil {
		return from, to, err
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) > s.cfg.MaxWindow {
		return from, to, fmt.Errorf("the window from %s to %s is longer than the %s allowed", from.Format(time.RFC3339), to.Format(time.RFC3339), s.cfg.MaxWindow)
	}
	return from, to, nil
}

// splitSet parses a comma-separated list into a set.
func splitSet(s string) map[string]bool {
	if s == "" {
		return nil
	}
	out := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out[p] = true
		}
	}
	return out
}

// describeJSONError says what is wrong with a JSON request body in the client's terms: where the
// syntax breaks, which field has the wrong kind of value; never the Go types it was read into.
func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var kind *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &kind) && kind.Field != "":
		return fmt.Sprintf("field %q must be a string, got a JSON %s", kind.Field, kind.Value)
	case errors.As(err, &kind):
		return fmt.Sprintf("the body must be a JSON object, got a JSON %s", kind.Value)
	case errors.Is(err, io.EOF):
		return "the body is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of a JSON value"
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + f
	}
	return "the body is not a JSON object"
}
