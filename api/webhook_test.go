package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/backoff"
)

const hookSecret = "s3cret-for-tests"

// hookNow is the webhook's clock in tests.
func hookNow() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }

// hookDelivery is one request a test receiver got.
type hookDelivery struct {
	header http.Header
	body   []byte
}

// hookReceiver is a webhook endpoint that records every request and answers with respond (n counts
// the requests from 1).
type hookReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []hookDelivery
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newHookReceiver(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("receiver: cannot read the request body: %v", err)
		}
		rc.mu.Lock()
		rc.got = append(rc.got, hookDelivery{header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.respond != nil {
			rc.respond(n, w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) deliveries() []hookDelivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

func (rc *hookReceiver) seqs(t *testing.T) []uint64 {
	t.Helper()
	var out []uint64
	for _, d := range rc.deliveries() {
		seq, err := strconv.ParseUint(d.header.Get(WebhookHeaderDelivery), 10, 64)
		if err != nil {
			t.Fatalf("%s header %q is not a number: %v", WebhookHeaderDelivery, d.header.Get(WebhookHeaderDelivery), err)
		}
		out = append(out, seq)
	}
	return out
}

// hookSleeps is a fake sleep: it records the waits and returns at once.
type hookSleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *hookSleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *hookSleeps) recorded() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// newTestWebhook returns a webhook to url with a fixed clock, a fake sleep and its own registry.
func newTestWebhook(t *testing.T, cfg WebhookConfig) (*Webhook, *prometheus.Registry, *hookSleeps) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h := NewWebhook(cfg, hookSecret, nil, reg)
	sr := &hookSleeps{}
	h.sleep = sr.sleep
	h.now = hookNow
	return h, reg, sr
}

func hookItem(seq uint64, change, severity string) FeedItem {
	return FeedItem{Seq: seq, Change: change, Alert: AlertView{
		Change: detectors.ChangeKind(change),
		Alert: detectors.Alert{ID: "a-" + strconv.FormatUint(seq, 10), Rule: detectors.RuleSpeeding,
			Severity: detectors.Severity(severity), Status: detectors.StatusOpen, VehicleID: "粤B12345", District: "futian", Version: 1},
		Supervision: Supervision{Handling: Handling{State: StateNew}},
	}}
}

// hookMetric returns the value of a counter or gauge on reg, selected by name and, for a
// labelled metric, the value of its result label.
func hookMetric(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := result == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					match = true
				}
			}
			if !match {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("metric %s has no series with result=%q", name, result)
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

type hookOutcomes struct{ delivered, failed, dropped, attempts float64 }

func checkHookOutcomes(t *testing.T, reg *prometheus.Registry, want hookOutcomes) {
	t.Helper()
	got := hookOutcomes{
		delivered: hookMetric(t, reg, "muckwatch_webhook_deliveries_total", "delivered"),
		failed:    hookMetric(t, reg, "muckwatch_webhook_deliveries_total", "failed"),
		dropped:   hookMetric(t, reg, "muckwatch_webhook_deliveries_total", "dropped"),
		attempts:  hookMetric(t, reg, "muckwatch_webhook_attempts_total", ""),
	}
	if got != want {
		t.Errorf("metrics: got %+v, want %+v", got, want)
	}
}

func TestWebhookSignsDeliveries(t *testing.T) {
	rc := newHookReceiver(t, nil)
	h, reg, _ := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL + "/hook", MinSeverity: "info"})
	item := hookItem(1700000000000001, "escalated", "severe")
	h.Enqueue([]FeedItem{item})
	h.drain(t.Context())

	got := rc.deliveries()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	d := got[0]
	wantHeaders := map[string]string{
		"Content-Type":         "application/json",
		WebhookHeaderEvent:     "escalated",
		WebhookHeaderDelivery:  "1700000000000001",
		WebhookHeaderTimestamp: strconv.FormatInt(hookNow().Unix(), 10),
	}
	for k, v := range wantHeaders {
		if d.header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, d.header.Get(k), v)
		}
	}
	if string(d.body) != string(encodeItem(item)) {
		t.Errorf("body = %s, want %s", d.body, encodeItem(item))
	}
	ts, sig := d.header.Get(WebhookHeaderTimestamp), d.header.Get(WebhookHeaderSignature)
	if !VerifySignature(hookSecret, ts, d.body, sig) {
		t.Fatalf("signature %q does not verify for timestamp %s and the body received", sig, ts)
	}
	tampered := slices.Clone(d.body)
	tampered[len(tampered)/2] ^= 1
	if VerifySignature(hookSecret, ts, tampered, sig) {
		t.Error("signature verifies a tampered body")
	}
	checkHookOutcomes(t, reg, hookOutcomes{delivered: 1, attempts: 1})
}

