package api

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// The live records the pipeline writes read back as written; anything else is refused with a
// reason.
func TestDecodeLiveRecord(t *testing.T) {
	f := func(in, wantErr string, check func(LiveRecord) bool) {
		t.Helper()
		r, err := DecodeLiveRecord([]byte(in))
		switch {
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: error %v, want one saying %q", in, err, wantErr)
		case wantErr == "" && err != nil:
			t.Errorf("%s: %v", in, err)
		case wantErr == "" && !check(r):
			t.Errorf("%s: decoded %+v", in, r)
		}
	}
	vehicle, err := os.ReadFile(filepath.Join("testdata", "live", "vehicle.json"))
	if err != nil {
		t.Fatal(err)
	}
	f(string(vehicle), "", func(r LiveRecord) bool {
		return r.Vehicle != nil && r.Vehicle.Plate == "粤B12345" && r.Vehicle.TimeMs == 1796495504000 && r.Vehicle.Risk.Score == 63 && r.Officer == nil
	})
	f(`{"officer":{"officer_id":"o-7","lat":22.5,"lon":114,"available":true,"time_ms":5}}`, "", func(r LiveRecord) bool {
		return r.Officer != nil && r.Officer.OfficerID == "o-7" && r.Officer.Available && r.Vehicle == nil
	})
	f(`{}`, "neither a vehicle nor an officer", nil)
	f(`{"vehicle":{"lat":1}}`, "no plate", nil)
	f(`{"officer":{"lat":1}}`, "no officer_id", nil)
	f(`{"vehicle":`, "not valid JSON", nil)
	f(`[1]`, "not valid JSON", nil)
}

func FuzzDecodeLiveRecord(f *testing.F) {
	for _, name := range []string{"vehicle.json", "officer.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "live", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"vehicle":{"plate":""}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeLiveRecord(b)
		if err != nil {
			return
		}
		if r.Vehicle == nil && r.Officer == nil {
			t.Fatalf("accepted a record with neither a vehicle nor an officer: %q", b)
		}
		key := string(LiveKey(nil, &r))
		if !strings.HasPrefix(key, "vehicle/") && !strings.HasPrefix(key, "officer/") {
			t.Fatalf("key %q of an accepted record", key)
		}
		l, _ := testLive()
		l.ApplyLive(r) // must not panic
	})
}

// A live record moves a vehicle's position forward only (records may be read out of order across
// partitions after a takeover), keeps its risk, and a record without a position keeps the one
// known; an officer likewise.
func TestApplyLive(t *testing.T) {
	l, now := testLive()
	at := now.UnixMilli()
	risk := func(score int, updated time.Time) detectors.Risk {
		return detectors.Risk{Score: score, Level: "low", Factors: []detectors.RiskFactor{}, Updated: updated}
	}
	apply := func(plate string, lat float64, ms int64, r detectors.Risk) {
		l.ApplyLive(LiveRecord{Vehicle: &SharedVehicle{VehiclePosition: VehiclePosition{Plate: plate, Lat: lat, Lon: 114, TimeMs: ms}, Risk: r}})
	}
	apply("粤B1", 22.1, at, risk(10, *now))
	apply("粤B1", 22.0, at-1000, risk(5, now.Add(-time.Second))) // older on both counts
	if p, _ := l.Position("粤B1"); p.Lat != 22.1 {
		t.Errorf("an older position replaced a newer one: %+v", p)
	}
	if r, _ := l.Risk("粤B1"); r.Score != 10 {
		t.Errorf("an older risk replaced a newer one: %+v", r)
	}
	apply("粤B1", 0, 0, risk(40, now.Add(time.Second))) // camera events only: no position
	if p, _ := l.Position("粤B1"); p.Lat != 22.1 || p.TimeMs != at {
		t.Errorf("a record without a position moved the vehicle: %+v", p)
	}
	if r, _ := l.Risk("粤B1"); r.Score != 40 {
		t.Errorf("risk %+v, want the newer 40", r)
	}
	if _, ok := l.Risk("粤B2"); ok {
		t.Error("a risk for a vehicle never published")
	}
	l.ApplyLive(LiveRecord{Officer: &OfficerPosition{OfficerID: "o1", Lat: 22.2, TimeMs: at, Available: true}})
	l.ApplyLive(LiveRecord{Officer: &OfficerPosition{OfficerID: "o1", Lat: 22.3, TimeMs: at - 1}})
	if o, _ := l.officers.get("o1"); o.Lat != 22.2 || !o.Available {
		t.Errorf("officer %+v, want the newer position", o)
	}
}

