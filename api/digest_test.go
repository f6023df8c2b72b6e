package api

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// The digest's counts, by district, rule and escalation level, match counts made here from the
// generated alerts' own times and actions with plain arithmetic, not with the code under test.
func TestDigestCounts(t *testing.T) {
	s, tok, now := usersServer(t)
	s.cfg.Escalation = EscalationConfig{Levels: twoLevels}.withDefaults()
	s.live.cfg.Escalation = s.cfg.Escalation
	s.live.cfg.Digest.MaxAlerts = 5
	h := s.Handler()
	t0 := *now
	// the ladder of twoLevels in minutes after arrival: overdue, level 1, level 2 (info: overdue only)
	due := map[detectors.Severity][]time.Duration{
		detectors.SeveritySevere:  {5 * time.Minute, 15 * time.Minute, 35 * time.Minute},
		detectors.SeverityWarning: {30 * time.Minute, 40 * time.Minute, 60 * time.Minute},
		detectors.SeverityInfo:    {2 * time.Hour},
	}
	type spec struct {
		id, district, rule string
		sev                detectors.Severity
		arrive             time.Duration // after t0
		action             string        // taken at t1 ("": none)
	}
	rng := rand.New(rand.NewPCG(22, 1))
	districts := []string{"futian", "luohu", "nanshan", ""}
	rules := []detectors.Rule{detectors.RuleSpeeding, detectors.RuleDwell, detectors.RuleRouteDeviation}
	sevs := []detectors.Severity{detectors.SeveritySevere, detectors.SeverityWarning, detectors.SeverityInfo}
	actions := []string{"", "", "acknowledge", "dismiss", "resolve"}
	var specs []spec
	for i := range 300 {
		specs = append(specs, spec{id: fmt.Sprintf("a%03d", i), district: districts[rng.IntN(len(districts))], rule: string(rules[rng.IntN(len(rules))]),
			sev: sevs[rng.IntN(len(sevs))], arrive: time.Duration(rng.IntN(180)) * time.Minute, action: actions[rng.IntN(len(actions))]})
	}
	slices.SortFunc(specs, func(a, b spec) int { return int(a.arrive - b.arrive) })
	t1, t2 := t0.Add(3*time.Hour), t0.Add(4*time.Hour) // a check at t1, the actions just after, the digest at t2
	for _, sp := range specs {
		*now = t0.Add(sp.arrive)
		c := change(detectors.ChangeOpened, sp.id, "粤B"+sp.id, sp.sev, detectors.StatusOpen, 1, *now)
		c.Alert.Rule, c.Alert.District = detectors.Rule(sp.rule), sp.district
		s.live.Observe(nil, nil, []detectors.Change{c})
	}
	*now = t1
	s.live.CheckOverdue()
	sup := Principal{Name: "desk-1", Role: RoleSupervisor}
	for _, sp := range specs {
		if sp.action != "" {
			if _, _, err := s.live.Act(sp.id, sp.action, sup, "", "checked on site"); err != nil {
				t.Fatalf("%s %s: %v", sp.action, sp.id, err)
			}
		}
	}
	*now = t2
	s.live.CheckOverdue()

	// expected, by hand
	type counts struct{ open, unhandled, overdue int }
	want := map[string]*counts{}
	wantRule := map[string]map[string][2]int{}
	wantLevel := map[string]map[int]int{}
	for _, d := range histLoadCity(t).Districts {
		want[d.ID] = &counts{}
	}
	for _, sp := range specs {
		if sp.action == "dismiss" || sp.action == "resolve" {
			continue
		}
		lastCheck := t2 // the last check at which the alert was still new
		if sp.action != "" {
			lastCheck = t1
		}
		age := lastCheck.Sub(t0.Add(sp.arrive))
		overdue := age >= due[sp.sev][0]
		level := 0
		for _, d := range due[sp.sev][1:] {
			if age >= d {
				level++
			}
		}
		c := want[sp.district]
		if c == nil {
			c = &counts{}
			want[sp.district] = c
		}
		c.open++
		if sp.action == "" {
			c.unhandled++
		}
		if wantRule[sp.district] == nil {
			wantRule[sp.district], wantLevel[sp.district] = map[string][2]int{}, map[int]int{}
		}
		r := wantRule[sp.district][sp.rule]
		r[0]++
		if overdue {
			c.overdue++
			r[1]++
			wantLevel[sp.district][level]++
		}
		wantRule[sp.district][sp.rule] = r
	}

	rec := request(t, h, "GET", "/api/v1/alerts/digest?current=true", tok[RoleSupervisor], "")
	if rec.Code != 200 {
		t.Fatalf("GET digest: %d %s", rec.Code, rec.Body)
	}
	d := decode[Digest](t, rec.Body.Bytes())
	if d.Scheduled || d.MadeMs != t2.UnixMilli() || d.TimeZone != "Asia/Shanghai" || d.Date != "2026-11-23" {
		t.Errorf("digest made %d (%s, %s) scheduled %v, want made now, on request", d.MadeMs, d.Date, d.TimeZone, d.Scheduled)
	}
	if len(d.Districts) != len(want) {
		t.Errorf("%d districts in the digest, want %d", len(d.Districts), len(want))
	}
	levelNames := []string{"", "district-supervisor", "city"}
	total := 0
	for _, p := range d.Districts {
		w := want[p.District]
		if w == nil {
			t.Errorf("district %q in the digest has no alert and is not the city's", p.District)
			continue
		}
		if p.Open != w.open || p.Unhandled != w.unhandled || p.Overdue != w.overdue {
			t.Errorf("%q: open %d unhandled %d overdue %d, want %d %d %d", p.District, p.Open, p.Unhandled, p.Overdue, w.open, w.unhandled, w.overdue)
		}
		total += p.Overdue
		gotRule := map[string][2]int{}
		for _, r := range p.ByRule {
			gotRule[r.Rule] = [2]int{r.Open, r.Overdue}
		}
		for rule, n := range wantRule[p.District] {
			if gotRule[rule] != n {
				t.Errorf("%q %s: open/overdue %v, want %v", p.District, rule, gotRule[rule], n)
			}
		}
		if len(gotRule) != len(wantRule[p.District]) {
			t.Errorf("%q: rules %v, want %v", p.District, gotRule, wantRule[p.District])
		}
		gotLevel := map[int]int{}
		for _, l := range p.ByLevel {
			gotLevel[l.Level] = l.Alerts
			if l.Name != levelNames[l.Level] {
				t.Errorf("%q level %d named %q, want %q", p.District, l.Level, l.Name, levelNames[l.Level])
			}
		}
		for lv, n := range wantLevel[p.District] {
			if gotLevel[lv] != n {
				t.Errorf("%q level %d: %d alerts, want %d", p.District, lv, gotLevel[lv], n)
			}
		}
		if len(p.Alerts)+p.More != p.Overdue || len(p.Alerts) > 5 {
			t.Errorf("%q lists %d overdue alerts and %d more, want %d in all, at most 5 listed", p.District, len(p.Alerts), p.More, p.Overdue)
		}
		if !slices.IsSortedFunc(p.Alerts, func(a, b DigestAlertLine) int { return int(a.ReceivedMs - b.ReceivedMs) }) {
			t.Errorf("%q: overdue alerts not oldest first", p.District)
		}
	}
	if total == 0 || total == len(specs) {
		t.Fatalf("%d of %d alerts overdue: the generated history does not exercise the digest", total, len(specs))
	}

	// one district, and the roles
	rec = request(t, h, "GET", "/api/v1/alerts/digest?district=luohu", tok[RoleAnalyst], "")
	if d := decode[Digest](t, rec.Body.Bytes()); rec.Code != 200 || len(d.Districts) != 1 || d.Districts[0].Open != want["luohu"].open {
		t.Errorf("luohu for an analyst: %d %s", rec.Code, rec.Body)
	}
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/api/v1/alerts/digest", tok[RoleSquad], 403},
		{"/api/v1/alerts/digest", "", 401},
		{"/api/v1/alerts/digest?district=atlantis", tok[RoleSupervisor], 400},
		{"/api/v1/alerts/digest?current=maybe", tok[RoleSupervisor], 400},
		{"/api/v1/alerts/digest?plate=x", tok[RoleSupervisor], 400},
		{"/api/v1/alerts/digest", tok[RoleAdmin], 200},
	} {
		if rec := request(t, h, "GET", tc.path, tc.token, ""); rec.Code != tc.status {
			t.Errorf("GET %s: %d, want %d: %s", tc.path, rec.Code, tc.status, rec.Body)
		}
	}
	for _, rt := range s.routes {
		if rt.path == "/api/v1/alerts/digest" && !rt.audit {
			t.Error("the digest route is not audited")
		}
	}
}

