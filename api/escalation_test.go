package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// twoLevels is the ladder of most tests: the district supervisor 10 min after the alert went
// overdue, the city 20 min after that.
var twoLevels = []EscalationLevel{
	{Name: "district-supervisor", AfterPrevious: 10 * time.Minute, Scope: ScopeDistrict, Roles: []string{"supervisor"}, Channels: []string{"sup-{district}"}},
	{Name: "city", AfterPrevious: 20 * time.Minute, Scope: ScopeCity, Roles: []string{"supervisor", "admin"}, Channels: []string{"city-centre"}},
}

// ladderLive is testLive with an escalation ladder.
func ladderLive(levels []EscalationLevel) (*Live, *time.Time) {
	l, now := testLive()
	l.cfg.Escalation = EscalationConfig{Levels: levels}.withDefaults()
	return l, now
}

// changesOf names what a check published: overdue, or renotified:LEVEL.
func changesOf(items []FeedItem) []string {
	var out []string
	for _, it := range items {
		if it.Change == ChangeRenotified {
			out = append(out, fmt.Sprintf("%s:%d", it.Change, it.Alert.EscalationLevel))
			continue
		}
		out = append(out, it.Change)
	}
	return out
}

// An overdue alert climbs the ladder level by level at the times the ladder says, steps that fell
// due together are all taken in order, and any handling stops the ladder.
func TestEscalationLadder(t *testing.T) {
	type step struct {
		at     time.Duration // after the alert arrived
		action string        // taken on the alert at that time, before the check
		want   []string      // what the check publishes
	}
	afterArrival := []EscalationLevel{
		{Name: "early", AfterArrival: 10 * time.Minute, Roles: []string{"supervisor"}}, // before the warning is overdue (30 min)
		{Name: "late", AfterArrival: 50 * time.Minute, Scope: ScopeCity, Channels: []string{"city"}},
	}
	for _, tc := range []struct {
		name     string
		levels   []EscalationLevel
		severity detectors.Severity
		steps    []step
		// wantDue is when each step taken was due, after arrival
		wantDue []time.Duration
	}{
		{name: "climbs level by level", levels: twoLevels, severity: detectors.SeverityWarning, steps: []step{
			{at: 29 * time.Minute},
			{at: 30 * time.Minute, want: []string{"overdue"}},
			{at: 40*time.Minute - time.Second},
			{at: 40 * time.Minute, want: []string{"renotified:1"}},
			{at: 59 * time.Minute},
			{at: 60 * time.Minute, want: []string{"renotified:2"}},
			{at: 5 * time.Hour}, // the top of the ladder
		}, wantDue: []time.Duration{40 * time.Minute, 60 * time.Minute}},
		{name: "steps due together are taken in order", levels: twoLevels, severity: detectors.SeveritySevere, steps: []step{
			{at: time.Hour, want: []string{"overdue", "renotified:1", "renotified:2"}},
			{at: 2 * time.Hour},
		}, wantDue: []time.Duration{15 * time.Minute, 35 * time.Minute}},
		{name: "acknowledging stops it", levels: twoLevels, severity: detectors.SeverityWarning, steps: []step{
			{at: 30 * time.Minute, want: []string{"overdue"}},
			{at: 35 * time.Minute, action: "acknowledge"},
			{at: 3 * time.Hour},
		}},
		{name: "dismissing stops it", levels: twoLevels, severity: detectors.SeverityWarning, steps: []step{
			{at: 45 * time.Minute, want: []string{"overdue", "renotified:1"}},
			{at: 50 * time.Minute, action: "dismiss"},
			{at: 3 * time.Hour},
		}, wantDue: []time.Duration{40 * time.Minute}},
		{name: "resolving stops it", levels: twoLevels, severity: detectors.SeverityWarning, steps: []step{
			{at: 41 * time.Minute, want: []string{"overdue", "renotified:1"}},
			{at: 42 * time.Minute, action: "resolve"},
			{at: 3 * time.Hour},
		}, wantDue: []time.Duration{40 * time.Minute}},
		{name: "a dispatch stops it, as it stops overdue", levels: twoLevels, severity: detectors.SeverityWarning, steps: []step{
			{at: 41 * time.Minute, want: []string{"overdue", "renotified:1"}},
			{at: 42 * time.Minute, action: "dispatch"},
			{at: 3 * time.Hour},
		}, wantDue: []time.Duration{40 * time.Minute}},
		{name: "below min_severity: overdue only", levels: twoLevels, severity: detectors.SeverityInfo, steps: []step{
			{at: 2 * time.Hour, want: []string{"overdue"}},
			{at: 10 * time.Hour},
		}},
		{name: "after arrival, never before overdue", levels: afterArrival, severity: detectors.SeverityWarning, steps: []step{
			{at: 20 * time.Minute},
			{at: 30 * time.Minute, want: []string{"overdue", "renotified:1"}},
			{at: 49 * time.Minute},
			{at: 50 * time.Minute, want: []string{"renotified:2"}},
		}, wantDue: []time.Duration{30 * time.Minute, 50 * time.Minute}},
		{name: "no ladder", severity: detectors.SeveritySevere, steps: []step{
			{at: 5 * time.Minute, want: []string{"overdue"}},
			{at: 5 * time.Hour},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, now := ladderLive(tc.levels)
			arrived := *now
			l.Observe(nil, []record.OfficerPosition{{OfficerID: "o-1", Time: arrived, Lat: 22.545, Lon: 114.06, Available: true}},
				[]detectors.Change{change(detectors.ChangeOpened, "a1", "粤B1", tc.severity, detectors.StatusOpen, 1, arrived)})
			sup := Principal{Name: "desk-1", Role: RoleSupervisor}
			for _, s := range tc.steps {
				*now = arrived.Add(s.at)
				if s.action != "" {
					officer := ""
					if s.action == "dispatch" {
						officer = "o-1"
						l.Observe(nil, []record.OfficerPosition{{OfficerID: "o-1", Time: *now, Lat: 22.545, Lon: 114.06, Available: true}}, nil)
					}
					if _, _, err := l.Act("a1", s.action, sup, officer, "checked on site"); err != nil {
						t.Fatalf("%s at %s: %v", s.action, s.at, err)
					}
				}
				if got := changesOf(l.CheckOverdue()); !slices.Equal(got, s.want) {
					t.Fatalf("check at %s published %v, want %v", s.at, got, s.want)
				}
			}
			v, ok := l.Alert("a1")
			if !ok {
				t.Fatal("the alert is gone")
			}
			if v.EscalationLevel != len(tc.wantDue) || len(v.Escalation) != len(tc.wantDue) {
				t.Fatalf("escalation level %d with %d steps, want %d", v.EscalationLevel, len(v.Escalation), len(tc.wantDue))
			}
			for i, st := range v.Escalation {
				lv := tc.levels[i]
				if st.Level != i+1 || st.Name != lv.Name || st.DueMs != arrived.Add(tc.wantDue[i]).UnixMilli() {
					t.Errorf("step %d: level %d %q due %s, want level %d %q due %s", i, st.Level, st.Name,
						time.UnixMilli(st.DueMs).Sub(arrived), i+1, lv.Name, tc.wantDue[i])
				}
				if st.AtMs < st.DueMs {
					t.Errorf("step %d taken at %d before it was due at %d", i, st.AtMs, st.DueMs)
				}
				if (lv.Scope == ScopeDistrict || lv.Scope == "") != (st.District == "futian") {
					t.Errorf("step %d (scope %s) names district %q", i, st.Scope, st.District)
				}
				for j, ch := range st.Channels {
					if want := strings.ReplaceAll(lv.Channels[j], "{district}", "futian"); ch != want {
						t.Errorf("step %d channel %q, want %q", i, ch, want)
					}
				}
			}
		})
	}
}

