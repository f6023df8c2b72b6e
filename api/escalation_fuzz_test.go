package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// FuzzFeedItemJSON reads feed items as the restart reads them back from the journal: whatever
// the bytes, no panic, and an item that reads keeps its escalation across another write and read.
func FuzzFeedItemJSON(f *testing.F) {
	l, now := ladderLive(twoLevels)
	l.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, *now)})
	*now = now.Add(time.Hour)
	for _, it := range l.CheckOverdue() {
		f.Add(encodeItem(it))
	}
	f.Add([]byte(`{"seq":1,"change":"renotified","alert":{"alert_id":"x","escalation_level":3,"escalation":[{"level":"one"}]}}`))
	f.Add([]byte(`{"seq":1,"change":"renotified","alert":{"alert_id":"x","escalation":null}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var it FeedItem
		if err := json.Unmarshal(data, &it); err != nil {
			return
		}
		var back FeedItem
		if err := json.Unmarshal(encodeItem(it), &back); err != nil {
			t.Fatalf("an item read from %q does not read back after writing: %v", data, err)
		}
		same := func(a, b EscalationStep) bool {
			return a.Level == b.Level && a.Name == b.Name && a.Scope == b.Scope && a.District == b.District &&
				slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Channels, b.Channels) && a.DueMs == b.DueMs && a.AtMs == b.AtMs
		}
		if back.Alert.EscalationLevel != it.Alert.EscalationLevel || !slices.EqualFunc(back.Alert.Escalation, it.Alert.Escalation, same) {
			t.Fatalf("escalation changed across a write and read: %+v → %+v", it.Alert.Escalation, back.Alert.Escalation)
		}
	})
}

// FuzzParseClock: a time of day that parses writes back as the same HH:MM.
func FuzzParseClock(f *testing.F) {
	for _, s := range []string{"08:00", "23:59", "24:00", "8:00", "-1:00", "+1:05", "08:0a", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseClock(s)
		if err != nil {
			return
		}
		if back := fmt.Sprintf("%02d:%02d", c.hour, c.minute); back != s {
			t.Fatalf("parseClock(%q) = %s", s, back)
		}
	})
}
