package api

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

func TestParseTokens(t *testing.T) {
	entry := TokenEntry(RoleSquad, "alice", "tok-a")
	tests := []struct {
		name, env, wantErr string
		n                  int
	}{
		{"empty", "", "", 0},
		{"one", entry, "", 1},
		{"two, newline and spaces", entry + "\n " + TokenEntry(RoleAdmin, "root", "tok-r") + " ,", "", 2},
		{"unknown role", strings.Replace(entry, "squad", "janitor", 1), "role \"janitor\"", 0},
		{"plain token", "squad:alice:tok-a", "want ROLE:NAME:sha256:HEX", 0},
		{"short hash", "squad:alice:sha256:abcd", "64 hex digits", 0},
		{"duplicate", entry + "," + strings.Replace(entry, "alice", "bob", 1), "listed twice", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := ParseTokens(tc.env, "$X")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "$X") {
					t.Fatalf("error %v, want one naming $X and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || tk.Len() != tc.n {
				t.Fatalf("%d tokens, err %v; want %d", tk.Len(), err, tc.n)
			}
		})
	}
	tk, _ := ParseTokens(entry, "$X")
	if p, ok := tk.Lookup("tok-a"); !ok || p.Name != "alice" || p.Role != RoleSquad {
		t.Errorf("Lookup(tok-a) = %+v %v", p, ok)
	}
	if _, ok := tk.Lookup("tok-b"); ok {
		t.Error("a wrong token is accepted")
	}
	tok, e, err := NewToken(RoleAnalyst, "ana")
	if err != nil || !strings.HasPrefix(tok, "mw_") || strings.Contains(e, tok) {
		t.Fatalf("NewToken: %q %q %v (the entry must not contain the token)", tok, e, err)
	}
	if _, _, err := NewToken("boss", "x"); err == nil {
		t.Error("NewToken accepts an unknown role")
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(10, 3)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Fatalf("4th request: ok %v wait %s, want refused for ≤ 100 ms", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Error("another token's bucket is shared")
	}
	now = now.Add(100 * time.Millisecond)
	if ok, _ := l.allow("a"); !ok {
		t.Error("refilled bucket still refuses")
	}
}

func testLive() (*Live, *time.Time) {
	cfg := Config{}.WithDefaults()
	cfg.FeedBuffer = 100
	l := NewLive(cfg)
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	l.feed.complete = 0
	return l, &now
}

func change(kind detectors.ChangeKind, id, plate string, sev detectors.Severity, status detectors.Status, version uint64, at time.Time) detectors.Change {
	return detectors.Change{Kind: kind, Alert: detectors.Alert{ID: id, Rule: detectors.RuleSpeeding, Severity: sev, Status: status,
		VehicleID: plate, District: "futian", Start: at, Lat: 22.54, Lon: 114.06, Version: version, Updated: at}}
}

