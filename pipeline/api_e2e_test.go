package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/api"
)

// testHTTP bounds every request a test makes: a stuck server fails the test, it does not hang it.
var testHTTP = &http.Client{Timeout: time.Minute}

// apiClient talks to a running pipeline's API with one token per role.
type apiClient struct {
	t      *testing.T
	base   string
	tokens map[api.Role]string
}

func (c *apiClient) do(role api.Role, method, path string, body string) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+c.tokens[role])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (c *apiClient) getJSON(role api.Role, path string, wantStatus int, into any) {
	c.t.Helper()
	status, b := c.do(role, "GET", path, "")
	if status != wantStatus {
		c.t.Fatalf("GET %s as %s: status %d, want %d: %s", path, role, status, wantStatus, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			c.t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
}

// startAPIEnv starts a pipeline with the API on and a token per role.
func startAPIEnv(t *testing.T, edit func(*Config)) (*testEnv, *apiClient) {
	tokens := map[api.Role]string{}
	var entries []string
	for _, r := range []api.Role{api.RoleSquad, api.RoleSupervisor, api.RoleAnalyst, api.RoleAdmin} {
		tok, entry, err := api.NewToken(r, "test-"+string(r))
		if err != nil {
			t.Fatal(err)
		}
		tokens[r] = tok
		entries = append(entries, entry)
	}
	t.Setenv("MUCKWATCH_API_TOKENS", strings.Join(entries, ","))
	env := startEnv(t, edit)
	return env, &apiClient{t: t, base: env.started.APIURL, tokens: tokens}
}

func produce(t *testing.T, broker string, msgs ...kafka.Message) {
	t.Helper()
	produceWith(t, broker, &kafka.Hash{}, msgs...)
}

// produceWith produces msgs partitioned by balancer, as a gateway that does not follow the
// contract's partitioner does.
func produceWith(t *testing.T, broker string, balancer kafka.Balancer, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(broker), Balancer: balancer, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func fixMsg(topic, plate string, at time.Time, lat, lon, speed float64) kafka.Message {
	return kafka.Message{Topic: topic, Key: []byte(plate), Value: []byte(fmt.Sprintf(
		`{"vehicle_id":%q,"ts":%d,"lat":%.6f,"lon":%.6f,"speed_kmh":%g}`, plate, at.UnixMilli(), lat, lon, speed))}
}

func officerMsg(topic, id string, at time.Time, lat, lon float64) kafka.Message {
	return kafka.Message{Topic: topic, Key: []byte(id), Value: []byte(fmt.Sprintf(
		`{"officer_id":%q,"ts":%d,"lat":%.6f,"lon":%.6f,"available":true}`, id, at.UnixMilli(), lat, lon))}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, event string
	item      api.FeedItem
}

// openStream connects to the alert stream; events arrive on the channel until the body closes.
func (c *apiClient) openStream(ctx context.Context, query, lastID string) (<-chan sseEvent, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+"/api/v1/alerts/stream"+query, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.tokens[api.RoleSupervisor])
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("stream: status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ch := make(chan sseEvent, 1024)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.id != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.item)
			}
		}
	}()
	return ch, nil
}

// next waits for the next event matching pred.
func next(t *testing.T, ch <-chan sseEvent, what string, pred func(sseEvent) bool) sseEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream closed before %s", what)
			}
			if pred(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s on the stream within 30s", what)
		}
	}
}