// A renotified item carries the whole escalation history so far, and the feed (SSE) has it.
func TestEscalationOnTheFeed(t *testing.T) {
	l, now := ladderLive(twoLevels)
	arrived := *now
	l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, arrived)})
	sub, _, _ := l.Subscribe(AlertFilter{}, 0, 16)
	defer l.Unsubscribe(sub)
	*now = arrived.Add(time.Hour)
	items := l.CheckOverdue()
	if len(items) != 3 {
		t.Fatalf("%d items, want overdue and two steps", len(items))
	}
	for i, want := range []string{ChangeOverdue, ChangeRenotified, ChangeRenotified} {
		got := <-sub.ch
		if got.Change != want || got.Seq != items[i].Seq {
			t.Fatalf("feed item %d: %s seq %d, want %s seq %d", i, got.Change, got.Seq, want, items[i].Seq)
		}
		if got.Alert.EscalationLevel != i || len(got.Alert.Escalation) != i {
			t.Errorf("feed item %d: level %d with %d steps, want %d", i, got.Alert.EscalationLevel, len(got.Alert.Escalation), i)
		}
	}
	// the JSON round trip (journal, SSE clients) keeps the steps
	back := decode[FeedItem](t, encodeItem(items[2]))
	if !slices.EqualFunc(back.Alert.Escalation, items[2].Alert.Escalation, func(a, b EscalationStep) bool {
		return a.Level == b.Level && a.Name == b.Name && a.DueMs == b.DueMs && slices.Equal(a.Channels, b.Channels)
	}) {
		t.Errorf("after JSON: %+v, want %+v", back.Alert.Escalation, items[2].Alert.Escalation)
	}
}

