package detectors

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"time"
)

// Rule names an alerting rule. The names are part of the public contract (muck.alerts, ClickHouse).
type Rule string

// The rules of MISSION.md.
const (
	RuleRouteDeviation Rule = "route_deviation"
	RuleSpeeding       Rule = "speeding"
	RuleRestrictedZone Rule = "restricted_zone"
	RuleOverload       Rule = "overload"
	RuleDwell          Rule = "dwell"
	RuleUnlicensed     Rule = "unlicensed"
	RuleCoverOpen      Rule = "cover_open"
	RuleSpillage       Rule = "spillage"
	RuleSignalLost     Rule = "signal_lost"
	RuleSiteExitRisk   Rule = "site_exit_risk"
	RuleTripUnclosed   Rule = "trip_unclosed"
)

// AllRules returns every rule name.
func AllRules() []Rule {
	return []Rule{RuleRouteDeviation, RuleSpeeding, RuleRestrictedZone, RuleOverload, RuleDwell, RuleUnlicensed,
		RuleCoverOpen, RuleSpillage, RuleSignalLost, RuleSiteExitRisk, RuleTripUnclosed}
}

// Severity says how urgently a supervisor must act.
type Severity string

// Severities, from mild to severe. Info and warning go to grid staff; severe is dispatched to
// enforcement officers.
const (
	SeverityInfo    Severity = "info"
	SeverityWarning Severity = "warning"
	SeveritySevere  Severity = "severe"
)

// Phase says whether the alert comes before the violation (pre-event, 事前) or during it
// (in-event, 事中).
type Phase string

// Phases.
const (
	PhasePre Phase = "pre_event"
	PhaseIn  Phase = "in_event"
)

// Status is where an alert is in its detection lifecycle. Supervisors' lifecycle (dispatched,
// acknowledged, …) is layered on top by the API and does not change detection.
type Status string

// Detection statuses.
const (
	StatusOpen     Status = "open"
	StatusResolved Status = "resolved"
)

// ChangeKind says what happened to an alert.
type ChangeKind string

// Alert change kinds.
const (
	ChangeOpened    ChangeKind = "opened"
	ChangeEscalated ChangeKind = "escalated"
	ChangeUpdated   ChangeKind = "updated"
	ChangeResolved  ChangeKind = "resolved"
)

// Alert is one violation episode of one vehicle under one rule. Its ID is stable: the same
// evidence (rule, vehicle, start of the episode) gives the same ID, so reprocessing after a
// restart updates the alert instead of creating another one.
type Alert struct {
	ID        string
	Rule      Rule
	Severity  Severity
	Phase     Phase
	Status    Status
	VehicleID string
	Company   string
	PermitID  string
	Place     string // the zone, site or route the alert is about, if any
	District  string
	Start     time.Time // event time the violation started
	End       time.Time // event time it ended; zero while open
	Lat, Lon  float64   // where it started (WGS-84)
	Value     float64   // the measured value: speed km/h, distance m, load kg, seconds stopped, …
	Limit     float64   // the limit it was judged against
	Evidence  string    // a sentence a supervisor can read
	Version   uint64    // increases with every change, for ReplacingMergeTree(version)
	Updated   time.Time // event time of the last change
	// kept in the engine only, for the evidence (not in the alert's JSON or the checkpoint)
	basis string // how Value was measured (speeding: "reported" or "derived"), "" when unknown
	note  string // appended to the evidence (an episode ended by a lost signal)
}

// Change is one change of an alert: the snapshot after the change and what the change was.
type Change struct {
	Kind  ChangeKind
	Alert Alert
}

// AlertID returns the stable id of the episode of rule for vehicle that started at start.
func AlertID(rule Rule, vehicle string, start time.Time) string {
	h := sha1.New()
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(vehicle))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, start.UnixMilli(), 10))
	var sum [sha1.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:12])
}

// Action is what a supervisor should do with an alert of severity s.
func (s Severity) Action() string {
	if s == SeveritySevere {
		return "dispatch_enforcement"
	}
	return "notify_grid_staff"
}

// Rank orders severities from mild to severe: info 0, warning 1, severe 2 (and 0 for an unknown
// one).
func (s Severity) Rank() int {
	switch s {
	case SeveritySevere:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

func (s Severity) rank() int { return s.Rank() }

// ParseSeverity parses a severity name.
func ParseSeverity(s string) (Severity, bool) {
	switch Severity(s) {
	case SeverityInfo, SeverityWarning, SeveritySevere:
		return Severity(s), true
	}
	return "", false
}
