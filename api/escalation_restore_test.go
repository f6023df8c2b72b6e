package api

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// Across a restart the ladder goes on where it was: a step taken before is not taken (nor
// notified) again, also when the journal holds it twice, and the steps that fell due while
// muckwatch was down are taken at the start, each once, in order.
func TestEscalationSurvivesRestart(t *testing.T) {
	e := newHistEnv(t)
	ctx := context.Background()
	store := NewStore(e.conn, e.db, histLogger())
	l1, now := ladderLive(twoLevels)
	t0 := *now
	// W, a warning: overdue at 30 min, district supervisor at 40, city at 60.
	// S, a severe alert arriving at 30 min: overdue at 35, district supervisor at 45, city at 65.
	alert := func(id, sev string, start time.Time) histAlert {
		return histAlert{id: id, rule: "speeding", severity: sev, status: "open", vehicle: "粤B1" + id, district: "futian",
			start: start, lat: 22.54, lon: 114.06, version: 1}
	}
	e.insertAlerts(alert("W", "warning", t0), alert("S", "severe", t0.Add(30*time.Minute)))
	l1.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "W", "粤B1W", detectors.SeverityWarning, detectors.StatusOpen, 1, t0)})
	*now = t0.Add(30 * time.Minute)
	l1.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "S", "粤B1S", detectors.SeveritySevere, detectors.StatusOpen, 1, *now)})

	*now = t0.Add(41 * time.Minute)
	if got := byAlert(l1.CheckOverdue()); !slices.Equal(got["W"], []string{"overdue", "renotified:1"}) || !slices.Equal(got["S"], []string{"overdue"}) {
		t.Fatalf("before the restart: %v, want W overdue and at level 1, S overdue", got)
	}
	journal := l1.takeJournal()
	for range 2 { // the same items twice: ReplacingMergeTree has not merged them yet
		if err := store.WriteFeed(ctx, journal); err != nil {
			t.Fatal(err)
		}
	}

	// down from 41 to 70 min
	restart := func(at time.Duration) *Live {
		t.Helper()
		l, n := ladderLive(twoLevels)
		*n = t0.Add(at)
		if err := store.Restore(ctx, l); err != nil {
			t.Fatalf("restore: %v", err)
		}
		return l
	}
	l2 := restart(70 * time.Minute)
	if v, _ := l2.Alert("W"); v.EscalationLevel != 1 || len(v.Escalation) != 1 || v.Escalation[0].AtMs != t0.Add(41*time.Minute).UnixMilli() || !v.Overdue {
		t.Fatalf("W restored at level %d with steps %+v, overdue %v; want level 1 taken at 41 min", v.EscalationLevel, v.Escalation, v.Overdue)
	}
	after := l2.CheckOverdue()
	got := byAlert(after)
	if !slices.Equal(got["W"], []string{"renotified:2"}) || !slices.Equal(got["S"], []string{"renotified:1", "renotified:2"}) {
		t.Fatalf("after the restart: %v, want W's level 2 and S's levels 1 and 2, nothing repeated", got)
	}
	for _, it := range after {
		st, _ := lastStep(&it.Alert)
		if st.AtMs != t0.Add(70*time.Minute).UnixMilli() || st.DueMs >= st.AtMs {
			t.Errorf("%s level %d: due %d taken %d, want due during the downtime and taken at the restart", it.Alert.ID, st.Level, st.DueMs, st.AtMs)
		}
	}
	if again := l2.CheckOverdue(); len(again) != 0 {
		t.Fatalf("a second check published %v", byAlert(again))
	}
	if err := store.WriteFeed(ctx, l2.takeJournal()); err != nil {
		t.Fatal(err)
	}

	// and once more: nothing left to take, the history complete
	l3 := restart(3 * time.Hour)
	if again := l3.CheckOverdue(); len(again) != 0 {
		t.Fatalf("after the second restart: %v, want nothing", byAlert(again))
	}
	for id, want := range map[string][]int64{
		"W": {t0.Add(41 * time.Minute).UnixMilli(), t0.Add(70 * time.Minute).UnixMilli()},
		"S": {t0.Add(70 * time.Minute).UnixMilli(), t0.Add(70 * time.Minute).UnixMilli()},
	} {
		v, _ := l3.Alert(id)
		var at []int64
		for i, st := range v.Escalation {
			if st.Level != i+1 {
				t.Errorf("%s step %d is level %d", id, i, st.Level)
			}
			at = append(at, st.AtMs)
		}
		if v.EscalationLevel != 2 || !slices.Equal(at, want) {
			t.Errorf("%s after two restarts: level %d, steps taken at %v, want 2 at %v", id, v.EscalationLevel, at, want)
		}
	}
}

// byAlert names what a check published, per alert.
func byAlert(items []FeedItem) map[string][]string {
	out := map[string][]string{}
	for _, it := range items {
		out[it.Alert.ID] = append(out[it.Alert.ID], changesOf([]FeedItem{it})...)
	}
	return out
}

// A journal write that fails (ClickHouse away) is retried at the next flush, so a step taken
// meanwhile is still known after a restart and not notified again.
func TestEscalationJournalRetried(t *testing.T) {
	e := newHistEnv(t)
	ctx := context.Background()
	t.Setenv("MUCKWATCH_API_TOKENS", "")
	cfg := Config{Escalation: EscalationConfig{Levels: twoLevels}}.WithDefaults()
	store := NewStore(e.conn, e.db, histLogger())
	journal, away := e.db+".alert_feed", e.db+".alert_feed_away"
	if err := e.conn.Exec(ctx, "RENAME TABLE "+journal+" TO "+away); err != nil { // every write fails: no such table
		t.Fatal(err)
	}
	live := NewLive(cfg)
	s, err := NewServer(cfg, live, store, histCity{histLoadCity(t)}, histNoRisk{}, nil, histLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	now := t0
	s.now = func() time.Time { return now }
	live.now = s.now
	e.insertAlerts(histAlert{id: "W", rule: "speeding", severity: "warning", status: "open", vehicle: "粤B1W", district: "futian",
		start: t0, lat: 22.54, lon: 114.06, version: 1})
	live.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "W", "粤B1W", detectors.SeverityWarning, detectors.StatusOpen, 1, t0)})
	now = t0.Add(41 * time.Minute)
	s.tick(ctx) // overdue and level 1, not journaled
	if n := len(s.journalPending); n != 3 {
		t.Fatalf("%d items kept after the failed write, want opened, overdue and renotified", n)
	}
	if err := e.conn.Exec(ctx, "RENAME TABLE "+away+" TO "+journal); err != nil { // the journal is back
		t.Fatal(err)
	}
	now = now.Add(time.Second)
	s.tick(ctx)
	if n := len(s.journalPending); n != 0 {
		t.Fatalf("%d items still kept after a good write", n)
	}

	l2, n2 := ladderLive(twoLevels)
	*n2 = t0.Add(50 * time.Minute)
	if err := store.Restore(ctx, l2); err != nil {
		t.Fatal(err)
	}
	if got := l2.CheckOverdue(); len(got) != 0 {
		t.Errorf("after the restart: %v, want nothing (level 1 was taken, level 2 is due at 60 min)", byAlert(got))
	}
	*n2 = t0.Add(60 * time.Minute)
	if got := byAlert(l2.CheckOverdue()); !slices.Equal(got["W"], []string{"renotified:2"}) {
		t.Errorf("at 60 min: %v, want level 2", got)
	}
}