func TestLadderDue(t *testing.T) {
	arrived := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	f := func(ack time.Duration, levels []EscalationLevel, want ...time.Duration) {
		t.Helper()
		got := ladderDue(levels, arrived, ack)
		var gotD []time.Duration
		for _, g := range got {
			gotD = append(gotD, g.Sub(arrived))
		}
		if !slices.Equal(gotD, want) {
			t.Errorf("ack %s: due %v, want %v", ack, gotD, want)
		}
	}
	f(5*time.Minute, twoLevels, 15*time.Minute, 35*time.Minute)
	f(30*time.Minute, twoLevels, 40*time.Minute, 60*time.Minute)
	f(30*time.Minute, []EscalationLevel{{AfterArrival: 10 * time.Minute}, {AfterPrevious: time.Minute}}, 30*time.Minute, 31*time.Minute)
	f(5*time.Minute, []EscalationLevel{{AfterArrival: 10 * time.Minute}, {AfterPrevious: time.Minute}, {AfterArrival: 11 * time.Minute}}, 10*time.Minute, 11*time.Minute, 11*time.Minute)
	f(5*time.Minute, nil)
}

func TestEscalationConfigValidate(t *testing.T) {
	ok := func(l EscalationLevel) EscalationLevel {
		if l.Name == "" {
			l.Name = "sup"
		}
		if l.AfterArrival == 0 && l.AfterPrevious == 0 {
			l.AfterPrevious = 10 * time.Minute
		}
		if l.Roles == nil {
			l.Roles = []string{"supervisor"}
		}
		return l
	}
	for _, tc := range []struct {
		name    string
		cfg     EscalationConfig
		hookEnv string // api.webhook.secret_env
		want    string // "" valid, else a part of the error
	}{
		{name: "no ladder", cfg: EscalationConfig{}},
		{name: "two levels", cfg: EscalationConfig{Levels: twoLevels}},
		{name: "bad min severity", cfg: EscalationConfig{MinSeverity: "loud"}, want: `api.escalation.min_severity must be info, warning or severe, got "loud"`},
		{name: "no name", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Name: " "})}}, want: "api.escalation.levels[0] ( ): name must be"},
		{name: "same name twice", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{}), ok(EscalationLevel{})}}, want: `levels[1] (sup): name "sup" is also the name of level 0`},
		{name: "no delay", cfg: EscalationConfig{Levels: []EscalationLevel{{Name: "x", Roles: []string{"supervisor"}}}}, want: "levels[0] (x): set after_arrival (delay after the alert arrived) or after_previous"},
		{name: "both delays", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{AfterArrival: time.Minute, AfterPrevious: time.Minute})}}, want: "set after_arrival or after_previous, not both"},
		{name: "negative delay", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{AfterArrival: -time.Minute})}}, want: "must not be negative"},
		{name: "after arrival out of order", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Name: "a", AfterArrival: time.Hour}), ok(EscalationLevel{Name: "b"}), ok(EscalationLevel{Name: "c", AfterArrival: time.Hour})}},
			want: "levels[2] (c): after_arrival 1h0m0s is not later than level 0 (a)'s 1h0m0s"},
		{name: "bad scope", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Scope: "province"})}}, want: `scope must be district or city, got "province"`},
		{name: "nobody", cfg: EscalationConfig{Levels: []EscalationLevel{{Name: "x", AfterPrevious: time.Minute, Roles: []string{}}}}, want: "notifies nobody"},
		{name: "bad role", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Roles: []string{"mayor"}})}}, want: `role "mayor" is not squad, supervisor, analyst or admin`},
		{name: "empty channel", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Channels: []string{""}})}}, want: "a channel must be 1-200 characters"},
		{name: "bad webhook, secret not shown", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Webhooks: []string{"ftp://user:pw@h/x?token=s3cret"}})}}, hookEnv: "S",
			want: `webhook "ftp://h/x" is not an http(s) URL`},
		{name: "webhook without a secret", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Webhooks: []string{"https://h/x"}})}},
			want: "neither api.escalation.secret_env nor api.webhook.secret_env"},
		{name: "webhook with api.webhook's secret", cfg: EscalationConfig{Levels: []EscalationLevel{ok(EscalationLevel{Webhooks: []string{"https://h/x"}})}}, hookEnv: "S"},
		{name: "too many levels", cfg: EscalationConfig{Levels: make([]EscalationLevel, 11)}, want: "at most 10 levels, got 11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Escalation: tc.cfg}.WithDefaults()
			cfg.Webhook.SecretEnv = tc.hookEnv
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid ladder refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Fatalf("the error shows the webhook's query: %v", err)
			}
		})
	}
}
