package detectors

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Risk is a vehicle's risk score for the inspection squads: 0–100 from its live state (open
// alerts, permit) and recent history (violations of the last 30 days), a level to act on, and the
// factors that make it up. In JSON the factors come twice: as data ("factors", for a console to
// word in its user's language) and in English ("reasons", RiskFactor.Words).
type Risk struct {
	Score   int
	Level   string // low (< 30), medium (< 60), high
	Factors []RiskFactor
	Updated time.Time // event time of the last change
}

// RiskKind is what a RiskFactor is about.
type RiskKind string

const (
	RiskOpenAlert    RiskKind = "open_alert"   // an open alert: Rule, Severity, SinceMs
	RiskViolations   RiskKind = "violations"   // Count violations in the last 30 days
	RiskUnregistered RiskKind = "unregistered" // not a registered muck truck
	RiskNoPermit     RiskKind = "no_permit"    // no muck-transport permit valid now
)

// RiskFactor is one reason of a Risk, as data.
type RiskFactor struct {
	Kind     RiskKind `json:"kind"`
	Rule     Rule     `json:"rule,omitempty"`
	Severity Severity `json:"severity,omitempty"`
	SinceMs  int64    `json:"since_ms,omitempty"` // when the alert opened, Unix milliseconds
	Count    int      `json:"count,omitempty"`
}

// Words is the factor in English.
func (f RiskFactor) Words() string {
	switch f.Kind {
	case RiskOpenAlert:
		return fmt.Sprintf("open %s %s alert since %s", f.Severity, f.Rule, time.UnixMilli(f.SinceMs).UTC().Format(time.RFC3339))
	case RiskViolations:
		if f.Count == 1 {
			return "1 violation in the last 30 days"
		}
		return fmt.Sprintf("%d violations in the last 30 days", f.Count)
	case RiskUnregistered:
		return "not a registered muck truck"
	case RiskNoPermit:
		return "no muck-transport permit valid now"
	}
	return string(f.Kind)
}

// Reasons are the factors in English.
func (r Risk) Reasons() []string {
	out := make([]string, len(r.Factors))
	for i, f := range r.Factors {
		out[i] = f.Words()
	}
	return out
}

// riskJSON is a Risk on the wire: the API's and the shared view's.
type riskJSON struct {
	Score   int          `json:"score"`
	Level   string       `json:"level"`
	Reasons []string     `json:"reasons"`
	Factors []RiskFactor `json:"factors"`
	Updated time.Time    `json:"updated"`
}

// MarshalJSON writes the factors as data and in words. The words are made here, not kept: a
// fleet's risks are held in memory and read far less often than they change.
func (r Risk) MarshalJSON() ([]byte, error) {
	factors := r.Factors
	if factors == nil {
		factors = []RiskFactor{}
	}
	return json.Marshal(riskJSON{Score: r.Score, Level: r.Level, Reasons: r.Reasons(), Factors: factors, Updated: r.Updated})
}

// UnmarshalJSON reads a Risk MarshalJSON wrote (its reasons follow from its factors).
func (r *Risk) UnmarshalJSON(b []byte) error {
	var j riskJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Risk{Score: j.Score, Level: j.Level, Factors: j.Factors, Updated: j.Updated}
	return nil
}

// Risk weights. An open alert weighs by its severity, each violation of the last riskHistory
// counts riskPerPast (up to riskPastCap), and the permit state adds its own.
const (
	riskOpenSevere  = 35
	riskOpenWarning = 20
	riskOpenInfo    = 5
	riskOpenCap     = 70
	riskPerPast     = 4
	riskPastCap     = 30
	riskNoPermit    = 25
	riskUnregister  = 35
	// riskSevereFloor: a vehicle with an open severe alert scores at least this (high), whatever
	// else it has: a squad must not read "medium" for a truck spilling its load right now.
	riskSevereFloor = 60
	riskHistory     = 30 * 24 * time.Hour
	riskHistoryMax  = 64 // opened times kept per vehicle
)

// riskLevel names a score.
func riskLevel(score int) string {
	switch {
	case score >= 60:
		return "high"
	case score >= 30:
		return "medium"
	}
	return "low"
}