// roundTrip is an item as the alerts topic carries it (the announcer's JSON), read back.
func roundTrip(t *testing.T, v AlertView, change string) AlertView {
	t.Helper()
	v.Change = detectors.ChangeKind(change)
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out AlertView
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Alert changes read from the alerts topic: a detector change opens the alert, a dismissal made
// on another instance closes it here with the same handling, a record read again (or this
// instance's own action read back) changes and publishes nothing, and only the changes made here
// are journaled.
func TestApplyAnnounced(t *testing.T) {
	a, _ := testLive() // the instance the supervisor uses
	b, now := testLive()
	at := *now
	opened := change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeverityWarning, detectors.StatusOpen, 1, at)
	both := func(v AlertView, fromA bool) {
		a.ApplyAnnounced(v, !fromA)
		b.ApplyAnnounced(v, fromA)
	}
	opening := roundTrip(t, AlertView{Alert: opened.Alert, Supervision: Supervision{Handling: Handling{State: StateNew, Actions: []Action{}}}}, string(opened.Kind))
	both(opening, false) // instance b judges the truck
	both(opening, false) // read again: same version, published again as before (at-least-once)
	if _, ok := b.Alert("a1"); !ok {
		t.Fatal("the opened alert is not open on instance b")
	}
	v, _, err := a.Act("a1", "dismiss", Principal{Name: "sup", Role: RoleSupervisor}, "", "a camera fault")
	if err != nil {
		t.Fatal(err)
	}
	announced := roundTrip(t, v, ChangeHandling)
	both(announced, true)
	both(announced, true)
	for name, l := range map[string]*Live{"a": a, "b": b} {
		got, ok := l.Alert("a1")
		if !ok || got.Handling.State != StateDismissed || len(got.Handling.Actions) != 1 || got.Handling.Actions[0].Reason != "a camera fault" {
			t.Errorf("instance %s: %+v, want dismissed once", name, got.Handling)
		}
		if open := l.OpenAlerts(AlertFilter{}); len(open) != 0 {
			t.Errorf("instance %s: %d alerts still open", name, len(open))
		}
	}
	items := func(l *Live) (changes []string, journaled int) {
		its, _ := l.Since(0, 100)
		for _, it := range its {
			changes = append(changes, it.Change)
		}
		return changes, len(l.takeJournal())
	}
	ca, ja := items(a)
	cb, jb := items(b)
	if strings.Join(ca, ",") != strings.Join(cb, ",") || strings.Join(ca, ",") != "opened,opened,handling" {
		t.Errorf("feeds: a %v, b %v; want opened, opened, handling on both", ca, cb)
	}
	if ja != 1 || jb != 2 {
		t.Errorf("journaled: a %d, b %d; want a only its dismissal, b only the detector changes it made", ja, jb)
	}
	// overdue, from another instance: applied once
	c, _ := testLive()
	c.ApplyAnnounced(opening, true)
	c.ApplyAnnounced(roundTrip(t, AlertView{Alert: opened.Alert, Supervision: Supervision{Overdue: true}}, ChangeOverdue), true)
	c.ApplyAnnounced(roundTrip(t, AlertView{Alert: opened.Alert, Supervision: Supervision{Overdue: true}}, ChangeOverdue), true)
	if got, _ := c.Alert("a1"); !got.Overdue {
		t.Error("an overdue change from another instance is not applied")
	}
	if cs, _ := items(c); strings.Join(cs, ",") != "opened,overdue" {
		t.Errorf("feed %v, want opened then one overdue", cs)
	}
}

