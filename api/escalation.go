package api

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// EscalationConfig is the ladder an overdue alert climbs while nobody handles it: each level is
// a re-notification (feed, muck.alerts, webhooks) to more senior people, the district supervisor,
// then the city. No levels: an overdue alert is announced once (the overdue change) and no more.
type EscalationConfig struct {
	// MinSeverity: only alerts at least this severe climb the ladder (info|warning|severe).
	MinSeverity string `yaml:"min_severity"`
	// SecretEnv names the environment variable whose value signs the deliveries to the levels'
	// webhooks; empty: api.webhook.secret_env.
	SecretEnv string `yaml:"secret_env"`
	// Levels, in order; the first is taken after the overdue announcement.
	Levels []EscalationLevel `yaml:"levels"`
}

// EscalationLevel is one rung of the ladder: when it is due and who it notifies.
type EscalationLevel struct {
	// Name names the level in the feed, the digest and the logs (letters, digits, - and _).
	Name string `yaml:"name"`
	// AfterArrival: due this long after the alert arrived (received_ms). AfterPrevious: due this
	// long after the previous level was due (for the first level, after the alert went overdue).
	// Exactly one is set. A level is never due before the previous one, nor before the alert is
	// overdue.
	AfterArrival  time.Duration `yaml:"after_arrival"`
	AfterPrevious time.Duration `yaml:"after_previous"`
	// Scope is who the level addresses: "district" (the people of the alert's district) or
	// "city" (the city's command centre).
	Scope string `yaml:"scope"`
	// Roles are the API roles the level addresses (supervisor, analyst, squad, admin): a client
	// shows the re-notification to the tokens of these roles.
	Roles []string `yaml:"roles"`
	// Channels are the receivers' channels (a team, a group chat id) for a notification system
	// reading the feed or muck.alerts; "{district}" is replaced by the alert's district.
	Channels []string `yaml:"channels"`
	// Webhooks receive this level's re-notifications (the feed item, signed as api.webhook's),
	// with api.webhook's timeout, attempts and back-off. They are not shown to API clients.
	Webhooks []string `yaml:"webhooks"`
}