func TestLiveAlertLifecycle(t *testing.T) {
	l, now := testLive()
	at := *now
	l.Observe(nil, []record.OfficerPosition{
		{OfficerID: "o-near", Time: at, Lat: 22.545, Lon: 114.06, Available: true},
		{OfficerID: "o-busy", Time: at, Lat: 22.541, Lon: 114.06, Available: false},
		{OfficerID: "o-stale", Time: at.Add(-time.Hour), Lat: 22.5401, Lon: 114.06, Available: true},
		{OfficerID: "o-far", Time: at, Lat: 22.60, Lon: 114.06, Available: true},
	}, nil)
	l.Observe([]record.Fix{{VehicleID: "粤B1", Time: at, Lat: 22.54, Lon: 114.06, SpeedKmh: 70}}, nil, []detectors.Change{
		change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, at),
		change(detectors.ChangeOpened, "w1", "粤B1", detectors.SeverityWarning, detectors.StatusOpen, 1, at),
	})
	v, ok := l.Alert("a1")
	if !ok || v.Dispatch == nil || v.Dispatch.Kind != DispatchOfficers {
		t.Fatalf("severe alert: %+v", v.Dispatch)
	}
	if got := v.Dispatch.Officers; len(got) != 2 || got[0].OfficerID != "o-near" || got[1].OfficerID != "o-far" {
		t.Errorf("offered %+v, want o-near then o-far (busy and stale officers are not offered)", got)
	}
	w, _ := l.Alert("w1")
	if w.Dispatch == nil || w.Dispatch.Kind != DispatchGridStaff || w.Dispatch.GridStaff != "grid-staff:futian" {
		t.Errorf("warning: %+v, want the district's grid staff", w.Dispatch)
	}
	if byRule, n := l.ViolationsByRule("粤B1"); n != 2 || byRule["speeding"] != 2 {
		t.Errorf("violations %v %d", byRule, n)
	}
	// the same opened change read again after a replay counts once
	l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, at)})
	if _, n := l.ViolationsByRule("粤B1"); n != 2 {
		t.Errorf("a replayed opened change counted again: %d", n)
	}

	sup := Principal{Name: "sup", Role: RoleSupervisor}
	for _, tc := range []struct {
		id, action, officer, reason string
		status                      int
		state                       string
	}{
		{"a1", "fly", "", "", 400, ""},
		{"a1", "dismiss", "", "", 400, ""},
		{"nope", "acknowledge", "", "", 404, ""},
		{"a1", "dispatch", "", "", 0, StateDispatched}, // the nearest available officer
		{"a1", "dispatch", "o-ghost", "", 400, ""},
		{"a1", "dispatch", "o-near", "", 409, ""}, // already dispatched to o-near
		{"a1", "dispatch", "o-far", "", 0, StateDispatched},
		{"a1", "acknowledge", "", "", 0, StateAcknowledged},
		{"a1", "acknowledge", "", "", 409, ""},
		{"a1", "dismiss", "", "duplicate of a1 seen by camera", 0, StateDismissed},
		{"a1", "resolve", "", "", 409, ""}, // already dismissed
	} {
		v, a, err := l.Act(tc.id, tc.action, sup, tc.officer, tc.reason)
		if tc.status != 0 {
			ae, ok := err.(*ActionError)
			if !ok || ae.Status != tc.status {
				t.Errorf("%s %s: %v, want status %d", tc.action, tc.id, err, tc.status)
			}
			continue
		}
		if err != nil || v.Handling.State != tc.state || a.Actor != "sup" {
			t.Errorf("%s %s: %v state %s", tc.action, tc.id, err, v.Handling.State)
		}
		if tc.action == "dispatch" && tc.officer == "" && a.OfficerID != "o-near" {
			t.Errorf("dispatch without an officer went to %q, want the nearest, o-near", a.OfficerID)
		}
	}
	if len(l.OpenAlerts(AlertFilter{Vehicle: "粤B1"})) != 1 {
		t.Errorf("the dismissed alert is still open: %+v", l.OpenAlerts(AlertFilter{}))
	}

	// overdue: the warning, never acknowledged, after ack_within.warning
	*now = now.Add(l.cfg.AckWithin.Warning - time.Second)
	if over := l.CheckOverdue(); len(over) != 0 {
		t.Fatalf("overdue before the deadline: %+v", over)
	}
	*now = now.Add(2 * time.Second)
	over := l.CheckOverdue()
	if len(over) != 1 || over[0].Alert.ID != "w1" || over[0].Change != ChangeOverdue || !over[0].Alert.Overdue {
		t.Fatalf("overdue: %+v", over)
	}
	if len(l.CheckOverdue()) != 0 {
		t.Error("an alert went overdue twice")
	}
	// the warning's episode ends: it leaves the open list (not severe)
	l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeResolved, "w1", "粤B1", detectors.SeverityWarning, detectors.StatusResolved, 2, *now)})
	if n := len(l.OpenAlerts(AlertFilter{})); n != 0 {
		t.Errorf("%d open alerts after the warning resolved, want 0", n)
	}
}

func TestLiveFeedResume(t *testing.T) {
	l, now := testLive()
	var seqs []uint64
	for i := range 150 { // more than FeedBuffer (100)
		*now = now.Add(time.Millisecond)
		l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "a"+string(rune('A'+i%26))+string(rune('a'+i/26)), "粤B1",
			detectors.SeverityWarning, detectors.StatusOpen, 1, *now)})
		seqs = append(seqs, l.feed.seq)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seq not increasing at %d: %d after %d", i, seqs[i], seqs[i-1])
		}
	}
	items, ok := l.Since(seqs[120], 1000)
	if !ok || len(items) != 29 || items[0].Seq != seqs[121] {
		t.Errorf("since item 120: ok %v, %d items from %d; want 29 from %d", ok, len(items), items[0].Seq, seqs[121])
	}
	if _, ok := l.Since(seqs[10], 1000); ok {
		t.Error("the ring dropped item 11 but claims to hold everything after item 10")
	}
	if j := l.takeJournal(); len(j) != 150 || len(l.takeJournal()) != 0 {
		t.Errorf("journal: %d items, want all 150 once", len(j))
	}
	// a subscriber that falls behind is closed, not blocking the publisher
	sub, backlog, ok := l.Subscribe(AlertFilter{}, seqs[148], 2)
	if !ok || len(backlog) != 1 {
		t.Fatalf("subscribe after item 148: ok %v backlog %d", ok, len(backlog))
	}
	for range 3 {
		*now = now.Add(time.Millisecond)
		l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeEscalated, "aAa", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 5, *now)})
	}
	n := 0
	for range sub.ch {
		n++
	}
	if n != 2 {
		t.Errorf("slow subscriber got %d items before being closed, want its buffer of 2", n)
	}
	l.Unsubscribe(sub) // closing twice must not panic
}