func TestVerifySignature(t *testing.T) {
	body := []byte(`{"seq":1,"change":"opened"}`)
	good := signaturePrefix + sign([]byte(hookSecret), "1795420800", body)
	tests := []struct {
		name      string
		secret    string
		timestamp string
		body      []byte
		header    string
		want      bool
	}{
		{"valid", hookSecret, "1795420800", body, good, true},
		{"surrounding spaces", hookSecret, "1795420800", body, "  " + good + " ", true},
		{"tampered body", hookSecret, "1795420800", []byte(`{"seq":1,"change":"closed"}`), good, false},
		{"replayed with another timestamp", hookSecret, "1795420801", body, good, false},
		{"other secret", "not-the-secret", "1795420800", body, good, false},
		{"empty secret", "", "1795420800", body, signaturePrefix + sign(nil, "1795420800", body), false},
		{"empty timestamp", hookSecret, "", body, signaturePrefix + sign([]byte(hookSecret), "", body), false},
		{"no prefix", hookSecret, "1795420800", body, good[len(signaturePrefix):], false},
		{"other algorithm", hookSecret, "1795420800", body, "sha1=" + good[len(signaturePrefix):], false},
		{"not hex", hookSecret, "1795420800", body, signaturePrefix + "zz" + good[len(signaturePrefix)+2:], false},
		{"truncated", hookSecret, "1795420800", body, good[:len(good)-2], false},
		{"empty header", hookSecret, "1795420800", body, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VerifySignature(tt.secret, tt.timestamp, tt.body, tt.header); got != tt.want {
				t.Errorf("VerifySignature(%q, %q, %s, %q) = %v, want %v", tt.secret, tt.timestamp, tt.body, tt.header, got, tt.want)
			}
		})
	}
}

func TestWebhookFiltersBySeverity(t *testing.T) {
	items := []FeedItem{
		hookItem(1, "opened", "info"),
		hookItem(2, "opened", "warning"),
		hookItem(3, "escalated", "severe"),
		hookItem(4, "handling", "info"),
		hookItem(5, "overdue", "warning"),
		hookItem(6, "opened", "bogus"),
	}
	tests := []struct {
		min  string
		want []uint64
	}{
		{"info", []uint64{1, 2, 3, 4, 5}},
		{"warning", []uint64{2, 3, 5}},
		{"severe", []uint64{3}},
		{"", []uint64{2, 3, 5}}, // the default is warning
	}
	for _, tt := range tests {
		t.Run("min="+tt.min, func(t *testing.T) {
			rc := newHookReceiver(t, nil)
			h, reg, _ := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL, MinSeverity: tt.min})
			h.Enqueue(items)
			if h.Len() != len(tt.want) {
				t.Errorf("queued %d items, want %d", h.Len(), len(tt.want))
			}
			h.drain(t.Context())
			if got := rc.seqs(t); !slices.Equal(got, tt.want) {
				t.Errorf("delivered seqs %v, want %v", got, tt.want)
			}
			n := float64(len(tt.want))
			checkHookOutcomes(t, reg, hookOutcomes{delivered: n, attempts: n})
		})
	}
}

// hookAnswer is one scripted answer of the receiver.
type hookAnswer struct {
	status     int
	retryAfter string
}

