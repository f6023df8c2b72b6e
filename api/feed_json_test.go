package api

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// encodingJSONItem is a feed item's JSON as encoding/json writes it with HTML escaping off: the
// detectors' change message (tested against encoding/json in its own package) with the
// supervision's fields, as encoding/json writes them, after it. It is the oracle of the
// hand-written appendFeedItem.
func encodingJSONItem(t testing.TB, it FeedItem) []byte {
	t.Helper()
	var sup bytes.Buffer
	enc := json.NewEncoder(&sup)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(it.Alert.Supervision); err != nil {
		t.Fatal(err)
	}
	alert := detectors.Change{Kind: it.Alert.Change, Alert: it.Alert.Alert}.AppendJSON(nil)
	alert[len(alert)-1] = ','
	alert = append(alert, bytes.TrimSpace(sup.Bytes())[1:]...)
	var out bytes.Buffer
	enc = json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		Seq    uint64          `json:"seq"`
		Change string          `json:"change"`
		Alert  json.RawMessage `json:"alert"`
	}{it.Seq, it.Change, alert})
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(out.Bytes())
}

// feedItemCases are feed items with every optional part of the supervision present and absent,
// and strings that need escaping.
func feedItemCases() []FeedItem {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	base := change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, at)
	fresh := FeedItem{Seq: 7, Change: string(detectors.ChangeOpened), Alert: AlertView{Change: base.Kind, Alert: base.Alert,
		Supervision: Supervision{Handling: Handling{State: StateNew}, ReceivedMs: at.UnixMilli()}}}
	handled := fresh
	handled.Seq, handled.Change = 1<<63+5, ChangeHandling
	handled.Alert.Evidence = "<b>\"quoted\" & \\ \t\n\u2028 \x01 invalid \xff utf-8</b>"
	handled.Alert.Handling = Handling{State: StateDispatched, Actions: []Action{
		{Action: "dispatch", Actor: "张三", Role: "supervisor", OfficerID: "o-1", DistanceM: 1234.5, ETASeconds: 1e-7, AtMs: at.UnixMilli()},
		{Action: "acknowledge", Actor: "o-1", Role: "officer", Reason: "en route <5 min>", AtMs: at.UnixMilli() + 1},
		{Action: "note", Actor: "", Role: "", DistanceM: 1e21, AtMs: -1},
	}}
	handled.Alert.Dispatch = &DispatchPlan{Kind: DispatchOfficers, Officers: []OfferedOfficer{
		{OfficerID: "o-1", DistanceM: 120.25, ETASeconds: 30, Lat: 22.54, Lon: 114.06},
		{OfficerID: "o-2", DistanceM: 0, ETASeconds: 0, Lat: -0.000001, Lon: 1e-9},
	}, District: "futian"}
	noActions := fresh
	noActions.Alert.Handling.Actions = []Action{} // written [] rather than null
	grid := fresh
	grid.Alert.Dispatch = &DispatchPlan{Kind: DispatchGridStaff, GridStaff: "grid-1", Note: "no officer within reach"}
	overdue := fresh
	overdue.Change = ChangeRenotified
	overdue.Alert.Overdue, overdue.Alert.EscalationLevel = true, 2
	overdue.Alert.Escalation = []EscalationStep{
		{Level: 1, Name: "district", Scope: "district", District: "futian", Roles: []string{"supervisor"}, DueMs: 5, AtMs: 6},
		{Level: 2, Name: "city", Scope: "city", Roles: []string{"supervisor", "director"}, Channels: []string{"webhook", "sms"}, DueMs: 7, AtMs: 8},
	}
	closed := fresh
	closed.Alert.Status, closed.Alert.End = detectors.StatusResolved, at.Add(time.Hour)
	empty := FeedItem{}
	return []FeedItem{fresh, handled, noActions, grid, overdue, closed, empty}
}

// TestAppendFeedItem: a feed item's JSON is byte for byte encoding/json's, and reads back as the
// item.
func TestAppendFeedItem(t *testing.T) {
	for i, it := range feedItemCases() {
		got, want := encodeItem(it), encodingJSONItem(t, it)
		if !bytes.Equal(got, want) {
			t.Errorf("item %d:\n got %s\nwant %s", i, got, want)
			continue
		}
		var back FeedItem
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("item %d does not read back: %v", i, err)
		}
		if back.Seq != it.Seq || back.Alert.ID != it.Alert.ID || len(back.Alert.Handling.Actions) != len(it.Alert.Handling.Actions) ||
			(back.Alert.Dispatch == nil) != (it.Alert.Dispatch == nil) || len(back.Alert.Escalation) != len(it.Alert.Escalation) {
			t.Errorf("item %d read back as %+v", i, back)
		}
		view, err := json.Marshal(it.Alert)
		if err != nil {
			t.Fatal(err)
		}
		var asRead AlertView
		if err := json.Unmarshal(view, &asRead); err != nil || asRead.ID != it.Alert.ID || asRead.Handling.State != it.Alert.Handling.State {
			t.Errorf("item %d: the alert's own JSON %s reads back as %+v (%v)", i, view, asRead, err)
		}
	}
}

// FuzzAppendFeedItem: whatever a feed item read from JSON holds, its JSON is encoding/json's.
func FuzzAppendFeedItem(f *testing.F) {
	for _, it := range feedItemCases() {
		f.Add(encodingJSONItem(f, it))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var it FeedItem
		if err := json.Unmarshal(data, &it); err != nil {
			return
		}
		if got, want := encodeItem(it), encodingJSONItem(t, it); !bytes.Equal(got, want) {
			t.Fatalf("from %q:\n got %s\nwant %s", data, got, want)
		}
	})
}

func BenchmarkAppendFeedItem(b *testing.B) {
	it := feedItemCases()[1]
	b.Run("hand-written", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendFeedItem(buf[:0], &it)
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.SetBytes(int64(len(encodingJSONItem(b, it))))
		}
	})
}
