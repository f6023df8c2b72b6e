package detectors

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// Risk is a vehicle's risk score for the inspection squads: 0–100 from its live state (open
// alerts, permit) and recent history (violations of the last 30 days), a level to act on, and the
// reasons that make it up.
type Risk struct {
	Score   int       `json:"score"`
	Level   string    `json:"level"` // low (< 30), medium (< 60), high
	Reasons []string  `json:"reasons"`
	Updated time.Time `json:"updated"` // event time of the last change
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
	var reasons []string
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
		reasons = append(reasons, fmt.Sprintf("open %s %s alert since %s", a.Severity, a.Rule, a.Start.UTC().Format(time.RFC3339)))
	}
	sort.Strings(reasons)
	score := min(open, riskOpenCap)
	if n := len(tr.history); n > 0 {
		score += min(n*riskPerPast, riskPastCap)
		word := "violations"
		if n == 1 {
			word = "violation"
		}
		reasons = append(reasons, fmt.Sprintf("%d %s in the last 30 days", n, word))
	}
	if add, reason := registrationRisk(tr.registered, tr.permitted); add > 0 {
		score += add
		reasons = append(reasons, reason)
	}
	if severe {
		score = max(score, riskSevereFloor)
	}
	score = min(score, 100)
	e.risks.set(tr.VehicleID, Risk{Score: score, Level: riskLevel(score), Reasons: reasons, Updated: now})
}

// registrationRisk is what a vehicle's registration and permit add to its score, and why.
func registrationRisk(registered, permitted bool) (int, string) {
	switch {
	case !registered:
		return riskUnregister, "not a registered muck truck"
	case !permitted:
		return riskNoPermit, "no muck-transport permit valid now"
	}
	return 0, ""
}

// UnseenRisk is the risk of a vehicle the engine has not seen (Engine.Risk has none): it has no
// open alert and no history here, and its permit is judged only once it drives, so only whether
// it is a registered muck truck counts.
func UnseenRisk(registered bool) Risk {
	r := Risk{Reasons: []string{}}
	if add, reason := registrationRisk(registered, true); add > 0 {
		r.Score, r.Reasons = add, append(r.Reasons, reason)
	}
	r.Level = riskLevel(r.Score)
	return r
}