func TestWebhookRetries(t *testing.T) {
	const (
		backoff    = 100 * time.Millisecond
		maxBackoff = 10 * time.Second
	)
	tests := []struct {
		name      string
		answers   []hookAnswer // the receiver answers these in turn, then 204
		attempts  int          // max attempts
		wantWaits []time.Duration
		want      hookOutcomes
	}{
		{
			name:      "two 503s then success",
			answers:   []hookAnswer{{status: 503}, {status: 503}},
			wantWaits: []time.Duration{backoff, 2 * backoff},
			want:      hookOutcomes{delivered: 1, attempts: 3},
		},
		{
			name:    "400 is not retried",
			answers: []hookAnswer{{status: 400}},
			want:    hookOutcomes{failed: 1, attempts: 1},
		},
		{
			name:    "404 is not retried",
			answers: []hookAnswer{{status: 404}},
			want:    hookOutcomes{failed: 1, attempts: 1},
		},
		{
			name:    "a redirect is a refusal",
			answers: []hookAnswer{{status: 302}},
			want:    hookOutcomes{failed: 1, attempts: 1},
		},
		{
			name:      "408 and 500 are retried",
			answers:   []hookAnswer{{status: 408}, {status: 500}},
			wantWaits: []time.Duration{backoff, 2 * backoff},
			want:      hookOutcomes{delivered: 1, attempts: 3},
		},
		{
			name:      "Retry-After seconds honoured on 429 and 503",
			answers:   []hookAnswer{{status: 429, retryAfter: "7"}, {status: 503, retryAfter: "2"}},
			wantWaits: []time.Duration{7 * time.Second, 2 * time.Second},
			want:      hookOutcomes{delivered: 1, attempts: 3},
		},
		{
			name:      "Retry-After capped at max_backoff",
			answers:   []hookAnswer{{status: 503, retryAfter: "3600"}},
			wantWaits: []time.Duration{maxBackoff},
			want:      hookOutcomes{delivered: 1, attempts: 2},
		},
		{
			name:      "Retry-After as an HTTP date",
			answers:   []hookAnswer{{status: 429, retryAfter: hookNow().Add(4 * time.Second).Format(http.TimeFormat)}},
			wantWaits: []time.Duration{4 * time.Second},
			want:      hookOutcomes{delivered: 1, attempts: 2},
		},
		{
			name:      "Retry-After ignored on 500, and when malformed",
			answers:   []hookAnswer{{status: 500, retryAfter: "7"}, {status: 429, retryAfter: "soon"}},
			wantWaits: []time.Duration{backoff, 2 * backoff},
			want:      hookOutcomes{delivered: 1, attempts: 3},
		},
		{
			name:      "gives up after max_attempts, back-off doubling to max_backoff",
			answers:   slices.Repeat([]hookAnswer{{status: 502}}, 10),
			attempts:  9,
			wantWaits: []time.Duration{backoff, 2 * backoff, 4 * backoff, 8 * backoff, 16 * backoff, 32 * backoff, 64 * backoff, maxBackoff},
			want:      hookOutcomes{failed: 1, attempts: 9},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newHookReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n > len(tt.answers) {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				a := tt.answers[n-1]
				if a.retryAfter != "" {
					w.Header().Set("Retry-After", a.retryAfter)
				}
				if a.status/100 == 3 {
					w.Header().Set("Location", "/elsewhere")
				}
				http.Error(w, "scripted hookAnswer", a.status)
			})
			h, reg, sr := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL, MaxAttempts: tt.attempts, Backoff: backoff, MaxBackoff: maxBackoff})
			h.Enqueue([]FeedItem{hookItem(42, "opened", "severe")})
			h.drain(t.Context())

			if got := sr.recorded(); !slices.Equal(got, tt.wantWaits) {
				t.Errorf("waits between attempts %v, want %v", got, tt.wantWaits)
			}
			checkHookOutcomes(t, reg, tt.want)
			got := rc.deliveries()
			if len(got) != int(tt.want.attempts) {
				t.Fatalf("receiver got %d requests, want %d", len(got), int(tt.want.attempts))
			}
			for i, d := range got {
				if id := d.header.Get(WebhookHeaderDelivery); id != "42" {
					t.Errorf("attempt %d: %s = %q, want 42 on every attempt", i+1, WebhookHeaderDelivery, id)
				}
				if !VerifySignature(hookSecret, d.header.Get(WebhookHeaderTimestamp), d.body, d.header.Get(WebhookHeaderSignature)) {
					t.Errorf("attempt %d: the signature does not verify", i+1)
				}
			}
		})
	}
}