// EscalationStep is a level an alert was escalated to: who it notified and when.
type EscalationStep struct {
	Level int    `json:"level"` // 1 is the ladder's first level
	Name  string `json:"name"`
	Scope string `json:"scope"` // district or city
	// District is the district notified (scope district: the alert's).
	District string   `json:"district,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Channels []string `json:"channels,omitempty"`
	// DueMs is when the ladder made the level due; AtMs when muckwatch took the step (later than
	// DueMs when muckwatch was down then). Wall time, Unix milliseconds.
	DueMs int64 `json:"due_ms"`
	AtMs  int64 `json:"at_ms"`
}

// ChangeRenotified is the feed change of an escalation step: the alert is overdue and was
// escalated to the level its escalation_level names; its last escalation step says who is
// notified.
const ChangeRenotified = "renotified"

// Escalation scopes.
const (
	ScopeDistrict = "district"
	ScopeCity     = "city"
)

const maxEscalationLevels = 10

var levelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

func (c EscalationConfig) withDefaults() EscalationConfig {
	if c.MinSeverity == "" {
		c.MinSeverity = string(detectors.SeverityWarning)
	}
	for i := range c.Levels {
		if c.Levels[i].Scope == "" {
			c.Levels[i].Scope = ScopeDistrict
		}
	}
	return c
}

// validate reports the first invalid field of the ladder; webhookSecretEnv is api.webhook's.
func (c EscalationConfig) validate(webhookSecretEnv string) error {
	const at = "api.escalation"
	if _, ok := detectors.ParseSeverity(c.MinSeverity); !ok {
		return fmt.Errorf("%s.min_severity must be info, warning or severe, got %q", at, c.MinSeverity)
	}
	if len(c.Levels) > maxEscalationLevels {
		return fmt.Errorf("%s.levels: at most %d levels, got %d", at, maxEscalationLevels, len(c.Levels))
	}
	seen := map[string]int{}
	hooks := false
	for i, lv := range c.Levels {
		where := fmt.Sprintf("%s.levels[%d]", at, i)
		if lv.Name != "" {
			where += " (" + lv.Name + ")"
		}
		if !levelName.MatchString(lv.Name) {
			return fmt.Errorf("%s: name must be 1-64 letters, digits, - or _, starting with a letter or digit, got %q", where, lv.Name)
		}
		if j, dup := seen[lv.Name]; dup {
			return fmt.Errorf("%s: name %q is also the name of level %d", where, lv.Name, j)
		}
		seen[lv.Name] = i
		switch {
		case lv.AfterArrival < 0 || lv.AfterPrevious < 0:
			return fmt.Errorf("%s: after_arrival and after_previous must not be negative", where)
		case lv.AfterArrival > 0 && lv.AfterPrevious > 0:
			return fmt.Errorf("%s: set after_arrival or after_previous, not both", where)
		case lv.AfterArrival == 0 && lv.AfterPrevious == 0:
			return fmt.Errorf("%s: set after_arrival (delay after the alert arrived) or after_previous (after the previous level), a positive duration", where)
		}
		if lv.AfterArrival > 0 {
			// an earlier level due later after arrival would make this one wait for it: say so
			for j := i - 1; j >= 0; j-- {
				if p := c.Levels[j]; p.AfterArrival > 0 {
					if p.AfterArrival >= lv.AfterArrival {
						return fmt.Errorf("%s: after_arrival %s is not later than level %d (%s)'s %s: levels climb in order", where, lv.AfterArrival, j, p.Name, p.AfterArrival)
					}
					break
				}
			}
		}
		if lv.Scope != ScopeDistrict && lv.Scope != ScopeCity {
			return fmt.Errorf("%s: scope must be district or city, got %q", where, lv.Scope)
		}
		if len(lv.Roles) == 0 && len(lv.Channels) == 0 && len(lv.Webhooks) == 0 {
			return fmt.Errorf("%s: notifies nobody: set roles, channels or webhooks", where)
		}
		for _, r := range lv.Roles {
			if _, ok := parseRole(r); !ok {
				return fmt.Errorf("%s: role %q is not squad, supervisor, analyst or admin", where, r)
			}
		}
		for _, ch := range lv.Channels {
			if strings.TrimSpace(ch) == "" || len(ch) > 200 {
				return fmt.Errorf("%s: a channel must be 1-200 characters, got %q", where, ch)
			}
		}
		for _, h := range lv.Webhooks {
			u, err := url.Parse(h)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s: webhook %q is not an http(s) URL", where, redactURL(h))
			}
			hooks = true
		}
	}
	if hooks && c.SecretEnv == "" && webhookSecretEnv == "" {
		return errors.New("api.escalation: levels have webhooks but neither api.escalation.secret_env nor api.webhook.secret_env names the signing secret's environment variable")
	}
	return nil
}

// redactURL is a URL without its query and credentials, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if len(s) > 40 {
			return s[:40] + "…"
		}
		return s
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// ladderDue is when each level of the ladder falls due for an alert received at received with
// acknowledgement deadline ack: never before the previous level, nor before the alert is overdue.
func ladderDue(levels []EscalationLevel, received time.Time, ack time.Duration) []time.Time {
	out := make([]time.Time, len(levels))
	for i := range levels {
		out[i] = time.UnixMilli(levelDue(levels, i, received.UnixMilli(), ack))
	}
	return out
}

// levelDue is when level i (0-based) falls due, as ladderDue says, in Unix milliseconds and
// without allocating: the overdue check asks it every second of every alert on the ladder.
func levelDue(levels []EscalationLevel, i int, receivedMs int64, ack time.Duration) int64 {
	prev := receivedMs + ack.Milliseconds() // overdue
	for _, lv := range levels[:i+1] {
		due := prev + lv.AfterPrevious.Milliseconds()
		if lv.AfterArrival > 0 {
			due = receivedMs + lv.AfterArrival.Milliseconds()
		}
		prev = max(prev, due)
	}
	return prev
}

// climbs reports whether an open alert is on the ladder: overdue, nobody handled it, and severe
// enough. l.alerts.mu is held.
func (l *Live) climbs(v *AlertView) bool {
	return len(l.cfg.Escalation.Levels) > 0 && v.Overdue && v.Handling.State == StateNew &&
		v.Severity.Rank() >= detectors.Severity(l.cfg.Escalation.MinSeverity).Rank()
}

// escalate takes the ladder's levels that are due for v at now and not yet taken, in order, and
// publishes a renotified change for each. A step already taken (also before a restart, read back
// from the feed journal) is not taken again; steps that fell due while muckwatch was down are
// all taken now. l.alerts.mu is held.
func (l *Live) escalate(v *AlertView, now time.Time, out []FeedItem) []FeedItem {
	if !l.climbs(v) || v.EscalationLevel >= len(l.cfg.Escalation.Levels) {
		return out
	}
	levels := l.cfg.Escalation.Levels
	ack, nowMs := l.ackWithin(v.Severity), now.UnixMilli()
	for i := v.EscalationLevel; i < len(levels); i++ {
		due := levelDue(levels, i, v.ReceivedMs, ack)
		if nowMs < due {
			break
		}
		lv := levels[i]
		step := EscalationStep{Level: i + 1, Name: lv.Name, Scope: lv.Scope, Roles: lv.Roles, DueMs: due, AtMs: nowMs}
		if lv.Scope == ScopeDistrict {
			step.District = v.District
		}
		for _, ch := range lv.Channels {
			step.Channels = append(step.Channels, strings.ReplaceAll(ch, "{district}", v.District))
		}
		v.EscalationLevel = i + 1
		v.Escalation = append(v.Escalation, step)
		out = append(out, l.publish(FeedItem{Change: ChangeRenotified, Alert: cloneView(v)}))
	}
	return out
}

// restoreEscalation sets the escalation steps the feed journal recorded for a restored alert (the
// renotified items, oldest first): they are not taken again.
func (l *Live) restoreEscalation(id string, steps []EscalationStep) {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	v := l.alerts.open[id]
	if v == nil {
		v = l.alerts.handled[id]
	}
	if v == nil {
		return
	}
	for _, s := range steps {
		if s.Level <= v.EscalationLevel {
			continue // a step journaled twice
		}
		v.EscalationLevel = s.Level
		v.Escalation = append(v.Escalation, s)
	}
	v.Overdue = v.Overdue || v.EscalationLevel > 0
}

// lastStep is the step a renotified item announces: the alert's last.
func lastStep(v *AlertView) (EscalationStep, bool) {
	if len(v.Escalation) == 0 {
		return EscalationStep{}, false
	}
	return v.Escalation[len(v.Escalation)-1], true
}

// levelWebhooks maps each level (1-based) to its webhooks' indexes in a flat list of distinct
// URLs, so that a URL named by several levels is one queue.
func levelWebhooks(levels []EscalationLevel) (urls []string, byLevel [][]int) {
	byLevel = make([][]int, len(levels)+1)
	for i, lv := range levels {
		for _, u := range lv.Webhooks {
			k := slices.Index(urls, u)
			if k < 0 {
				k = len(urls)
				urls = append(urls, u)
			}
			if !slices.Contains(byLevel[i+1], k) {
				byLevel[i+1] = append(byLevel[i+1], k)
			}
		}
	}
	return urls, byLevel
}