// A positioned feed (SetFeedPositions): two instances reading the same alerts topic stream the
// same items under the same ids, the positions of their records — a detector change, a dismissal
// made on one of them (journaled there when made, streamed by both only when read back), an
// overdue step — and a record read again is not streamed again. A client that got some items from
// one resumes on the other after the last id it got with exactly the rest.
func TestPositionedFeed(t *testing.T) {
	a, _ := testLive()
	b, now := testLive()
	for _, l := range []*Live{a, b} {
		l.SetFeedPositions(100) // the view starts reading at offset 100
	}
	opened := change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeverityWarning, detectors.StatusOpen, 1, *now)
	opening := roundTrip(t, AlertView{Alert: opened.Alert, Supervision: Supervision{Handling: Handling{State: StateNew, Actions: []Action{}}}}, string(opened.Kind))
	second := change(detectors.ChangeOpened, "a2", "粤B2", detectors.SeverityWarning, detectors.StatusOpen, 1, *now)
	opening2 := roundTrip(t, AlertView{Alert: second.Alert, Supervision: Supervision{Handling: Handling{State: StateNew, Actions: []Action{}}}}, string(second.Kind))
	// record at offset o, made by instance a (fromA) or b
	read := func(v AlertView, fromA bool, o uint64) {
		a.ApplyAnnouncedAt(v, !fromA, o+1)
		b.ApplyAnnouncedAt(v, fromA, o+1)
	}
	read(opening, false, 100) // b judges the trucks
	read(opening, false, 100) // read again after a reader's restart
	v, _, err := a.Act("a1", "dismiss", Principal{Name: "sup", Role: RoleSupervisor}, "", "a camera fault")
	if err != nil {
		t.Fatal(err)
	}
	if items, _ := a.Since(100, 10); len(items) != 1 {
		t.Fatalf("a dismissal made here is streamed before it is read back: %v", items)
	}
	if j := a.takeJournal(); len(j) != 1 || j[0].Change != ChangeHandling || j[0].Seq < 1e15 {
		t.Fatalf("a dismissal made here: journaled %+v, want once with a wall-clock seq", j)
	}
	read(opening2, false, 101)
	read(roundTrip(t, v, ChangeHandling), true, 102)
	read(roundTrip(t, AlertView{Alert: second.Alert, Supervision: Supervision{Overdue: true, Handling: Handling{State: StateNew, Actions: []Action{}}}}, ChangeOverdue), false, 103)
	feed := func(l *Live, after uint64) []string {
		items, complete := l.Since(after, 100)
		if !complete {
			t.Fatalf("Since(%d) is not complete", after)
		}
		var out []string
		for _, it := range items {
			out = append(out, fmt.Sprintf("%d %s %s %s", it.Seq, it.Change, it.Alert.ID, it.Alert.Handling.State))
		}
		return out
	}
	want := []string{"101 opened a1 new", "102 opened a2 new", "103 handling a1 dismissed", "104 overdue a2 new"}
	for name, l := range map[string]*Live{"a": a, "b": b} {
		if got := feed(l, 100); !slices.Equal(got, want) {
			t.Errorf("instance %s streamed %v, want %v", name, got, want)
		}
	}
	if got := append(feed(a, 100)[:2], feed(b, 102)...); !slices.Equal(got, want) {
		t.Errorf("two items from a, then resumed on b after id 102: %v, want %v", got, want)
	}
	if j := a.takeJournal(); len(j) != 0 {
		t.Errorf("instance a journaled %v on reading, want nothing (it made only the dismissal)", j)
	}
	// b's pipeline made the two openings: journaled as read, once; its overdue change would have
	// been journaled when CheckOverdue made it, not when read back
	if j := b.takeJournal(); len(j) != 2 || j[0].Seq < 1e15 || j[0].Change != "opened" || j[1].Alert.ID != "a2" {
		t.Errorf("instance b journaled %+v, want its two openings once each, with wall-clock seqs", j)
	}
	if _, complete := b.Since(99, 10); complete {
		t.Error("a resume from before the view's start is reported complete")
	}
}
