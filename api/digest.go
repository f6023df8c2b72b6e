package api

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Digest is the daily digest: per district, what is open and what is overdue, by rule and by
// escalation level. The scheduled one is made at api.digest.at (local time) and sent to the
// webhook; GET /api/v1/alerts/digest serves it, or one made on request.
type Digest struct {
	// Seq is the digest's id: wall-clock microseconds when it was made (the webhook's
	// X-Muckwatch-Delivery).
	Seq uint64 `json:"seq"`
	// Date is the local day it was made for (YYYY-MM-DD, TimeZone); MadeAt when, local time.
	Date     string `json:"date"`
	TimeZone string `json:"time_zone"`
	MadeAt   string `json:"made_at"`
	MadeMs   int64  `json:"made_ms"`
	// Scheduled: made at api.digest.at (false: made on request, as of now).
	Scheduled bool `json:"scheduled"`
	// DueMs is when a scheduled digest was due (Unix milliseconds): its made_ms is later when it
	// was missed while no instance was up and made when one came back.
	DueMs     int64            `json:"due_ms,omitempty"`
	Districts []DistrictDigest `json:"districts"`
}

// DistrictDigest is one district's part of the digest. Open counts the alerts on the open list
// (under way, or severe and not yet resolved or dismissed); Overdue those of them nobody
// acknowledged or dispatched within ack_within (whether handled since or not); Unhandled those
// still waiting for a first action.
type DistrictDigest struct {
	District  string            `json:"district"` // "" for alerts outside every district
	Name      string            `json:"name,omitempty"`
	Open      int               `json:"open"`
	Unhandled int               `json:"unhandled"`
	Overdue   int               `json:"overdue"`
	ByRule    []DigestRule      `json:"by_rule"`
	ByLevel   []DigestLevel     `json:"by_level"`
	Alerts    []DigestAlertLine `json:"overdue_alerts"`
	// More is how many overdue alerts are not listed in overdue_alerts (api.digest.max_alerts).
	More int `json:"more,omitempty"`
}

// DigestRule counts a rule's open and overdue alerts in a district.
type DigestRule struct {
	Rule    string `json:"rule"`
	Open    int    `json:"open"`
	Overdue int    `json:"overdue"`
}

// DigestLevel counts a district's overdue alerts at an escalation level (0: not escalated).
type DigestLevel struct {
	Level  int    `json:"level"`
	Name   string `json:"name,omitempty"`
	Alerts int    `json:"alerts"`
}

// DigestAlertLine is one overdue alert in the digest, oldest first.
type DigestAlertLine struct {
	ID              string `json:"alert_id"`
	Rule            string `json:"rule"`
	Severity        string `json:"severity"`
	VehicleID       string `json:"vehicle_id"`
	State           string `json:"state"`
	ReceivedMs      int64  `json:"received_ms"`
	EscalationLevel int    `json:"escalation_level"`
}

// digestFacts is what the digest needs of an open alert, copied under the alerts' lock.
type digestFacts struct {
	id, rule, severity, vehicle, district, state string
	overdue                                      bool
	receivedMs                                   int64
	level                                        int
}

// MakeDigest makes the digest as of now from the open alerts, with a part for every district in
// districts (id → name, even with nothing open) and for any other district an open alert is in.
func (l *Live) MakeDigest(districts map[string]string, loc *time.Location, scheduled bool) Digest {
	l.alerts.mu.RLock()
	facts := make([]digestFacts, 0, len(l.alerts.open))
	for _, v := range l.alerts.open {
		facts = append(facts, digestFacts{id: v.ID, rule: string(v.Rule), severity: string(v.Severity), vehicle: v.VehicleID,
			district: v.District, state: v.Handling.State, overdue: v.Overdue, receivedMs: v.ReceivedMs, level: v.EscalationLevel})
	}
	l.alerts.mu.RUnlock()
	now := l.now()
	if loc == nil {
		loc = time.UTC
	}
	d := Digest{Seq: uint64(now.UnixMicro()), Date: now.In(loc).Format(time.DateOnly), TimeZone: loc.String(),
		MadeAt: formatTime(now, loc), MadeMs: now.UnixMilli(), Scheduled: scheduled}
	parts := map[string]*DistrictDigest{}
	part := func(id string) *DistrictDigest {
		p := parts[id]
		if p == nil {
			p = &DistrictDigest{District: id, Name: districts[id], ByRule: []DigestRule{}, ByLevel: []DigestLevel{}, Alerts: []DigestAlertLine{}}
			parts[id] = p
		}
		return p
	}
	for id := range districts {
		part(id)
	}
	slices.SortFunc(facts, func(a, b digestFacts) int {
		return cmp.Or(cmp.Compare(a.receivedMs, b.receivedMs), strings.Compare(a.id, b.id))
	})
	levels := l.cfg.Escalation.Levels
	for _, f := range facts {
		p := part(f.district)
		p.Open++
		if f.state == StateNew {
			p.Unhandled++
		}
		r := ruleCount(p, f.rule)
		r.Open++
		if !f.overdue {
			continue
		}
		p.Overdue++
		r.Overdue++
		levelCount(p, f.level, levels).Alerts++
		if len(p.Alerts) < l.cfg.Digest.MaxAlerts {
			p.Alerts = append(p.Alerts, DigestAlertLine{ID: f.id, Rule: f.rule, Severity: f.severity, VehicleID: f.vehicle,
				State: f.state, ReceivedMs: f.receivedMs, EscalationLevel: f.level})
		} else {
			p.More++
		}
	}
	d.Districts = make([]DistrictDigest, 0, len(parts))
	for _, p := range parts {
		slices.SortFunc(p.ByRule, func(a, b DigestRule) int { return strings.Compare(a.Rule, b.Rule) })
		slices.SortFunc(p.ByLevel, func(a, b DigestLevel) int { return cmp.Compare(a.Level, b.Level) })
		d.Districts = append(d.Districts, *p)
	}
	slices.SortFunc(d.Districts, func(a, b DistrictDigest) int { return strings.Compare(a.District, b.District) })
	return d
}

