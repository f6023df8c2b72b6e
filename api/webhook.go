package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/backoff"
)

// Webhook headers. The signature is "sha256=" followed by the hex HMAC-SHA256, keyed with the
// shared secret, of the timestamp header's value, a dot, and the body. A receiver verifies it with
// VerifySignature, rejects timestamps too far from its clock (replays), and drops deliveries whose
// id it has already seen (a retried delivery keeps its id).
const (
	WebhookHeaderEvent     = "X-Muckwatch-Event"     // the feed item's change: opened, escalated, …
	WebhookHeaderDelivery  = "X-Muckwatch-Delivery"  // the feed item's seq, the same on every attempt
	WebhookHeaderTimestamp = "X-Muckwatch-Timestamp" // Unix seconds when the attempt was sent
	WebhookHeaderSignature = "X-Muckwatch-Signature" // sha256=HEX
)

const signaturePrefix = "sha256="

// Webhook delivers the alert feed to an external notification system: every feed item whose
// alert is at least cfg.MinSeverity is POSTed, as JSON, to cfg.URL, one at a time and in feed
// order, so a receiver sees each vehicle's changes in order. Failed attempts are retried with
// exponential back-off; items waiting for delivery are bounded by cfg.Queue, and when the queue
// is full the oldest are dropped. The daily digest (EnqueueDigest) goes the same way, whatever
// the severities in it. Enqueue is safe for concurrent use; Run is called once.
type Webhook struct {
	cfg     WebhookConfig
	secret  []byte
	minRank int
	target  string // the URL without query or credentials, for logs and errors
	log     *slog.Logger
	metrics webhookMetrics

	// client sends the requests; each attempt is bounded by cfg.Timeout through its context.
	client *http.Client
	// sleep waits d, or returns ctx.Err() at once when ctx is cancelled first.
	sleep func(ctx context.Context, d time.Duration) error
	// now stamps X-Muckwatch-Timestamp and resolves Retry-After dates.
	now func() time.Time

	mu    sync.Mutex
	queue []hookPost // ring buffer of at most cfg.Queue items, grown on demand
	head  int        // index of the oldest item
	n     int        // items queued
	wake  chan struct{}
}

// hookPost is one POST waiting for delivery: a feed item or a digest, already encoded.
type hookPost struct {
	event string // X-Muckwatch-Event: the feed item's change, or "digest"
	id    uint64 // X-Muckwatch-Delivery: the feed item's seq, or the digest's
	alert string // the alert's id, for the log ("" for a digest)
	body  []byte
}

// EventDigest is the X-Muckwatch-Event of a daily digest.
const EventDigest = "digest"

type webhookMetrics struct {
	delivered, failed, dropped prometheus.Counter
	attempts                   prometheus.Counter
	queueLen                   prometheus.Gauge
}

// NewWebhook returns a webhook posting to cfg.URL, signing with secret. Zero fields of cfg take
// their defaults. The metrics are registered on reg when it is not nil.
func NewWebhook(cfg WebhookConfig, secret string, log *slog.Logger, reg prometheus.Registerer) *Webhook {
	deliveries := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_webhook_deliveries_total",
		Help: "Webhook feed items by outcome: delivered, failed (refused or out of attempts), dropped (queue full)."}, []string{"result"})
	attempts := prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_webhook_attempts_total",
		Help: "Webhook delivery attempts (HTTP requests), retries included."})
	queueLen := prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_webhook_queue_length",
		Help: "Feed items waiting for webhook delivery."})
	if reg != nil {
		reg.MustRegister(deliveries, attempts, queueLen)
	}
	return newWebhook(cfg, secret, log, webhookMetrics{
		delivered: deliveries.WithLabelValues("delivered"), failed: deliveries.WithLabelValues("failed"),
		dropped: deliveries.WithLabelValues("dropped"), attempts: attempts, queueLen: queueLen,
	})
}

