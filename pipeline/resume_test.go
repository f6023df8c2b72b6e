package pipeline

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/api"
)

// A client of a shared view (alerts topic of one partition) streams the alert feed from instance
// 0, drops after a few items, and resumes on instance 1 with Last-Event-ID while alerts keep
// coming and supervisors act on both instances: what it got before and after the drop is exactly
// instance 1's own stream — nothing lost, nothing twice — and every item has the same id on both
// instances.
func TestSharedViewStreamResumesOnAnother(t *testing.T) {
	rig := startShared(t, 2, 1, nil)
	// the group settled (one instance reads the input), so that no instance stops mid-rebalance
	rig.env.waitFor("the input's partitions assigned", 2*time.Minute, func() bool {
		sum := 0.0
		for _, reg := range rig.env.regs {
			sum += gauge(t, reg, "muckwatch_consumer_assigned_partitions")
		}
		return int(sum) == len(rig.cfg.Kafka.InputTopics())
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// the reference streams, from before any alert
	var refs [2]<-chan sseEvent
	for i := range refs {
		ch, err := rig.all[i].client.openStream(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		refs[i] = ch
	}
	dropCtx, drop := context.WithCancel(ctx)
	client, err := rig.all[0].client.openStream(dropCtx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	name := func(ev sseEvent) string {
		a := ev.item.Alert
		return fmt.Sprintf("%s %s %s v%d %s", ev.id, ev.event, a.ID, a.Version, a.Handling.State)
	}
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	rig.coverOpen(4, start, "one")
	const before = 5
	var got []string
	for range before {
		got = append(got, name(next(t, client, "an item before the drop", func(sseEvent) bool { return true })))
	}
	drop()
	lastID := got[before-1][:indexSpace(got[before-1])]

	// While the client is away: more trucks, and a supervisor acts on each instance.
	rig.coverOpen(8, start.Add(5*time.Minute), "two")
	act := func(i int, plate, action string) string {
		var rep api.VehicleReport
		rig.env.waitFor("an open alert of "+plate, time.Minute, func() bool {
			rig.all[i].client.getJSON(api.RoleSquad, "/api/v1/vehicles/"+url.PathEscape(plate), 200, &rep)
			return len(rep.OpenAlerts) > 0
		})
		id := rep.OpenAlerts[0].ID
		if status, b := rig.all[i].client.do(api.RoleSupervisor, "POST", "/api/v1/alerts/"+id+"/actions", `{"action":"`+action+`","reason":"checked"}`); status != 200 {
			t.Fatalf("%s on instance %d: status %d: %s", action, i, status, b)
		}
		return id
	}
	act(1, rig.city.Vehicles[1].Plate, "acknowledge")
	last := act(0, rig.city.Vehicles[6].Plate, "dismiss") // the marker: the last item expected

	resumed, err := rig.all[1].client.openStream(ctx, "", lastID)
	if err != nil {
		t.Fatal(err)
	}
	isLast := func(ev sseEvent) bool { return ev.item.Alert.ID == last && ev.event == api.ChangeHandling }
	for {
		ev := next(t, resumed, "the dismissal after resuming", func(sseEvent) bool { return true })
		got = append(got, name(ev))
		if isLast(ev) {
			break
		}
	}
	var want [2][]string
	for i, ch := range refs {
		for {
			ev := next(t, ch, fmt.Sprintf("the dismissal on instance %d's own stream", i), func(sseEvent) bool { return true })
			want[i] = append(want[i], name(ev))
			if isLast(ev) {
				break
			}
		}
	}
	if !slices.Equal(got, want[1]) {
		t.Errorf("streamed from instance 0, then resumed on instance 1 after id %s:\n%s\ninstance 1's own stream:\n%s", lastID, lines(got), lines(want[1]))
	}
	if !slices.Equal(want[0], want[1]) {
		t.Errorf("the instances' streams differ:\ninstance 0:\n%s\ninstance 1:\n%s", lines(want[0]), lines(want[1]))
	}
	t.Logf("%d items, %d before the drop, then resumed on the other instance after id %s:\n%s", len(got), before, lastID, lines(got))
}

func indexSpace(s string) int {
	for i, c := range s {
		if c == ' ' {
			return i
		}
	}
	return len(s)
}

func lines(s []string) string {
	var b []byte
	for _, l := range s {
		b = append(append(append(b, "  "...), l...), '\n')
	}
	return string(b)
}
