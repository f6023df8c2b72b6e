package api

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// Config configures the HTTP API. The zero value, after WithDefaults, serves nothing (Listen is
// empty); set Listen to serve.
type Config struct {
	// Listen is the API's host:port; empty or "off" disables the API.
	Listen string `yaml:"listen"`
	// TLSCertFile and TLSKeyFile serve HTTPS when both are set.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// TokensEnv names the environment variable holding the bearer tokens, hashed: entries
	// "ROLE:NAME:sha256:HEX" separated by commas or newlines (`muckwatch token` makes them).
	TokensEnv string `yaml:"tokens_env"`
	// RatePerSecond and Burst limit each token's requests (a token bucket per token).
	RatePerSecond float64 `yaml:"rate_per_second"`
	Burst         int     `yaml:"burst"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxWindow bounds the time window of an analyst's query.
	MaxWindow time.Duration `yaml:"max_window"`
	// MaxRows bounds the rows of one answer (violations, track points).
	MaxRows int `yaml:"max_rows"`
	// QueryTimeout bounds every ClickHouse query of a request (history, a vehicle's last position,
	// the feed journal): past it the request is answered 504.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxQueries bounds the history queries running at once; more are answered 503.
	MaxQueries int `yaml:"max_queries"`
	// AuditQueue bounds the audit records waiting to be written to ClickHouse; when it is full
	// the requests that would be audited are refused with 503 (none is served unaudited).
	AuditQueue int `yaml:"audit_queue"`
	// AuthFailuresPerMinute bounds the refused authentications per client address (a token
	// bucket with this burst); past it requests from that address get 429 until it refills.
	AuthFailuresPerMinute int `yaml:"auth_failures_per_minute"`
	// MaxStreamsPerToken bounds the alert streams one token may have open at once.
	MaxStreamsPerToken int `yaml:"max_streams_per_token"`
	// FeedBuffer is how many alert-feed items are kept in memory for SSE clients resuming with
	// Last-Event-ID; older ones are read back from ClickHouse.
	FeedBuffer int `yaml:"feed_buffer"`
	// OpenSevereFor keeps a severe alert on the open list this long after its episode ended unless
	// a supervisor resolves or dismisses it first.
	OpenSevereFor time.Duration `yaml:"open_severe_for"`
	// AckWithin: an open alert nobody acknowledged (or dispatched) this long after it arrived is
	// overdue, by severity.
	AckWithin AckWithin `yaml:"ack_within"`
	// Dispatch configures who a new alert is offered to.
	Dispatch DispatchConfig `yaml:"dispatch"`
	// Webhook delivers the alert feed to an external notification system.
	Webhook WebhookConfig `yaml:"webhook"`
	// View is where the live view (positions, risk, open alerts and their handling, the alert
	// feed) comes from: "local" (default), this instance's own pipeline, so only the vehicles of
	// the partitions it reads; "shared", what every instance publishes to Kafka (the alerts topic
	// and outputs.live_topic, read whole by every instance), so that any instance gives the same
	// answers (docs/architecture.md, "Any instance answers any question"); the overdue checks,
	// escalation steps and daily digest are then shared out so that each happens once (Duty), and
	// with an alerts topic of one partition the feed's ids are the same on every instance.
	View string `yaml:"view"`
	// ViewLookback: with view shared, how far back (by record time) the alerts topic is read on
	// start, on top of what ClickHouse restores: the changes announced but not yet written there.
	// Default 10m.
	ViewLookback time.Duration `yaml:"view_lookback"`
	// Escalation is the ladder an overdue alert climbs (re-notifications to more senior people).
	Escalation EscalationConfig `yaml:"escalation"`
	// Digest configures the daily digest per district of the open and overdue alerts.
	Digest DigestConfig `yaml:"digest"`
	// KPI configures the handling KPIs, scorecards and rankings.
	KPI KPIConfig `yaml:"kpi"`
}

// DigestConfig configures the daily digest.
type DigestConfig struct {
	// At is the local time of day, HH:MM in the city's time zone, at which the digest is made and
	// sent to api.webhook.url; "off" makes none (GET /api/v1/alerts/digest still answers).
	At string `yaml:"at"`
	// MaxAlerts bounds the overdue alerts listed by id per district (the counts are complete).
	MaxAlerts int `yaml:"max_alerts"`
}

// Views of the live state (Config.View).
const (
	ViewLocal  = "local"
	ViewShared = "shared"
)

// AckWithin is the acknowledgement deadline per severity.
type AckWithin struct {
	Severe  time.Duration `yaml:"severe"`
	Warning time.Duration `yaml:"warning"`
	Info    time.Duration `yaml:"info"`
}

// DispatchConfig configures dispatch: severe alerts are offered to the nearest available
// enforcement officers; the others are routed to the district's grid staff.
type DispatchConfig struct {
	// Officers is how many of the nearest available officers a severe alert is offered to.
	Officers int `yaml:"officers"`
	// MaxDistanceM: officers farther than this are not offered.
	MaxDistanceM float64 `yaml:"max_distance_m"`
	// OfficerStale: an officer whose last position is older than this is not offered.
	OfficerStale time.Duration `yaml:"officer_stale"`
	// SpeedKmh and RoadFactor estimate the ETA: straight-line distance × RoadFactor at SpeedKmh.
	SpeedKmh   float64 `yaml:"speed_kmh"`
	RoadFactor float64 `yaml:"road_factor"`
	// GridStaff maps a district id to the grid staff's channel (a team name, a group chat id); a
	// district not listed gets "grid-staff:DISTRICT".
	GridStaff map[string]string `yaml:"grid_staff"`
	// Teams maps a team (handling unit) to its officers' ids, for the handling KPIs per unit; an
	// officer in no team is a unit of their own ("officer:ID").
	Teams map[string][]string `yaml:"teams"`
	// SevereOnly: only severe alerts go to officers (default); with false, warnings do too.
	WarningsToOfficers bool `yaml:"warnings_to_officers"`
}

// WebhookConfig configures webhook delivery of the alert feed.
type WebhookConfig struct {
	// URL receives a POST of every feed item (JSON); empty disables the webhook.
	URL string `yaml:"url"`
	// SecretEnv names the environment variable whose value signs each payload
	// (X-Muckwatch-Signature: sha256=HMAC-SHA256(secret, timestamp + "." + body)).
	SecretEnv string `yaml:"secret_env"`
	// MinSeverity: only changes of alerts at least this severe are delivered (info|warning|severe).
	MinSeverity string `yaml:"min_severity"`
	// Timeout bounds one delivery attempt; MaxAttempts bounds the attempts, with back-off from
	// Backoff doubling up to MaxBackoff.
	Timeout     time.Duration `yaml:"timeout"`
	MaxAttempts int           `yaml:"max_attempts"`
	Backoff     time.Duration `yaml:"backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	// Queue bounds the items waiting for delivery; when full the oldest is dropped and counted.
	Queue int `yaml:"queue"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Listen == "off" {
		c.Listen = ""
	}
	if c.TokensEnv == "" {
		c.TokensEnv = "MUCKWATCH_API_TOKENS"
	}
	if c.View == "" {
		c.View = ViewLocal
	}
	if c.ViewLookback == 0 {
		c.ViewLookback = 10 * time.Minute
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 100
	}
	if c.Burst == 0 {
		c.Burst = 200
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.MaxWindow == 0 {
		c.MaxWindow = 366 * 24 * time.Hour
	}
	if c.MaxRows == 0 {
		c.MaxRows = 100_000
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 10 * time.Second
	}
	if c.MaxQueries == 0 {
		c.MaxQueries = 16
	}
	if c.AuditQueue == 0 {
		c.AuditQueue = 100_000
	}
	if c.AuthFailuresPerMinute == 0 {
		c.AuthFailuresPerMinute = 30
	}
	if c.MaxStreamsPerToken == 0 {
		c.MaxStreamsPerToken = 5
	}
	if c.FeedBuffer == 0 {
		c.FeedBuffer = 50_000
	}
	if c.OpenSevereFor == 0 {
		c.OpenSevereFor = 24 * time.Hour
	}
	if c.AckWithin.Severe == 0 {
		c.AckWithin.Severe = 5 * time.Minute
	}
	if c.AckWithin.Warning == 0 {
		c.AckWithin.Warning = 30 * time.Minute
	}
	if c.AckWithin.Info == 0 {
		c.AckWithin.Info = 2 * time.Hour
	}
	c.KPI = c.KPI.withDefaults()
	d := &c.Dispatch
	if d.Officers == 0 {
		d.Officers = 3
	}
	if d.MaxDistanceM == 0 {
		d.MaxDistanceM = 20_000
	}
	if d.OfficerStale == 0 {
		d.OfficerStale = 15 * time.Minute
	}
	if d.SpeedKmh == 0 {
		d.SpeedKmh = 30
	}
	if d.RoadFactor == 0 {
		d.RoadFactor = 1.4
	}
	w := &c.Webhook
	if w.MinSeverity == "" {
		w.MinSeverity = "warning"
	}
	if w.Timeout == 0 {
		w.Timeout = 5 * time.Second
	}
	if w.MaxAttempts == 0 {
		w.MaxAttempts = 8
	}
	if w.Backoff == 0 {
		w.Backoff = 500 * time.Millisecond
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = 30 * time.Second
	}
	if w.Queue == 0 {
		w.Queue = 10_000
	}
	c.Escalation = c.Escalation.withDefaults()
	if c.Digest.At == "" {
		c.Digest.At = "08:00"
	}
	if c.Digest.MaxAlerts == 0 {
		c.Digest.MaxAlerts = 50
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("api.listen: %q is not host:port", c.Listen)
		}
	}
	if err := c.KPI.validate(); err != nil {
		return err
	}
	switch {
	case (c.TLSCertFile == "") != (c.TLSKeyFile == ""):
		return errors.New("api: tls_cert_file and tls_key_file must be set together")
	case c.TokensEnv == "":
		return errors.New("api.tokens_env must name an environment variable")
	case c.View != ViewLocal && c.View != ViewShared:
		return fmt.Errorf("api.view must be %s or %s, got %q", ViewLocal, ViewShared, c.View)
	case c.ViewLookback < 0:
		return fmt.Errorf("api.view_lookback must not be negative, got %s", c.ViewLookback)
	case c.RatePerSecond <= 0 || c.Burst < 1:
		return fmt.Errorf("api: rate_per_second must be positive and burst at least 1, got %g and %d", c.RatePerSecond, c.Burst)
	case c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 16<<20:
		return fmt.Errorf("api.max_body_bytes must be within [1 KiB, 16 MiB], got %d", c.MaxBodyBytes)
	case c.MaxWindow < time.Hour:
		return fmt.Errorf("api.max_window must be at least 1h, got %s", c.MaxWindow)
	case c.MaxRows < 100:
		return fmt.Errorf("api.max_rows must be at least 100, got %d", c.MaxRows)
	case c.QueryTimeout < 100*time.Millisecond || c.QueryTimeout > 10*time.Minute:
		return fmt.Errorf("api.query_timeout must be within [100ms, 10m], got %s", c.QueryTimeout)
	case c.MaxQueries < 1:
		return fmt.Errorf("api.max_queries must be at least 1, got %d", c.MaxQueries)
	case c.AuditQueue < 1:
		return fmt.Errorf("api.audit_queue must be at least 1, got %d", c.AuditQueue)
	case c.AuthFailuresPerMinute < 1:
		return fmt.Errorf("api.auth_failures_per_minute must be at least 1, got %d", c.AuthFailuresPerMinute)
	case c.MaxStreamsPerToken < 1:
		return fmt.Errorf("api.max_streams_per_token must be at least 1, got %d", c.MaxStreamsPerToken)
	case c.FeedBuffer < 100:
		return fmt.Errorf("api.feed_buffer must be at least 100, got %d", c.FeedBuffer)
	case c.OpenSevereFor < 0:
		return fmt.Errorf("api.open_severe_for must not be negative, got %s", c.OpenSevereFor)
	case c.AckWithin.Severe <= 0 || c.AckWithin.Warning <= 0 || c.AckWithin.Info <= 0:
		return errors.New("api.ack_within: severe, warning and info must be positive")
	case c.Dispatch.Officers < 1 || c.Dispatch.Officers > 50:
		return fmt.Errorf("api.dispatch.officers must be within [1, 50], got %d", c.Dispatch.Officers)
	case c.Dispatch.MaxDistanceM <= 0 || c.Dispatch.SpeedKmh <= 0 || c.Dispatch.RoadFactor < 1:
		return errors.New("api.dispatch: max_distance_m and speed_kmh must be positive, road_factor at least 1")
	case c.Dispatch.OfficerStale <= 0:
		return errors.New("api.dispatch.officer_stale must be positive")
	}
	w := c.Webhook
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("api.webhook.url must be an http(s) URL, got %q", w.URL)
		}
		if w.SecretEnv == "" {
			return errors.New("api.webhook.secret_env must name the environment variable holding the signing secret")
		}
	}
	if _, ok := detectors.ParseSeverity(w.MinSeverity); !ok {
		return fmt.Errorf("api.webhook.min_severity must be info, warning or severe, got %q", w.MinSeverity)
	}
	if w.Timeout <= 0 || w.MaxAttempts < 1 || w.Backoff <= 0 || w.MaxBackoff < w.Backoff || w.Queue < 1 {
		return errors.New("api.webhook: timeout, backoff and queue must be positive, max_attempts at least 1, max_backoff at least backoff")
	}
	if err := c.Escalation.validate(w.SecretEnv); err != nil {
		return err
	}
	if c.Digest.At != "off" {
		if _, err := parseClock(c.Digest.At); err != nil {
			return fmt.Errorf("api.digest.at: %w", err)
		}
	}
	if c.Digest.MaxAlerts < 1 || c.Digest.MaxAlerts > 10_000 {
		return fmt.Errorf("api.digest.max_alerts must be within [1, 10000], got %d", c.Digest.MaxAlerts)
	}
	return nil
}