// newWebhook is NewWebhook with the metrics made by the caller.
func newWebhook(cfg WebhookConfig, secret string, log *slog.Logger, m webhookMetrics) *Webhook {
	cfg = Config{Webhook: cfg}.WithDefaults().Webhook
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	target := cfg.URL
	if u, err := url.Parse(cfg.URL); err == nil {
		target = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	return &Webhook{
		cfg: cfg, secret: []byte(secret), minRank: detectors.Severity(cfg.MinSeverity).Rank(), target: target, log: log,
		metrics: m,
		client: &http.Client{
			// a redirected POST would become a GET without the body: answer 3xx as a refusal
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		sleep: backoff.Sleep,
		now:   time.Now,
		wake:  make(chan struct{}, 1),
	}
}

// Enqueue queues the items severe enough for delivery. It never blocks: when the queue is full
// the oldest items are dropped and counted.
func (h *Webhook) Enqueue(items []FeedItem) {
	hs := make([]hookPost, 0, len(items))
	for i := range items {
		if h.wants(&items[i]) {
			hs = append(hs, hookPost{event: items[i].Change, id: items[i].Seq, alert: items[i].Alert.ID, body: encodeItem(items[i])})
		}
	}
	h.push(hs)
}

// EnqueueDigest queues a daily digest (whatever the severities in it), as event "digest" with
// the digest's seq as its delivery id.
func (h *Webhook) EnqueueDigest(d Digest) {
	body, _ := json.Marshal(d) // only strings, numbers and slices of them: cannot fail
	h.push([]hookPost{{event: EventDigest, id: d.Seq, body: body}})
}

// push queues encoded items, dropping the oldest when the queue is full.
func (h *Webhook) push(items []hookPost) {
	if len(items) == 0 {
		return
	}
	dropped := 0
	h.mu.Lock()
	for i := range items {
		if h.n == h.cfg.Queue {
			h.queue[h.head] = hookPost{}
			h.head = (h.head + 1) % len(h.queue)
			h.n--
			dropped++
		}
		if h.n == len(h.queue) {
			h.grow()
		}
		h.queue[(h.head+h.n)%len(h.queue)] = items[i]
		h.n++
	}
	h.metrics.queueLen.Set(float64(h.n)) // under the lock: the gauge's updates keep the queue's order
	h.mu.Unlock()
	if dropped > 0 {
		h.metrics.dropped.Add(float64(dropped))
		h.log.Warn("webhook queue full: dropped the oldest feed items", "url", h.target, "dropped", dropped, "queue", h.cfg.Queue)
	}
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// wants reports whether an item's alert is severe enough to deliver.
func (h *Webhook) wants(item *FeedItem) bool {
	sev, ok := detectors.ParseSeverity(string(item.Alert.Severity))
	return ok && sev.Rank() >= h.minRank
}

// grow enlarges the full ring buffer, at most to cfg.Queue. h.mu is held.
func (h *Webhook) grow() {
	size := min(max(2*len(h.queue), 64), h.cfg.Queue)
	q := make([]hookPost, size)
	for i := 0; i < h.n; i++ {
		q[i] = h.queue[(h.head+i)%len(h.queue)]
	}
	h.queue, h.head = q, 0
}

// pop removes and returns the oldest queued item.
func (h *Webhook) pop() (hookPost, bool) {
	h.mu.Lock()
	if h.n == 0 {
		h.mu.Unlock()
		return hookPost{}, false
	}
	item := h.queue[h.head]
	h.queue[h.head] = hookPost{}
	h.head = (h.head + 1) % len(h.queue)
	h.n--
	h.metrics.queueLen.Set(float64(h.n))
	h.mu.Unlock()
	return item, true
}

// Len is the number of items waiting for delivery.
func (h *Webhook) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Run delivers queued items until ctx is cancelled; items still queued then are not delivered.
func (h *Webhook) Run(ctx context.Context) {
	for {
		h.drain(ctx)
		select {
		case <-ctx.Done():
			if n := h.Len(); n > 0 {
				h.log.Warn("webhook stopped with feed items not delivered", "url", h.target, "items", n)
			}
			return
		case <-h.wake:
		}
	}
}

// drain delivers the queued items, oldest first, until the queue is empty or ctx is cancelled.
func (h *Webhook) drain(ctx context.Context) {
	for ctx.Err() == nil {
		item, ok := h.pop()
		if !ok {
			return
		}
		h.deliver(ctx, item)
	}
}

// attemptResult is the outcome of one delivery attempt.
type attemptResult struct {
	err   error         // nil: delivered
	retry bool          // the failure is worth retrying
	wait  time.Duration // the receiver's Retry-After, when hasWait
	// hasWait: the receiver said when to retry (Retry-After on 429 or 503)
	hasWait bool
}

// deliver posts one item, retrying as configured, and counts the outcome. It returns early, without
// counting the item, when ctx is cancelled.
func (h *Webhook) deliver(ctx context.Context, item hookPost) {
	body := item.body
	b := backoff.New(backoff.Policy{Min: h.cfg.Backoff, Max: h.cfg.MaxBackoff})
	for attempt := 1; ; attempt++ {
		h.metrics.attempts.Inc()
		res := h.attempt(ctx, item, body)
		if res.err == nil {
			h.metrics.delivered.Inc()
			return
		}
		if ctx.Err() != nil {
			h.log.Info("webhook stopped while delivering a feed item", "url", h.target, "seq", item.id, "alert", item.alert, "attempt", attempt)
			return
		}
		if !res.retry {
			h.metrics.failed.Inc()
			h.log.Warn("webhook refused a feed item; not retrying", "url", h.target, "seq", item.id, "event", item.event,
				"alert", item.alert, "err", res.err)
			return
		}
		if attempt >= h.cfg.MaxAttempts {
			h.metrics.failed.Inc()
			h.log.Warn("webhook delivery failed; giving up", "url", h.target, "seq", item.id, "event", item.event,
				"alert", item.alert, "attempts", attempt, "err", res.err)
			return
		}
		wait := b.Next() // taken even when the receiver says when: the back-off goes on growing
		if res.hasWait {
			wait = min(res.wait, h.cfg.MaxBackoff)
		}
		h.log.Debug("webhook delivery failed; retrying", "url", h.target, "seq", item.id, "attempt", attempt, "in", wait, "err", res.err)
		if err := h.sleep(ctx, wait); err != nil {
			h.log.Info("webhook stopped while waiting to retry a feed item", "url", h.target, "seq", item.id, "alert", item.alert, "attempt", attempt)
			return
		}
	}
}

// attempt makes one POST of body, bounded by cfg.Timeout.
func (h *Webhook) attempt(ctx context.Context, item hookPost, body []byte) attemptResult {
	actx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return attemptResult{err: fmt.Errorf("webhook POST %s: cannot build the request: %w", h.target, err)}
	}
	ts := strconv.FormatInt(h.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "muckwatch-webhook/1")
	req.Header.Set(WebhookHeaderEvent, item.event)
	req.Header.Set(WebhookHeaderDelivery, strconv.FormatUint(item.id, 10))
	req.Header.Set(WebhookHeaderTimestamp, ts)
	req.Header.Set(WebhookHeaderSignature, signaturePrefix+sign(h.secret, ts, body))
	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error repeats the whole URL, query and credentials included: keep only the cause
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: %w", h.cfg.Timeout, err)
		}
		return attemptResult{err: fmt.Errorf("webhook POST %s: %w", h.target, err), retry: true}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return attemptResult{}
	}
	res := attemptResult{
		err:   fmt.Errorf("webhook POST %s: answered %s%s", h.target, resp.Status, describeBody(snippet)),
		retry: retryableStatus(resp.StatusCode),
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.wait, res.hasWait = parseRetryAfter(resp.Header.Get("Retry-After"), h.now())
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		res.err = fmt.Errorf("%w (redirects are not followed: configure the final URL, here %q)", res.err, resp.Header.Get("Location"))
	}
	return res
}