func TestWebhookTransportFailuresAreRetried(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice the client hanging up
		select {
		case <-r.Context().Done(): // the webhook gave up on the attempt
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
	}{
		{"connection refused", closedURL, time.Second},
		{"no hookAnswer within the timeout", slow.URL, 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, reg, sr := newTestWebhook(t, WebhookConfig{URL: tt.url, Timeout: tt.timeout, MaxAttempts: 3, Backoff: time.Second, MaxBackoff: time.Minute})
			h.Enqueue([]FeedItem{hookItem(1, "opened", "severe")})
			h.drain(t.Context())
			checkHookOutcomes(t, reg, hookOutcomes{failed: 1, attempts: 3})
			if got, want := sr.recorded(), []time.Duration{time.Second, 2 * time.Second}; !slices.Equal(got, want) {
				t.Errorf("waits %v, want %v", got, want)
			}
		})
	}
}

func TestWebhookQueueOverflowDropsOldest(t *testing.T) {
	rc := newHookReceiver(t, nil)
	h, reg, _ := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL, Queue: 3})
	h.Enqueue([]FeedItem{hookItem(1, "opened", "severe"), hookItem(2, "opened", "severe")})
	h.Enqueue([]FeedItem{hookItem(3, "opened", "severe"), hookItem(4, "opened", "info"), hookItem(5, "opened", "severe")})
	h.Enqueue([]FeedItem{hookItem(6, "opened", "severe")})
	if got := hookMetric(t, reg, "muckwatch_webhook_queue_length", ""); got != 3 {
		t.Errorf("queue length gauge %g, want 3", got)
	}
	h.drain(t.Context())
	if got, want := rc.seqs(t), []uint64{3, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v (the oldest dropped, info filtered out)", got, want)
	}
	checkHookOutcomes(t, reg, hookOutcomes{delivered: 3, dropped: 2, attempts: 3})
	if got := hookMetric(t, reg, "muckwatch_webhook_queue_length", ""); got != 0 {
		t.Errorf("queue length gauge %g after hookDelivery, want 0", got)
	}
}

func TestWebhookRunDeliversInOrder(t *testing.T) {
	const total = 300 // more than the ring's first allocation, so it grows while in use
	seen := make(chan uint64, total)
	rc := newHookReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		seq, _ := strconv.ParseUint(r.Header.Get(WebhookHeaderDelivery), 10, 64)
		seen <- seq
	})
	h, _, _ := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for seq := uint64(1); seq <= total; seq += 10 {
		batch := make([]FeedItem, 0, 10)
		for s := seq; s < seq+10; s++ {
			batch = append(batch, hookItem(s, "updated", "severe"))
		}
		h.Enqueue(batch)
	}
	for want := uint64(1); want <= total; want++ {
		if got := <-seen; got != want {
			t.Fatalf("hookDelivery %d: got seq %d; items must arrive in feed order", want, got)
		}
	}
}

func TestWebhookCancelStopsRetryWait(t *testing.T) {
	rc := newHookReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})
	h, reg, _ := newTestWebhook(t, WebhookConfig{URL: rc.srv.URL, Backoff: time.Hour, MaxBackoff: time.Hour})
	waiting := make(chan time.Duration, 1)
	stopped := make(chan error, 1)
	h.sleep = func(ctx context.Context, d time.Duration) error {
		waiting <- d
		err := backoff.Sleep(ctx, d) // the real wait
		stopped <- err
		return err
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); h.Run(ctx) }()
	h.Enqueue([]FeedItem{hookItem(1, "opened", "severe"), hookItem(2, "opened", "severe")})

	if d := <-waiting; d != time.Hour {
		t.Errorf("first retry wait %s, want 1h", d)
	}
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("the wait ended with %v, want context.Canceled", err)
	}
	<-done // Run returns: the test would time out otherwise
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if n := h.Len(); n != 1 {
		t.Errorf("%d items left queued, want 1", n)
	}
	checkHookOutcomes(t, reg, hookOutcomes{attempts: 1})
}