// TestAPI drives the whole API through the real pipeline: a registered truck speeds far above the
// limit near two officers; the squads find it (plate typed loosely), the supervisors see the
// severe alert on the stream and the open list offered to the nearest officer, act on it, and
// resume the stream after a disconnect; every lookup is audited and every action recorded.
func TestAPI(t *testing.T) {
	env, c := startAPIEnv(t, func(cfg *Config) {
		cfg.API.AckWithin.Severe = 2 * time.Second         // the unlicensed truck's severe alert goes overdue in this test
		cfg.API.Escalation.Levels = []api.EscalationLevel{ // ... and climbs to the city a second later each
			{Name: "district-supervisor", AfterPrevious: time.Second, Scope: api.ScopeDistrict, Roles: []string{"supervisor"}, Channels: []string{"sup-{district}"}},
			{Name: "city", AfterPrevious: time.Second, Scope: api.ScopeCity, Channels: []string{"city-centre"}},
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	city := env.started.Engine.City()
	gps, officers := env.cfg.Kafka.Topics.GPS, env.cfg.Kafka.Topics.Officers
	// a registered truck with a permit valid now
	var plate string
	now := time.Now()
	for _, v := range city.Vehicles {
		if p := city.ActivePermit(v.Plate, now); p != nil {
			plate = v.Plate
			break
		}
	}
	if plate == "" {
		t.Fatal("the sample city has no vehicle with a permit valid now")
	}
	// Somewhere with the city's default limit (40 km/h): no speed zone, no restricted zone, no site.
	lat0, lon0 := 22.5700, 114.1300

	// The stream is open before anything happens.
	stream, err := c.openStream(ctx, "?severity=severe", "")
	if err != nil {
		t.Fatal(err)
	}

	start := now.Add(-10 * time.Minute)
	// The officers are on duty (and known to the live view) before the truck speeds.
	produce(t, env.broker,
		officerMsg(officers, "officer-far", start, lat0+0.05, lon0),   // ~5.6 km north
		officerMsg(officers, "officer-near", start, lat0+0.005, lon0), // ~560 m north
	)
	env.waitFor("the officers' positions", 30*time.Second, func() bool {
		return env.count("SELECT count() FROM officer_positions WHERE officer_id IN ('officer-far', 'officer-near')") == 2
	})
	var msgs []kafka.Message
	for i := range 6 { // 90 km/h eastwards, a fix every 10 s
		msgs = append(msgs, fixMsg(gps, plate, start.Add(time.Duration(i)*10*time.Second), lat0, lon0+float64(i)*0.0024, 90))
	}
	// an unregistered truck on the move: unlicensed
	for i := range 3 {
		msgs = append(msgs, fixMsg(gps, "粤Z00001", start.Add(time.Duration(i)*10*time.Second), lat0-0.01, lon0+float64(i)*0.001, 30))
	}
	produce(t, env.broker, msgs...)

	opened := next(t, stream, "the severe speeding alert", func(ev sseEvent) bool {
		return ev.event == "opened" && ev.item.Alert.Rule == "speeding" && ev.item.Alert.VehicleID == plate
	})
	alertID := opened.item.Alert.ID
	if opened.item.Alert.Severity != "severe" || opened.item.Alert.Severity.Action() != "dispatch_enforcement" {
		t.Errorf("speeding at 90 in a 40 limit: severity %s, action %s", opened.item.Alert.Severity, opened.item.Alert.Severity.Action())
	}
	d := opened.item.Alert.Dispatch
	if d == nil || d.Kind != api.DispatchOfficers || len(d.Officers) != 2 || d.Officers[0].OfficerID != "officer-near" {
		t.Fatalf("dispatch plan: want both officers, the nearest first, got %+v", d)
	}
	if d.Officers[0].DistanceM < 400 || d.Officers[0].DistanceM > 700 || d.Officers[0].ETASeconds <= 0 {
		t.Errorf("nearest officer: %+v, want about 560 m away with an ETA", d.Officers[0])
	}

	t.Run("roles", func(t *testing.T) {
		for _, tc := range []struct {
			role   api.Role
			method string
			path   string
			want   int
		}{
			{"", "GET", "/api/v1/vehicles/" + url.PathEscape(plate), 401},
			{"", "GET", "/api/v1/alerts", 401},
			{"", "GET", "/api/v1/violations?from=0&to=1", 401},
			{"", "GET", "/api/v1/openapi.json", 200},
			{api.RoleSquad, "GET", "/api/v1/alerts", 403},
			{api.RoleSquad, "POST", "/api/v1/alerts/" + alertID + "/actions", 403},
			{api.RoleSquad, "GET", "/api/v1/violations?from=0&to=1", 403},
			{api.RoleAnalyst, "GET", "/api/v1/alerts/stream", 403},
			{api.RoleAnalyst, "GET", "/api/v1/vehicles/" + url.PathEscape(plate), 200},
			{api.RoleSupervisor, "GET", "/api/v1/alerts?limit=1", 200},
			{api.RoleAdmin, "GET", "/api/v1/alerts?limit=1", 200},
			{api.RoleAdmin, "GET", "/api/v1/vehicles/near?lat=22.57&lon=114.13", 200},
		} {
			status, body := c.do(tc.role, tc.method, tc.path, "")
			if status != tc.want {
				t.Errorf("%s %s as %q: %d, want %d: %s", tc.method, tc.path, tc.role, status, tc.want, body)
			}
			if status >= 400 && !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s %s as %q: error answer without a message: %s", tc.method, tc.path, tc.role, body)
			}
		}
		req, _ := http.NewRequest("GET", c.base+"/api/v1/alerts", nil)
		req.Header.Set("Authorization", "Bearer mw_not-a-token")
		resp, err := testHTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("unknown token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("squad lookup", func(t *testing.T) {
		loose := strings.ToLower(plate[:3]) + " " + strings.ToLower(plate[3:]) // 粤b 12345
		var rep api.VehicleReport
		c.getJSON(api.RoleSquad, "/api/v1/vehicles/"+url.PathEscape(loose), 200, &rep)
		if rep.Plate != plate || !rep.Registered || rep.Company == "" || rep.RatedLoad <= 0 {
			t.Errorf("vehicle: %+v", rep)
		}
		validNow := 0
		for _, p := range rep.Permits {
			if p.ValidNow {
				validNow++
				if p.Route == "" || p.FromSite == "" || p.ToSite == "" || p.ValidTo == "" {
					t.Errorf("permit without route or sites: %+v", p)
				}
			}
		}
		if validNow == 0 {
			t.Errorf("no permit valid now: %+v", rep.Permits)
		}
		if rep.Position == nil || rep.Position.TimeMs != start.Add(50*time.Second).UnixMilli() {
			t.Errorf("last position: %+v, want the fix at %s", rep.Position, start.Add(50*time.Second))
		}
		if rep.Risk.Level == "low" || rep.Risk.Score < 35 || !strings.Contains(strings.Join(rep.Risk.Reasons(), ";"), "open severe speeding alert") {
			t.Errorf("risk with an open severe alert: %+v", rep.Risk)
		}
		found := false
		for _, a := range rep.OpenAlerts {
			found = found || a.ID == alertID
		}
		if !found || rep.Violations30d["speeding"] != 1 || rep.ViolationsSum < 1 {
			t.Errorf("open alerts %v, violations %v", rep.OpenAlerts, rep.Violations30d)
		}
		status, body := c.do(api.RoleSquad, "GET", "/api/v1/vehicles/"+url.PathEscape("粤B00000X"), "")
		if status != 404 || !strings.Contains(string(body), "unknown") {
			t.Errorf("unknown plate: %d %s", status, body)
		}
		var near struct {
			Vehicles []api.NearVehicle `json:"vehicles"`
		}
		c.getJSON(api.RoleSquad, fmt.Sprintf("/api/v1/vehicles/near?lat=%f&lon=%f&radius_m=3000&max_age=1h", lat0, lon0), 200, &near)
		if len(near.Vehicles) != 2 || near.Vehicles[0].Plate != "粤Z00001" && near.Vehicles[0].Plate != plate {
			t.Fatalf("near: %+v", near.Vehicles)
		}
		for _, v := range near.Vehicles {
			if v.Plate == plate && (v.RiskLevel != rep.Risk.Level || v.OpenAlerts < 1 || v.DistanceM > 3000) {
				t.Errorf("near: %+v", v)
			}
		}
		for _, bad := range []string{"lat=95&lon=114", "lat=22.5", "lat=22.5&lon=114&radius_m=100000", "lat=x&lon=114"} {
			if status, body := c.do(api.RoleSquad, "GET", "/api/v1/vehicles/near?"+bad, ""); status != 400 {
				t.Errorf("near?%s: %d %s", bad, status, body)
			}
		}
	})

	t.Run("open alerts and overdue", func(t *testing.T) {
		var page struct {
			Total  int             `json:"total"`
			Alerts []api.AlertView `json:"alerts"`
			Next   string          `json:"next"`
		}
		c.getJSON(api.RoleSupervisor, "/api/v1/alerts?severity=severe&rule=speeding", 200, &page)
		if page.Total != 1 || page.Alerts[0].ID != alertID || page.Alerts[0].Handling.State != api.StateNew {
			t.Fatalf("open severe speeding alerts: %+v", page)
		}
		c.getJSON(api.RoleSupervisor, "/api/v1/alerts?limit=1", 200, &page)
		if page.Total < 2 || len(page.Alerts) != 1 || page.Next == "" || page.Alerts[0].Severity != "severe" {
			t.Errorf("first page of one: %+v", page)
		}
		if status, _ := c.do(api.RoleSupervisor, "GET", "/api/v1/alerts?rule=teleport", ""); status != 400 {
			t.Errorf("unknown rule filter: %d", status)
		}
		// the unregistered truck's alert nobody acknowledges goes overdue (ack_within.severe = 2s);
		// resuming from the start of the feed replays it even if it went overdue before
		all, err := c.openStream(ctx, "?rule=unlicensed", "1")
		if err != nil {
			t.Fatal(err)
		}
		ev := next(t, all, "an overdue unlicensed alert", func(ev sseEvent) bool { return ev.event == api.ChangeOverdue })
		if ev.item.Alert.VehicleID != "粤Z00001" || !ev.item.Alert.Overdue {
			t.Errorf("overdue: %+v", ev.item)
		}
		// nobody acts: it is re-notified to the district supervisor, then to the city
		ev = next(t, all, "the overdue alert escalated to the city", func(ev sseEvent) bool {
			return ev.event == api.ChangeRenotified && ev.item.Alert.VehicleID == "粤Z00001" && ev.item.Alert.EscalationLevel == 2
		})
		steps := ev.item.Alert.Escalation
		district := ev.item.Alert.District
		if len(steps) != 2 || steps[0].Name != "district-supervisor" || steps[0].District != district ||
			!slices.Equal(steps[0].Channels, []string{"sup-" + district}) || steps[1].Scope != api.ScopeCity {
			t.Errorf("escalation steps on the feed: %+v", steps)
		}
		if n := readTopic(t, env.broker, env.cfg.Outputs.AlertsTopic, 1, func(m kafka.Message) bool {
			return strings.Contains(string(m.Value), `"change":"renotified"`) && strings.Contains(string(m.Value), `"escalation_level":2`)
		}); n != 1 {
			t.Errorf("muck.alerts carries %d renotified changes at level 2, want 1", n)
		}
		// the digest counts it, for its district, at level 2; and the request is audited
		var dg api.Digest
		c.getJSON(api.RoleSupervisor, "/api/v1/alerts/digest?current=true&district="+url.QueryEscape(district), 200, &dg)
		if len(dg.Districts) != 1 || dg.Districts[0].Overdue < 1 || !slices.ContainsFunc(dg.Districts[0].ByLevel, func(l api.DigestLevel) bool { return l.Level == 2 && l.Name == "city" }) {
			t.Errorf("digest of %s: %+v", district, dg)
		}
		env.waitFor("the digest request in api_audit", 30*time.Second, func() bool {
			return env.count("SELECT count() FROM api_audit WHERE path = '/api/v1/alerts/digest' AND status = 200") >= 1
		})
	})

	var lastSeen string
	t.Run("actions", func(t *testing.T) {
		path := "/api/v1/alerts/" + alertID + "/actions"
		for _, tc := range []struct {
			body  string
			want  int
			state string
		}{
			{`{"action":"teleport"}`, 400, ""},
			{`{"action":"dismiss"}`, 400, ""}, // a reason is required
			{`{"action":"acknowledge"}`, 200, api.StateAcknowledged},
			{`{"action":"acknowledge"}`, 409, ""},
			{`{"action":"dispatch","officer_id":"officer-near"}`, 200, api.StateDispatched},
			{`{"action":"dispatch","officer_id":"nobody"}`, 400, ""},
			{`{"action":"resolve","reason":"fined on the spot"}`, 200, api.StateResolved},
			{`{"action":"resolve"}`, 409, ""}, // already resolved: a conflict, not unknown
			{`not json`, 400, ""},
		} {
			status, body := c.do(api.RoleSupervisor, "POST", path, tc.body)
			if status != tc.want {
				t.Errorf("%s: %d, want %d: %s", tc.body, status, tc.want, body)
				continue
			}
			if tc.state != "" {
				var v api.AlertView
				if err := json.Unmarshal(body, &v); err != nil || v.Handling.State != tc.state {
					t.Errorf("%s: state %q, want %q (%v)", tc.body, v.Handling.State, tc.state, err)
				}
			} else if !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s: refused without a message: %s", tc.body, body)
			}
		}
		// a resolved alert keeps its history for GET
		var handled api.AlertView
		c.getJSON(api.RoleSupervisor, "/api/v1/alerts/"+alertID, 200, &handled)
		if handled.Handling.State != api.StateResolved || len(handled.Handling.Actions) != 3 {
			t.Errorf("GET of the resolved alert: %s with %d actions, want resolved with 3", handled.Handling.State, len(handled.Handling.Actions))
		}
		ev := next(t, stream, "the resolve action on the stream", func(ev sseEvent) bool {
			return ev.event == api.ChangeHandling && ev.item.Alert.ID == alertID && ev.item.Alert.Handling.State == api.StateResolved
		})
		acts := ev.item.Alert.Handling.Actions
		if len(acts) != 3 || acts[0].Actor != "test-supervisor" || acts[1].OfficerID != "officer-near" || acts[2].Reason != "fined on the spot" {
			t.Errorf("actions on the feed: %+v", acts)
		}
		lastSeen = ev.id
		env.waitFor("the actions in alert_actions", 30*time.Second, func() bool {
			return env.count("SELECT count() FROM alert_actions WHERE alert_id = ? AND actor = 'test-supervisor'", alertID) == 3
		})
		if n := readTopic(t, env.broker, env.cfg.Outputs.AlertsTopic, 3, func(m kafka.Message) bool {
			return strings.Contains(string(m.Value), `"change":"handling"`)
		}); n != 3 {
			t.Errorf("muck.alerts carries %d handling changes, want 3", n)
		}
	})

	t.Run("stream resumes with Last-Event-ID", func(t *testing.T) {
		cancel() // the client disconnects
		// meanwhile the truck slows down: the speeding episode resolves (a minute clear)
		var more []kafka.Message
		for i := 6; i < 16; i++ {
			more = append(more, fixMsg(gps, plate, start.Add(time.Duration(i)*10*time.Second), lat0, lon0+0.012+float64(i-6)*0.0008, 30))
		}
		produce(t, env.broker, more...)
		env.waitFor("the resolution in ClickHouse", 30*time.Second, func() bool {
			return env.count("SELECT count() FROM alert_changes WHERE alert_id = ? AND kind = 'resolved'", alertID) == 1
		})
		ctx2, cancel2 := context.WithCancel(context.Background())
		defer cancel2()
		resumed, err := c.openStream(ctx2, "?severity=severe", lastSeen)
		if err != nil {
			t.Fatal(err)
		}
		ev := next(t, resumed, "the resolution missed while disconnected", func(ev sseEvent) bool {
			return ev.item.Alert.ID == alertID && ev.event == "resolved"
		})
		if ev.id <= lastSeen && len(ev.id) == len(lastSeen) {
			t.Errorf("resumed event id %s is not after %s", ev.id, lastSeen)
		}
	})

	t.Run("analysts", func(t *testing.T) {
		from, to := start.Add(-time.Minute).UnixMilli(), time.Now().Add(time.Minute).UnixMilli()
		var grouped struct {
			Rows []map[string]any `json:"rows"`
		}
		c.getJSON(api.RoleAnalyst, fmt.Sprintf("/api/v1/violations?from=%d&to=%d&group_by=rule&vehicle=%s", from, to, url.QueryEscape(plate)), 200, &grouped)
		byRule := map[string]float64{}
		for _, r := range grouped.Rows {
			byRule[r["rule"].(string)] = r["violations"].(float64)
		}
		if byRule["speeding"] != 1 {
			t.Errorf("violations of %s by rule: %v, want one speeding", plate, byRule)
		}
		var track struct {
			Features []struct {
				Geometry struct {
					Type        string          `json:"type"`
					Coordinates json.RawMessage `json:"coordinates"`
				} `json:"geometry"`
				Properties map[string]any `json:"properties"`
			} `json:"features"`
		}
		c.getJSON(api.RoleSupervisor, fmt.Sprintf("/api/v1/vehicles/%s/track?from=%d&to=%d", url.PathEscape(plate), from, to), 200, &track)
		points, alerts := 0.0, 0
		for _, f := range track.Features {
			switch f.Properties["kind"] {
			case "track":
				points = f.Properties["points"].(float64)
			case "alert":
				alerts++
			}
		}
		if points != 16 || alerts < 1 {
			t.Errorf("track: %v points, %d alerts; want all 16 fixes and the speeding alert", points, alerts)
		}
		var heat struct {
			Features []struct {
				Properties struct {
					Violations int `json:"violations"`
				} `json:"properties"`
			} `json:"features"`
		}
		c.getJSON(api.RoleAnalyst, fmt.Sprintf("/api/v1/heatmap?rule=speeding&from=%d&to=%d&cell_m=1000", from, to), 200, &heat)
		if len(heat.Features) != 1 || heat.Features[0].Properties.Violations != 1 {
			t.Errorf("speeding heatmap: %+v", heat.Features)
		}
		if status, _ := c.do(api.RoleAnalyst, "GET", "/api/v1/violations?from=x&to=1", ""); status != 400 {
			t.Errorf("bad from: %d", status)
		}
	})

	t.Run("audit", func(t *testing.T) {
		env.waitFor("the lookups in api_audit", 30*time.Second, func() bool {
			return env.count("SELECT count() FROM api_audit WHERE plate = ? AND actor = 'test-squad' AND status = 200", plate) >= 1 &&
				env.count("SELECT count() FROM api_audit WHERE plate = '粤B00000X' AND status = 404") == 1
		})
	})
}