// retryableStatus: timeouts, rate limits and server errors may pass; other answers will not change.
func retryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || (code >= 500 && code < 600)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(365 * 24 * 3600) // keeps the Duration from overflowing; capped later
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// describeBody quotes the start of an error answer's body for the log.
func describeBody(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "\uFFFD"))
	if s == "" {
		return ""
	}
	if len(b) == 512 {
		s += "…"
	}
	return fmt.Sprintf(": %q", s)
}

// sign is the hex HMAC-SHA256 of timestamp "." body.
func sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports whether header (the X-Muckwatch-Signature value, "sha256=HEX") signs
// timestamp (the X-Muckwatch-Timestamp value) and body with secret. An empty secret or timestamp
// never verifies. It does not judge the timestamp's age: a receiver should also reject
// timestamps too far from its clock, and deliveries whose X-Muckwatch-Delivery it has seen.
func VerifySignature(secret string, timestamp string, body []byte, header string) bool {
	if secret == "" || timestamp == "" {
		return false
	}
	got, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok {
		return false
	}
	mac, err := hex.DecodeString(got)
	if err != nil || len(mac) != sha256.Size {
		return false
	}
	want, _ := hex.DecodeString(sign([]byte(secret), timestamp, body))
	return hmac.Equal(mac, want)
}