func TestNear(t *testing.T) {
	l, now := testLive()
	fix := func(plate string, lat, lon float64, age time.Duration) record.Fix {
		return record.Fix{VehicleID: plate, Time: now.Add(-age), Lat: lat, Lon: lon}
	}
	l.Observe([]record.Fix{
		fix("near", 22.5405, 114.06, 0),          // ~56 m
		fix("mid", 22.5450, 114.06, time.Minute), // ~556 m
		fix("old", 22.5401, 114.06, 2*time.Hour),
		fix("far", 22.6000, 114.06, 0),
	}, nil, nil)
	ps, ds := l.Near(22.54, 114.06, 1000, 30*time.Minute, 10)
	if len(ps) != 2 || ps[0].Plate != "near" || ps[1].Plate != "mid" || ds[0] < 50 || ds[0] > 60 || ds[1] < 540 || ds[1] > 570 {
		t.Errorf("near: %+v %v", ps, ds)
	}
	if ps, _ := l.Near(22.54, 114.06, 1000, 30*time.Minute, 1); len(ps) != 1 {
		t.Errorf("limit 1: %d", len(ps))
	}
}

// The live view finds a fix's vehicle by its plate number (record.PlateNumbers) and keeps the
// newest position; a number is only a hint: another plate under the same number, a fix without
// one and a position remembered from ClickHouse all land on their own plate.
func TestLivePositionsByNumber(t *testing.T) {
	l, now := testLive()
	at := func(s int) time.Time { return now.Add(time.Duration(s) * time.Second) }
	steps := []struct {
		name  string
		fixes []record.Fix
		want  map[string]int // plate → the second its position is from
	}{
		{"first fixes", []record.Fix{{VehicleID: "粤B1", VehicleNo: 1, Time: at(0)}, {VehicleID: "粤B2", VehicleNo: 2, Time: at(0)}},
			map[string]int{"粤B1": 0, "粤B2": 0}},
		{"newer by number, older skipped", []record.Fix{{VehicleID: "粤B1", VehicleNo: 1, Time: at(10)}, {VehicleID: "粤B1", VehicleNo: 1, Time: at(5)}},
			map[string]int{"粤B1": 10, "粤B2": 0}},
		{"another plate under number 1", []record.Fix{{VehicleID: "粤B3", VehicleNo: 1, Time: at(3)}},
			map[string]int{"粤B1": 10, "粤B2": 0, "粤B3": 3}},
		{"number 1's first plate again, and one without a number", []record.Fix{{VehicleID: "粤B1", VehicleNo: 1, Time: at(20)}, {VehicleID: "粤B2", Time: at(7)}},
			map[string]int{"粤B1": 20, "粤B2": 7, "粤B3": 3}},
	}
	for _, s := range steps {
		l.Observe(s.fixes, nil, nil)
		for plate, sec := range s.want {
			if p, ok := l.Position(plate); !ok || p.Plate != plate || p.TimeMs != at(sec).UnixMilli() {
				t.Fatalf("%s: %s at %+v (%v), want +%ds", s.name, plate, p, ok, sec)
			}
		}
	}
	l.RememberPosition(VehiclePosition{Plate: "粤B1", TimeMs: at(15).UnixMilli()}) // older than the view's
	l.RememberPosition(VehiclePosition{Plate: "粤B4", TimeMs: at(1).UnixMilli()})
	for plate, sec := range map[string]int{"粤B1": 20, "粤B4": 1} {
		if p, ok := l.Position(plate); !ok || p.TimeMs != at(sec).UnixMilli() {
			t.Errorf("remembered: %s at %+v (%v), want +%ds", plate, p, ok, sec)
		}
	}
	if ps, _ := l.Near(0, 0, 1000, time.Hour, 10); len(ps) != 4 {
		t.Errorf("near: %d vehicles, want 4: %+v", len(ps), ps)
	}
	if _, ok := l.Position("粤B9"); ok {
		t.Error("a plate never seen has a position")
	}
}

