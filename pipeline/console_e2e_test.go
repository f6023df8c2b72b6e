package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/api"
)

// TestConsoleJourneys drives the browser console in Debian's Chromium (playwright-core, from
// console/e2e) as its three users would, against a running pipeline with its API: the
// supervisor sees a severe alert arrive and dispatches the nearest officer, the squad looks up
// the truck on a phone-sized screen and lists the trucks near it, the analyst filters, exports
// CSV and replays the track. Screenshots land in console/e2e/artefacts. Node, the npm packages
// and Chromium are installed by `make deps`; without them this test fails, it never skips.
func TestConsoleJourneys(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: the console's browser journeys need it (make deps)")
	}
	e2e, err := filepath.Abs("../console/e2e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e2e, "../node_modules/playwright-core")); err != nil {
		t.Fatal("console/node_modules/playwright-core is missing: run make deps")
	}
	env, c := startAPIEnv(t, nil)
	city := env.started.Engine.City()
	gps, officers := env.cfg.Kafka.Topics.GPS, env.cfg.Kafka.Topics.Officers
	now := time.Now()
	var plate, plate2 string
	var fleet []kafka.Message
	for i, v := range city.Vehicles {
		if plate == "" && city.ActivePermit(v.Plate, now) != nil {
			plate = v.Plate
			continue
		}
		if i >= 80 && plate2 == "" {
			plate2 = v.Plate // speeds in the handling journey
		}
		if i < 80 { // some trucks about the city, moving and parked, for the map
			lat, lon := 22.52+float64(i%9)*0.01, 113.95+float64(i/9)*0.02
			fleet = append(fleet, fixMsg(gps, v.Plate, now.Add(-30*time.Second), lat, lon, float64(i%3)*20))
		}
	}
	if plate == "" || plate2 == "" {
		t.Fatalf("the sample city has no vehicle with a permit valid now (%q) or fewer than 82 vehicles (%q)", plate, plate2)
	}
	produce(t, env.broker, fleet...)
	env.waitFor("the fleet's positions", 30*time.Second, func() bool {
		return env.count("SELECT count() FROM positions") >= uint64(len(fleet))
	})

	// The speeding of TestAPI: 90 km/h eastwards where the limit is 40, near two officers.
	lat0, lon0 := 22.5700, 114.1300
	start := now.Add(-70 * time.Second)
	// speeding runs on a journey's subtest: it fails that test (t), not the parent env.t. Each call
	// places the officers anew, at start: it waits for those two positions, not for any two.
	speeding := func(t *testing.T, plate string, start time.Time) {
		produce(t, env.broker,
			officerMsg(officers, "officer-far", start, lat0+0.05, lon0),
			officerMsg(officers, "officer-near", start, lat0+0.005, lon0))
		const placed = "SELECT uniqExact(officer_id) FROM officer_positions WHERE officer_id IN ('officer-far', 'officer-near') AND ts_ms = ?"
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			var n uint64
			if err := env.conn.QueryRow(context.Background(), placed, start.UnixMilli()).Scan(&n); err != nil {
				t.Fatalf("%s: %v", placed, err)
			}
			if n == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after 30s waiting for the officers' positions at %s (%d of 2 stored)", start.Format(time.RFC3339Nano), n)
			}
		}
		var msgs []kafka.Message
		for i := range 6 {
			msgs = append(msgs, fixMsg(gps, plate, start.Add(time.Duration(i)*10*time.Second), lat0, lon0+float64(i)*0.0024, 90))
		}
		produce(t, env.broker, msgs...)
	}

	vars := []string{"MW_URL=" + c.base, "MW_PLATE=" + plate, "MW_PLATE2=" + plate2, fmt.Sprintf("MW_HERE=%.6f,%.6f", lat0, lon0+5*0.0024)}
	for role, tok := range c.tokens {
		vars = append(vars, "MW_TOKEN_"+strings.ToUpper(string(role))+"="+tok)
	}
	journey := func(t *testing.T, script string, onLine func(string)) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, filepath.Join(e2e, script))
		cmd.Dir = e2e
		cmd.Env = append(os.Environ(), vars...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("cannot start the %s journey: %v", script, err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Logf("%s: %s", script, sc.Text())
			if onLine != nil {
				onLine(sc.Text())
			}
		}
		_, _ = io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("the %s journey failed (%v):\n%s", script, err, stderr.String())
		}
	}

	t.Run("supervisor", func(t *testing.T) {
		journey(t, "supervisor.mjs", func(line string) {
			if line == "READY" {
				speeding(t, plate, start)
			}
		})
		var a api.AlertView
		id := ""
		var page struct{ Alerts []api.AlertView }
		c.getJSON(api.RoleSupervisor, "/api/v1/alerts?rule=speeding&vehicle="+url.QueryEscape(plate), 200, &page)
		for _, x := range page.Alerts {
			id = x.ID
		}
		if id == "" {
			t.Fatalf("no open speeding alert of %s after the journey", plate)
		}
		c.getJSON(api.RoleSupervisor, "/api/v1/alerts/"+id, 200, &a)
		if a.Handling.State != api.StateDispatched || len(a.Handling.Actions) != 1 || a.Handling.Actions[0].OfficerID != "officer-near" ||
			a.Handling.Actions[0].Actor != "test-supervisor" {
			t.Errorf("the alert's handling after the journey: %+v, want one dispatch of officer-near by test-supervisor", a.Handling)
		}
	})
	t.Run("squad", func(t *testing.T) {
		journey(t, "squad.mjs", nil)
	})
	t.Run("analyst", func(t *testing.T) {
		env.waitFor("the speeding alert in ClickHouse", 30*time.Second, func() bool {
			return env.count("SELECT count() FROM alerts WHERE rule = 'speeding' AND vehicle_id = ?", plate) > 0
		})
		journey(t, "analyst.mjs", nil)
	})
	// last, for it dismisses and resolves alerts the other journeys look at
	t.Run("handling", func(t *testing.T) {
		var dismissed, resolved string
		journey(t, "handling.mjs", func(line string) {
			switch {
			case line == "READY":
				speeding(t, plate2, time.Now().Add(-70*time.Second))
			case strings.HasPrefix(line, "DISMISSED "):
				dismissed = strings.TrimPrefix(line, "DISMISSED ")
			case strings.HasPrefix(line, "RESOLVED "):
				resolved = strings.TrimPrefix(line, "RESOLVED ")
			}
		})
		for _, want := range []struct{ id, state, action, reason string }{
			{dismissed, api.StateDismissed, "dismiss", "test drive of the city fleet"},
			{resolved, api.StateResolved, "resolve", ""},
		} {
			if want.id == "" {
				t.Fatalf("the journey did not say which alert it %s", want.state)
			}
			var a api.AlertView
			c.getJSON(api.RoleSupervisor, "/api/v1/alerts/"+url.PathEscape(want.id), 200, &a)
			acts := a.Handling.Actions
			if a.Handling.State != want.state || len(acts) == 0 || acts[len(acts)-1].Action != want.action ||
				acts[len(acts)-1].Reason != want.reason || acts[len(acts)-1].Actor != "test-supervisor" {
				t.Errorf("alert %s after the journey: %+v, want %s by test-supervisor with reason %q", want.id, a.Handling, want.state, want.reason)
			}
		}
	})
}