// The scheduled digest comes once a day at api.digest.at in the city's time zone, across a
// daylight-saving change, and not late for a time that passed before the start.
func TestDigestSchedule(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	f := func(at string, loc *time.Location, start time.Time, until time.Time, want ...string) {
		t.Helper()
		d := newDigestSchedule(DigestConfig{At: at})
		var got []string
		for now := start; !now.After(until); now = now.Add(time.Minute) {
			if d.tick(now, loc) {
				got = append(got, now.In(loc).Format("2006-01-02 15:04 MST"))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("digest at %s %s from %s: %v, want %v", at, loc, start.In(loc), got, want)
		}
	}
	// started after 08:00 local: the first digest is the next day's
	f("08:00", sh, time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC),
		"2026-11-24 08:00 CST", "2026-11-25 08:00 CST")
	// started before: today's
	f("08:00", sh, time.Date(2026, 11, 22, 23, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), "2026-11-23 08:00 CST")
	// New York leaves summer time on 2026-11-01: 07:00 local stays 07:00
	f("07:00", ny, time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 23, 0, 0, 0, time.UTC),
		"2026-10-31 07:00 EDT", "2026-11-01 07:00 EST", "2026-11-02 07:00 EST")
	f("off", sh, time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
}

func TestParseClock(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"08:00", true}, {"23:59", true}, {"00:00", true}, {"24:00", false}, {"8:00", false}, {"08:60", false}, {"08", false}, {"", false}, {"ab:cd", false}, {"+1:05", false}, {"-0:30", false}} {
		if _, err := parseClock(tc.in); (err == nil) != tc.ok {
			t.Errorf("parseClock(%q): %v", tc.in, err)
		}
	}
	cfg := Config{Digest: DigestConfig{At: "25:00"}}.WithDefaults()
	if err := cfg.Validate(); err == nil || err.Error() != `api.digest.at: "25:00" is not a time of day HH:MM (00:00-23:59, local time) or off` {
		t.Errorf("validate 25:00: %v", err)
	}
}