func ruleCount(p *DistrictDigest, rule string) *DigestRule {
	for i := range p.ByRule {
		if p.ByRule[i].Rule == rule {
			return &p.ByRule[i]
		}
	}
	p.ByRule = append(p.ByRule, DigestRule{Rule: rule})
	return &p.ByRule[len(p.ByRule)-1]
}

func levelCount(p *DistrictDigest, level int, levels []EscalationLevel) *DigestLevel {
	for i := range p.ByLevel {
		if p.ByLevel[i].Level == level {
			return &p.ByLevel[i]
		}
	}
	c := DigestLevel{Level: level}
	if level > 0 && level <= len(levels) {
		c.Name = levels[level-1].Name
	}
	p.ByLevel = append(p.ByLevel, c)
	return &p.ByLevel[len(p.ByLevel)-1]
}

// only keeps the parts of the districts asked for (none asked: all).
func (d Digest) only(districts map[string]bool) Digest {
	if len(districts) == 0 {
		return d
	}
	d.Districts = slices.DeleteFunc(slices.Clone(d.Districts), func(p DistrictDigest) bool { return !districts[p.District] })
	return d
}

// clock is a local time of day.
type clock struct{ hour, minute int }

// parseClock reads HH:MM.
func parseClock(s string) (clock, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	digits := func(s string) bool { return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' }
	if !ok || !digits(h) || !digits(m) || err1 != nil || err2 != nil || hh > 23 || mm > 59 {
		return clock{}, fmt.Errorf("%q is not a time of day HH:MM (00:00-23:59, local time) or off", s)
	}
	return clock{hour: hh, minute: mm}, nil
}

// next is the first time at c in loc strictly after t. On a day when c does not exist (a
// daylight-saving gap) it is the time Go normalises it to.
func (c clock) next(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	at := time.Date(lt.Year(), lt.Month(), lt.Day(), c.hour, c.minute, 0, 0, loc)
	for !at.After(t) {
		lt = lt.AddDate(0, 0, 1)
		at = time.Date(lt.Year(), lt.Month(), lt.Day(), c.hour, c.minute, 0, 0, loc)
	}
	return at
}

// digestSchedule makes the daily digest when its time comes. It is driven by the server's
// one-second tick with the server's clock (no timer of its own), so a test moves time by hand.
type digestSchedule struct {
	mu     sync.Mutex
	at     clock
	off    bool
	due    time.Time // the next digest's time; zero until the first tick
	latest *Digest   // the last scheduled digest made

	// Of the server's background goroutine only:
	// owed is the scheduled time of a digest due and not yet sent (zero: none).
	owed time.Time
	// recheck: ask the journal which digest was sent last before sending one (the first tick,
	// and a shared view's instance that has just been given the digest).
	recheck, hadDuty bool
	retryAt          time.Time // when to ask the journal again after it failed to answer
	unjournaled      *Digest   // a digest sent whose journal write failed, for the next tick
}

func newDigestSchedule(cfg DigestConfig) *digestSchedule {
	if cfg.At == "off" {
		return &digestSchedule{off: true}
	}
	c, _ := parseClock(cfg.At) // validated
	return &digestSchedule{at: c, recheck: true}
}

// tick reports whether a digest is due at now (in loc); the first tick only sets the first due
// time, after now (a digest due while no instance was up is found in the journal, see
// checkDigest).
func (d *digestSchedule) tick(now time.Time, loc *time.Location) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off {
		return false
	}
	if d.due.IsZero() {
		d.due = d.at.next(now, loc)
		return false
	}
	if now.Before(d.due) {
		return false
	}
	d.due = d.at.next(now, loc)
	return true
}