// TestLiveConcurrent drives every part of the view at once (positions, officers, alerts and
// their handling, the feed and its subscribers), for the race detector: each part has a lock of
// its own.
func TestLiveConcurrent(t *testing.T) {
	cfg := Config{}.WithDefaults()
	cfg.FeedBuffer = 50
	l := NewLive(cfg)
	at := time.Now()
	var wg sync.WaitGroup
	const rounds = 200
	wg.Go(func() {
		for i := range rounds {
			plate := "粤B" + strconv.Itoa(i%7)
			c := change(detectors.ChangeOpened, "a"+strconv.Itoa(i), plate, detectors.SeveritySevere, detectors.StatusOpen, 1, at)
			l.Observe([]record.Fix{{VehicleID: plate, Time: at.Add(time.Duration(i) * time.Second), Lat: 22.54, Lon: 114.06}},
				[]record.OfficerPosition{{OfficerID: "o" + strconv.Itoa(i%3), Time: at, Lat: 22.541, Lon: 114.06, Available: true}},
				[]detectors.Change{c})
		}
	})
	wg.Go(func() {
		for i := range rounds {
			_, _, _ = l.Act("a"+strconv.Itoa(i), "dispatch", Principal{Name: "sup", Role: RoleSupervisor}, "", "")
			l.CheckOverdue()
		}
	})
	wg.Go(func() {
		sub, _, _ := l.Subscribe(AlertFilter{}, 0, 8)
		defer l.Unsubscribe(sub)
		for range rounds {
			l.OpenAlerts(AlertFilter{})
			l.Near(22.54, 114.06, 1000, time.Hour, 10)
			l.Since(0, 10)
			l.takeJournal()
			l.ViolationsByRule("粤B1")
			l.RememberPosition(VehiclePosition{Plate: "粤Z1", TimeMs: 1})
			l.Position("粤B2")
		}
	})
	wg.Wait()
	if n := len(l.OpenAlerts(AlertFilter{})); n == 0 || n > rounds {
		t.Errorf("%d open alerts after %d opened", n, rounds)
	}
}

// A supervisor's resolution or dismissal stands while the alert's episode goes on: later changes
// of the alert keep its handling, it does not come back on the open list nor go overdue, and
// GET /alerts/{id} still shows it with its history; another action on it is refused with 409.
func TestHandledAlertStaysHandled(t *testing.T) {
	for _, action := range []string{"dismiss", "resolve"} {
		for _, sev := range []detectors.Severity{detectors.SeverityWarning, detectors.SeveritySevere} {
			t.Run(action+" "+string(sev), func(t *testing.T) {
				l, now := testLive()
				at := *now
				l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "a1", "粤B1", sev, detectors.StatusOpen, 1, at)})
				sup := Principal{Name: "desk-1", Role: RoleSupervisor}
				if _, _, err := l.Act("a1", action, sup, "", "camera misread, checked on site"); err != nil {
					t.Fatalf("%s: %v", action, err)
				}
				want := actionState[action]
				// the episode goes on, and later ends
				for v := uint64(2); v <= 4; v++ {
					*now = now.Add(8 * time.Second)
					l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeUpdated, "a1", "粤B1", sev, detectors.StatusOpen, v, *now)})
				}
				items, _ := l.Since(0, 100)
				last := items[len(items)-1]
				if last.Alert.Handling.State != want || last.Alert.Version != 4 {
					t.Errorf("feed item of the later change: state %q version %d, want %q 4", last.Alert.Handling.State, last.Alert.Version, want)
				}
				v, ok := l.Alert("a1")
				if !ok || v.Handling.State != want || len(v.Handling.Actions) != 1 || v.Handling.Actions[0].Reason == "" {
					t.Fatalf("GET alert after later changes: ok %v handling %+v, want %s with its action", ok, v.Handling, want)
				}
				if open := l.OpenAlerts(AlertFilter{}); len(open) != 0 {
					t.Errorf("the %s alert is open again: %+v", want, open)
				}
				*now = now.Add(l.cfg.AckWithin.Info + time.Hour)
				if over := l.CheckOverdue(); len(over) != 0 {
					t.Errorf("the %s alert went overdue: %+v", want, over)
				}
				_, _, err := l.Act("a1", "acknowledge", sup, "", "")
				if ae, ok := err.(*ActionError); !ok || ae.Status != 409 || !strings.Contains(ae.Msg, want) {
					t.Errorf("acknowledge after %s: %v, want 409 saying it is %s", action, err, want)
				}
			})
		}
	}
}
