package api

import (
	"context"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// After a restart a supervisor's dismissal still stands (also when the episode sends more
// changes), and the acknowledgement deadlines keep counting from when each alert was first
// published: an alert announced overdue before the restart is not announced again, and the others
// go overdue when their own deadline passes, not all at once.
func TestRestoreKeepsHandlingAndDeadlines(t *testing.T) {
	e := newHistEnv(t)
	ctx := context.Background()
	l, now := testLive()
	start := *now
	alert := func(id, sev string, ago time.Duration) histAlert {
		return histAlert{id: id, rule: "speeding", severity: sev, status: "open", vehicle: "粤B1" + id, district: "futian",
			start: start.Add(-ago), lat: 22.54, lon: 114.06, version: 1}
	}
	e.insertAlerts(
		alert("D", "warning", 20*time.Minute), // dismissed
		alert("O", "severe", 2*time.Hour),     // announced overdue before the restart
		alert("F", "warning", 10*time.Minute), // published 10 min ago: due in 20 min
		alert("N", "info", 3*time.Hour),       // not in the journal: its deadline counts from the restart
	)
	store := NewStore(e.conn, e.db, histLogger())
	dismiss := Action{Action: "dismiss", Actor: "desk-1", Role: "supervisor", Reason: "camera misread, checked on site", AtMs: start.Add(-15 * time.Minute).UnixMilli()}
	if err := store.WriteAction(ctx, "D", StateDismissed, dismiss); err != nil {
		t.Fatal(err)
	}
	item := func(change, id string, at time.Time) FeedItem {
		return FeedItem{Seq: uint64(at.UnixMicro()), Change: change, Alert: AlertView{Alert: detectors.Alert{ID: id}}}
	}
	if err := store.WriteFeed(ctx, []FeedItem{
		item("opened", "O", start.Add(-2*time.Hour)), item(ChangeOverdue, "O", start.Add(-115*time.Minute)),
		item("opened", "D", start.Add(-20*time.Minute)), item("opened", "F", start.Add(-10*time.Minute)),
	}); err != nil {
		t.Fatal(err)
	}

	if err := store.Restore(ctx, l); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if v, ok := l.Alert("D"); !ok || v.Handling.State != StateDismissed || len(v.Handling.Actions) != 1 {
		t.Fatalf("restored dismissed alert: ok %v handling %+v", ok, v.Handling)
	}
	// the episode of D goes on after the restart
	l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeUpdated, "D", "粤B1D", detectors.SeverityWarning, detectors.StatusOpen, 2, start)})
	if v, _ := l.Alert("D"); v.Handling.State != StateDismissed || v.Version != 2 {
		t.Errorf("after a later change the dismissed alert is %q (version %d), want dismissed", v.Handling.State, v.Version)
	}
	open := map[string]bool{}
	for _, v := range l.OpenAlerts(AlertFilter{}) {
		open[v.ID] = true
	}
	if open["D"] || !open["O"] || !open["F"] || !open["N"] {
		t.Errorf("open after the restart: %v, want O, F and N", open)
	}
	if over := l.CheckOverdue(); len(over) != 0 {
		t.Errorf("%d alerts announced overdue right after the restart (%s…), want none", len(over), over[0].Alert.ID)
	}
	if v, _ := l.Alert("O"); !v.Overdue {
		t.Error("O, announced overdue before the restart, is not overdue")
	}
	*now = start.Add(21 * time.Minute)
	over := l.CheckOverdue()
	if len(over) != 1 || over[0].Alert.ID != "F" {
		t.Errorf("overdue 21 min after the restart: %d items, want F only", len(over))
	}
}
