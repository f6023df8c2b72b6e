package api

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// fakeDuty is a Duty set by hand: the vehicles an instance watches and whether it sends the digest.
type fakeDuty struct {
	mu       sync.Mutex
	vehicles map[string]bool
	digest   bool
}

func (d *fakeDuty) Watches(v string) bool { d.mu.Lock(); defer d.mu.Unlock(); return d.vehicles[v] }
func (d *fakeDuty) SendsDigest() bool     { d.mu.Lock(); defer d.mu.Unlock(); return d.digest }
func (d *fakeDuty) set(vehicles []string, digest bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.vehicles = map[string]bool{}
	for _, v := range vehicles {
		d.vehicles[v] = true
	}
	d.digest = digest
}

// Three instances of a shared view, each watching its share of the vehicles, with their overdue
// and renotified changes going round the alerts topic: every alert goes overdue once and takes
// each escalation step once in the whole group — also when its vehicle moves to another
// instance between two steps, or nobody watches it for a while (a rebalance) — and every
// instance ends up showing the same steps.
func TestDutyEscalatesOnce(t *testing.T) {
	const instances = 3
	plates := []string{"粤B1", "粤B2", "粤B3", "粤B4", "粤B5"}
	var lives []*Live
	var duties []*fakeDuty
	var now *time.Time
	for i := range instances {
		l, n := ladderLive(twoLevels)
		if now == nil {
			now = n
		}
		l.now = func() time.Time { return *now }
		d := &fakeDuty{}
		l.SetDuty(d)
		lives, duties = append(lives, l), append(duties, d)
		_ = i
	}
	share := func(shift int) { // vehicle k to instance (k+shift) mod 3
		for i, d := range duties {
			var mine []string
			for k, p := range plates {
				if (k+shift)%instances == i {
					mine = append(mine, p)
				}
			}
			d.set(mine, false)
		}
	}
	// announce hands what an instance published to every instance, as the alerts topic does
	announce := func(from int, items []FeedItem) {
		for _, it := range items {
			for i, l := range lives {
				l.ApplyAnnounced(roundTrip(t, it.Alert, it.Change), i != from)
			}
		}
	}
	t0 := *now
	for k, p := range plates {
		c := change(detectors.ChangeOpened, fmt.Sprintf("a%d", k), p, detectors.SeverityWarning, detectors.StatusOpen, 1, t0)
		announce(k%instances, []FeedItem{{Change: string(c.Kind), Alert: AlertView{Change: c.Kind, Alert: c.Alert}}})
	}
	// warning: overdue at 30 min, district supervisor at 40, city at 60
	taken := map[string][]string{} // alert → the changes published by the instance that made them
	for m := 0; m <= 90; m++ {
		*now = t0.Add(time.Duration(m) * time.Minute)
		switch {
		case m == 0:
			share(0)
		case m == 45: // a rebalance: nobody watches anything for five minutes
			share(-1)
			for _, d := range duties {
				d.set(nil, false)
			}
		case m == 50: // then every vehicle is another instance's
			share(1)
		}
		for i, l := range lives {
			items := l.CheckOverdue()
			for _, it := range items {
				taken[it.Alert.ID] = append(taken[it.Alert.ID], fmt.Sprintf("%s:%d by %d at %d", it.Change, it.Alert.EscalationLevel, i, m))
			}
			announce(i, items)
		}
	}
	for k := range plates {
		id := fmt.Sprintf("a%d", k)
		first, second := k%instances, (k+1)%instances
		want := []string{
			fmt.Sprintf("overdue:0 by %d at 30", first),
			fmt.Sprintf("renotified:1 by %d at 40", first),
			fmt.Sprintf("renotified:2 by %d at 60", second),
		}
		if !slices.Equal(taken[id], want) {
			t.Errorf("alert %s: %v, want %v", id, taken[id], want)
		}
		for i, l := range lives {
			v, _ := l.Alert(id)
			if !v.Overdue || v.EscalationLevel != 2 || len(v.Escalation) != 2 || v.Escalation[1].AtMs != t0.Add(60*time.Minute).UnixMilli() {
				t.Errorf("instance %d shows %s overdue %v at level %d with steps %+v", i, id, v.Overdue, v.EscalationLevel, v.Escalation)
			}
		}
	}
	// every instance's feed has each step once; only the instance that took it journals it
	for i, l := range lives {
		feed, _ := l.Since(0, 1000)
		steps := map[string]int{}
		for _, it := range feed {
			if it.Change == ChangeOverdue || it.Change == ChangeRenotified {
				steps[fmt.Sprintf("%s %s:%d", it.Alert.ID, it.Change, it.Alert.EscalationLevel)]++
			}
		}
		if len(steps) != 3*len(plates) || slices.Max(slices.Collect(maps.Values(steps))) != 1 {
			t.Errorf("instance %d streamed the steps %v, want each of %d once", i, steps, 3*len(plates))
		}
		journaled := 0
		for _, it := range l.takeJournal() {
			if it.Change == ChangeOverdue || it.Change == ChangeRenotified {
				journaled++
			}
		}
		want := 0
		for k := range plates {
			if k%instances == i {
				want += 2 // overdue and level 1
			}
			if (k+1)%instances == i {
				want++ // level 2
			}
		}
		if journaled != want {
			t.Errorf("instance %d journaled %d steps, want %d (those it took)", i, journaled, want)
		}
	}
}