// riskBook holds every vehicle's latest Risk for readers on other goroutines (the squads' API).
type riskBook struct {
	mu    sync.RWMutex
	risks map[string]Risk
}

func (b *riskBook) set(vehicle string, r Risk) {
	b.mu.Lock()
	if b.risks == nil {
		b.risks = make(map[string]Risk)
	}
	b.risks[vehicle] = r
	b.mu.Unlock()
}

func (b *riskBook) drop(vehicle string) {
	b.mu.Lock()
	delete(b.risks, vehicle)
	b.mu.Unlock()
}

func (b *riskBook) get(vehicle string) (Risk, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	r, ok := b.risks[vehicle]
	return r, ok
}

// Risk returns the vehicle's latest risk; ok is false for a vehicle never seen. It is safe to call
// from any goroutine.
func (e *Engine) Risk(vehicle string) (Risk, bool) { return e.risks.get(vehicle) }

// updateRisk recomputes a track's risk at event time now.
func (e *Engine) updateRisk(tr *Track, now time.Time) {
	cutoff := now.Add(-riskHistory)
	for len(tr.history) > 0 && tr.history[0].Before(cutoff) {
		tr.history = tr.history[1:]
	}
	// a fleet's factors are held until the next change: sized as they are, not grown by doubling
	n := 0
	for _, ep := range tr.episodes {
		if ep != nil && ep.alert != nil {
			n++
		}
	}
	if len(tr.history) > 0 {
		n++
	}
	regAdd, regKind := registrationRisk(tr.registered, tr.permitted)
	if regAdd > 0 {
		n++
	}
	var factors []RiskFactor
	if n > 0 {
		factors = make([]RiskFactor, 0, n)
	}
	open := 0
	severe := false
	for _, ep := range tr.episodes {
		if ep == nil || ep.alert == nil {
			continue
		}
		a := ep.alert
		switch a.Severity {
		case SeveritySevere:
			open += riskOpenSevere
			severe = true
		case SeverityWarning:
			open += riskOpenWarning
		default:
			open += riskOpenInfo
		}
		factors = append(factors, RiskFactor{Kind: RiskOpenAlert, Rule: a.Rule, Severity: a.Severity, SinceMs: a.Start.UnixMilli()})
	}
	// the open alerts by severity's name, rule and start, as their words sort
	slices.SortFunc(factors, func(a, b RiskFactor) int {
		if c := strings.Compare(string(a.Severity), string(b.Severity)); c != 0 {
			return c
		}
		if c := strings.Compare(string(a.Rule), string(b.Rule)); c != 0 {
			return c
		}
		return cmp.Compare(a.SinceMs/1000, b.SinceMs/1000) // whole seconds, as the words give them
	})
	score := min(open, riskOpenCap)
	if n := len(tr.history); n > 0 {
		score += min(n*riskPerPast, riskPastCap)
		factors = append(factors, RiskFactor{Kind: RiskViolations, Count: n})
	}
	if regAdd > 0 {
		score += regAdd
		factors = append(factors, RiskFactor{Kind: regKind})
	}
	if severe {
		score = max(score, riskSevereFloor)
	}
	score = min(score, 100)
	e.risks.set(tr.VehicleID, Risk{Score: score, Level: riskLevel(score), Factors: factors, Updated: now})
}

// registrationRisk is what a vehicle's registration and permit add to its score, and why.
func registrationRisk(registered, permitted bool) (int, RiskKind) {
	switch {
	case !registered:
		return riskUnregister, RiskUnregistered
	case !permitted:
		return riskNoPermit, RiskNoPermit
	}
	return 0, ""
}

// UnseenRisk is the risk of a vehicle the engine has not seen (Engine.Risk has none): it has no
// open alert and no history here, and its permit is judged only once it drives, so only whether
// it is a registered muck truck counts.
func UnseenRisk(registered bool) Risk {
	r := Risk{Factors: []RiskFactor{}}
	if add, kind := registrationRisk(registered, true); add > 0 {
		r.Score, r.Factors = add, append(r.Factors, RiskFactor{Kind: kind})
	}
	r.Level = riskLevel(r.Score)
	return r
}
