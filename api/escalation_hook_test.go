package api

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// hookEvents is what a receiver got: each request's event, and for renotified items the level.
func hookEvents(t *testing.T, rc *hookReceiver) []string {
	t.Helper()
	var out []string
	for _, d := range rc.deliveries() {
		ts, sig := d.header.Get(WebhookHeaderTimestamp), d.header.Get(WebhookHeaderSignature)
		if !VerifySignature(hookSecret, ts, d.body, sig) {
			t.Errorf("a delivery's signature does not verify: %s", d.body)
		}
		ev := d.header.Get(WebhookHeaderEvent)
		if ev == ChangeRenotified {
			it := decode[FeedItem](t, d.body)
			st, _ := lastStep(&it.Alert)
			ev += ":" + strconv.Itoa(it.Alert.EscalationLevel) + ":" + st.Name
		}
		out = append(out, ev)
	}
	return out
}

// Each level's webhooks get that level's re-notifications, signed and retried like the feed's
// webhook; the feed's webhook gets every overdue and renotified item and the daily digest.
func TestEscalationReachesWebhooks(t *testing.T) {
	supHook := newHookReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the first attempt fails: retried
		}
	})
	cityHook := newHookReceiver(t, nil)
	feedHook := newHookReceiver(t, nil)
	t.Setenv("MUCKWATCH_TEST_HOOK_SECRET", hookSecret)
	levels := slices.Clone(twoLevels)
	levels[0].Webhooks = []string{supHook.srv.URL + "/sup"}
	levels[1].Webhooks = []string{cityHook.srv.URL + "/city"}
	s, _ := plainServer(t, func(c *Config) {
		c.Webhook.URL, c.Webhook.SecretEnv = feedHook.srv.URL+"/feed", "MUCKWATCH_TEST_HOOK_SECRET"
		c.Escalation.Levels = levels
		c.Digest.At = "17:00" // Asia/Shanghai: 09:00 UTC
	})
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	s.live.now = s.now
	sleeps := &hookSleeps{}
	for _, h := range append([]*Webhook{s.hook}, s.levelHooks...) {
		h.sleep, h.now = sleeps.sleep, s.now
	}
	drain := func() {
		for _, h := range append([]*Webhook{s.hook}, s.levelHooks...) {
			h.drain(t.Context())
		}
	}
	arrived := now
	s.live.Observe(nil, nil, []detectors.Change{change(detectors.ChangeOpened, "a1", "粤B1", detectors.SeveritySevere, detectors.StatusOpen, 1, arrived)})

	now = arrived.Add(15 * time.Minute) // overdue at 5 min, district supervisor at 15
	s.tick(t.Context())
	drain()
	now = arrived.Add(34 * time.Minute)
	s.tick(t.Context())
	drain()
	if got := hookEvents(t, cityHook); len(got) != 0 {
		t.Fatalf("the city's webhook got %v before its level was due", got)
	}
	now = arrived.Add(35 * time.Minute) // the city
	s.tick(t.Context())
	drain()

	if got, want := hookEvents(t, supHook), []string{"renotified:1:district-supervisor", "renotified:1:district-supervisor"}; !slices.Equal(got, want) {
		t.Errorf("district supervisor's webhook got %v, want %v (the first attempt refused, then retried)", got, want)
	}
	if d := supHook.deliveries(); len(d) == 2 && d[0].header.Get(WebhookHeaderDelivery) != d[1].header.Get(WebhookHeaderDelivery) {
		t.Error("the retry has another delivery id")
	}
	if w := sleeps.recorded(); len(w) != 1 {
		t.Errorf("waited %v before retrying, want one back-off", w)
	}
	if got, want := hookEvents(t, cityHook), []string{"renotified:2:city"}; !slices.Equal(got, want) {
		t.Errorf("city's webhook got %v, want %v", got, want)
	}
	if got, want := hookEvents(t, feedHook), []string{"opened", "overdue", "renotified:1:district-supervisor", "renotified:2:city"}; !slices.Equal(got, want) {
		t.Errorf("feed's webhook got %v, want %v", got, want)
	}

	// the daily digest at 17:00 Shanghai time goes to the feed's webhook, once
	now = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	s.tick(t.Context())
	now = now.Add(time.Second)
	s.tick(t.Context())
	drain()
	got := feedHook.deliveries()
	last := got[len(got)-1]
	if n := len(got); n != 5 || last.header.Get(WebhookHeaderEvent) != EventDigest {
		t.Fatalf("feed's webhook got %v, want the digest last and once", hookEvents(t, feedHook))
	}
	d := decode[Digest](t, last.body)
	if !d.Scheduled || d.Date != "2026-11-23" || d.MadeAt != "2026-11-23T17:00:00+08:00" || last.header.Get(WebhookHeaderDelivery) != strconv.FormatUint(d.Seq, 10) {
		t.Errorf("digest %+v (delivery %s), want the scheduled one of 2026-11-23 17:00 +08:00", d, last.header.Get(WebhookHeaderDelivery))
	}
	var futian *DistrictDigest
	for i := range d.Districts {
		if d.Districts[i].District == "futian" {
			futian = &d.Districts[i]
		}
	}
	if futian == nil || futian.Open != 1 || futian.Overdue != 1 || len(futian.ByLevel) != 1 || futian.ByLevel[0].Level != 2 || futian.ByLevel[0].Name != "city" {
		t.Errorf("futian in the digest: %+v, want one open alert, overdue, at level 2 (city)", futian)
	}
}