// dutyServer is a server of a shared view over a ClickHouse database shared with the other
// instances, with a webhook receiving its digests, on a clock set by hand.
func dutyServer(t *testing.T, e *histEnv, hook string, now *time.Time) (*Server, *fakeDuty) {
	t.Helper()
	t.Setenv("MUCKWATCH_TEST_HOOK_SECRET", hookSecret)
	cfg := Config{}.WithDefaults()
	cfg.Webhook.URL, cfg.Webhook.SecretEnv = hook, "MUCKWATCH_TEST_HOOK_SECRET"
	cfg.Digest.At = "08:00" // Asia/Shanghai: 00:00 UTC
	live := NewLive(cfg)
	d := &fakeDuty{}
	live.SetDuty(d)
	s, err := NewServer(cfg, live, NewStore(e.conn, e.db, histLogger()), histCity{histLoadCity(t)}, histNoRisk{}, nil, histLogger(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return *now }
	live.now = s.now
	s.hook.sleep, s.hook.now = (&hookSleeps{}).sleep, s.now
	return s, d
}

// The daily digest of a group of instances: sent once a day by the instance given it, also when
// that changes on the day; one that fell due while no instance was up is sent, once, by the
// first instance given it when they come back, with the time it was due; and an instance that
// starts after a digest was sent does not send it again.
func TestDigestSentOnce(t *testing.T) {
	e := newHistEnv(t)
	rc := newHookReceiver(t, nil)
	now := time.Date(2026, 11, 22, 20, 0, 0, 0, time.UTC) // 04:00 in Shanghai
	var servers []*Server
	var duties []*fakeDuty
	start := func(n int) {
		servers, duties = nil, nil
		for range n {
			s, d := dutyServer(t, e, rc.srv.URL, &now)
			servers, duties = append(servers, s), append(duties, d)
		}
	}
	tick := func() {
		for _, s := range servers {
			s.tick(context.Background())
			s.hook.drain(t.Context())
		}
	}
	digests := func() []string {
		var out []string
		for _, d := range rc.deliveries() {
			if d.header.Get(WebhookHeaderEvent) != EventDigest {
				continue
			}
			dg := decode[Digest](t, d.body)
			out = append(out, fmt.Sprintf("%s due %s made %s", dg.Date, time.UnixMilli(dg.DueMs).UTC().Format("01-02 15:04"), time.UnixMilli(dg.MadeMs).UTC().Format("01-02 15:04")))
		}
		return out
	}
	run := func(until time.Time, step time.Duration, between func()) {
		for ; now.Before(until); now = now.Add(step) {
			if between != nil {
				between()
			}
			tick()
		}
	}

	// A new installation owes no digest: three instances, instance 0 given the digest; on the
	// 23rd at 09:00 UTC instance 2 is given it instead.
	start(3)
	duties[0].digest = true
	run(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), time.Minute, func() {
		if now.Equal(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)) {
			duties[0].digest, duties[2].digest = false, true
		}
	})
	want := []string{"2026-11-23 due 11-23 00:00 made 11-23 00:00", "2026-11-24 due 11-24 00:00 made 11-24 00:00"}
	if got := digests(); !slices.Equal(got, want) {
		t.Fatalf("three instances sent the digests %v, want %v", got, want)
	}

	// No instance is up from the 24th 12:00 to the 25th 03:00 UTC (the 25th's digest falls due at
	// 00:00); two come back, the second given the digest after a minute (the group forming).
	now = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	start(2)
	run(now.Add(10*time.Minute), 30*time.Second, func() {
		if now.Equal(time.Date(2026, 11, 25, 3, 1, 0, 0, time.UTC)) {
			duties[1].digest = true
		}
	})
	want = append(want, "2026-11-25 due 11-25 00:00 made 11-25 03:01")
	if got := digests(); !slices.Equal(got, want) {
		t.Fatalf("after a downtime over 00:00: %v, want %v", got, want)
	}
	// a restart the same day owes nothing
	start(1)
	duties[0].digest = true
	run(now.Add(time.Hour), time.Minute, nil)
	if got := digests(); !slices.Equal(got, want) {
		t.Fatalf("after a restart the same day: %v, want %v", got, want)
	}
}