// prev is the last time at c in loc at or before t.
func (c clock) prev(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	at := time.Date(lt.Year(), lt.Month(), lt.Day(), c.hour, c.minute, 0, 0, loc)
	for at.After(t) {
		lt = lt.AddDate(0, 0, -1)
		at = time.Date(lt.Year(), lt.Month(), lt.Day(), c.hour, c.minute, 0, 0, loc)
	}
	return at
}

func (d *digestSchedule) keep(dg Digest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.latest = &dg
}

func (d *digestSchedule) last() (Digest, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.latest == nil {
		return Digest{}, false
	}
	return *d.latest, true
}

// districtNames maps the city's district ids to their names.
func (s *Server) districtNames() (map[string]string, *time.Location) {
	out := map[string]string{}
	if s.city == nil {
		return out, time.UTC
	}
	c := s.city.City()
	for _, d := range c.Districts {
		out[d.ID] = d.Name
	}
	return out, c.Location
}

// makeDigest makes the digest as of the server's now.
func (s *Server) makeDigest(scheduled bool) Digest {
	names, loc := s.districtNames()
	return s.live.MakeDigest(names, loc, scheduled)
}

// checkDigest makes, keeps, sends and journals the scheduled digest when it is due, once for the
// whole group: of a shared view only the instance given the digest (Duty) sends it, after asking
// the journal whether another instance already did. A digest that fell due while no instance was
// up is sent when one starts (the journal's last digest is older than the last scheduled time),
// marked by its due_ms; a new installation owes none.
func (s *Server) checkDigest(ctx context.Context) {
	d := s.digest
	if d.off {
		return
	}
	_, loc := s.districtNames()
	now := s.now()
	if d.tick(now, loc) {
		d.owed = d.at.prev(now, loc)
	}
	if u := d.unjournaled; u != nil && s.store != nil {
		if err := s.store.WriteDigest(ctx, *u); err != nil {
			s.log.Warn("cannot journal the daily digest; retrying", "date", u.Date, "err", err)
		} else {
			d.unjournaled = nil
		}
	}
	duty := s.live.sendsDigest()
	if duty && !d.hadDuty && s.live.shared() {
		d.recheck = true // given the digest: the instance that had it may have owed one
	}
	d.hadDuty = duty
	if !duty {
		d.owed = time.Time{} // the instance given the digest sends it
		return
	}
	if s.store == nil {
		d.recheck = false
	}
	if d.recheck || (!d.owed.IsZero() && s.live.shared() && s.store != nil) {
		if now.Before(d.retryAt) {
			return
		}
		last, found, err := s.store.LastDigestDue(ctx)
		if err != nil {
			d.retryAt = now.Add(10 * time.Second)
			s.log.Warn("cannot read which daily digest was sent last; asking again in 10 s", "err", err)
			return
		}
		if d.recheck && found && d.at.prev(now, loc).After(last) {
			d.owed = d.at.prev(now, loc) // fell due while no instance sent it
		}
		if found && !d.owed.IsZero() && !d.owed.After(last) {
			d.owed = time.Time{} // sent by another instance
		}
		d.recheck = false
	}
	if d.owed.IsZero() {
		return
	}
	dg := s.makeDigest(true)
	dg.DueMs = d.owed.UnixMilli()
	d.owed = time.Time{}
	d.keep(dg)
	if s.hook != nil {
		s.hook.EnqueueDigest(dg)
	}
	if s.store != nil {
		if err := s.store.WriteDigest(ctx, dg); err != nil {
			d.unjournaled = &dg
			s.log.Warn("cannot journal the daily digest; retrying (until it is, another instance given the digest may send it again)", "date", dg.Date, "err", err)
		}
	}
	open, overdue := 0, 0
	for _, p := range dg.Districts {
		open += p.Open
		overdue += p.Overdue
	}
	s.log.Info("daily alert digest made", "date", dg.Date, "due", time.UnixMilli(dg.DueMs).In(loc).Format(time.DateTime),
		"districts", len(dg.Districts), "open", open, "overdue", overdue, "webhook", s.hook != nil)
}

// handleDigest serves the last scheduled digest, or one made now (current=true, or when none
// was scheduled since the start), for the districts asked for.
func (s *Server) handleDigest(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var current bool
	switch q.Get("current") {
	case "", "false":
	case "true":
		current = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("current=%q: give true or false", q.Get("current")))
		return
	}
	districts := splitSet(q.Get("district"))
	if len(districts) > 0 {
		names, _ := s.districtNames()
		for d := range districts {
			if _, ok := names[d]; !ok && d != "" {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("district %q is not a district of the city (see /api/v1/city/layers)", d))
				return
			}
		}
	}
	d, ok := s.digest.last()
	if current || !ok {
		d = s.makeDigest(false)
	}
	writeJSON(w, http.StatusOK, d.only(districts))
}
