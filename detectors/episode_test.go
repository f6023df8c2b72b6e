package detectors

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestEpisodeTransitions drives one episode through the shared state machine, a verdict at a time:
// each case reaches a state with the verdicts of `to`, then takes one more and names the state it
// goes to and the alert changes that emits.
func TestEpisodeTransitions(t *testing.T) {
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	var (
		active  = Verdict{Active: true, Severity: SeverityWarning, Value: 1}
		severe  = Verdict{Active: true, Severity: SeveritySevere, Value: 2}
		now     = Verdict{Active: true, Severity: SeverityWarning, Immediate: true}
		instant = Verdict{Active: true, Severity: SeveritySevere, Immediate: true, Instant: true}
		clear   = Verdict{Clear: true}
		held    = Verdict{} // neither: hysteresis
	)
	twice := Timing{MinFixes: 2}
	lingering := Timing{MinFixes: 2, ClearFor: time.Minute}
	for _, tc := range []struct {
		name   string
		timing Timing
		to     []Verdict // one every 10 s from start, then the verdict under test 10 s later
		from   State
		v      Verdict
		want   State
		change string // the alert changes the verdict under test emits
	}{
		{"a first active observation starts an episode", twice, nil, StateInactive, active, StatePending, ""},
		{"a clear observation leaves nothing", twice, nil, StateInactive, clear, StateInactive, ""},
		{"immediate fires at once", twice, nil, StateInactive, now, StateFiring, "opened"},
		{"an instant finding opens and resolves", twice, nil, StateInactive, instant, StateResolved, "opened resolved"},
		{"held for MinFixes fires", twice, []Verdict{active}, StatePending, active, StateFiring, "opened"},
		{"not yet held for For", Timing{For: time.Minute, MinFixes: 1}, []Verdict{active}, StatePending, active, StatePending, ""},
		{"held for For fires", Timing{For: 20 * time.Second, MinFixes: 1}, []Verdict{active, active}, StatePending, active, StateFiring, "opened"},
		{"pending and clear: over", twice, []Verdict{active}, StatePending, clear, StateInactive, ""},
		{"pending within the hysteresis stays", Timing{For: time.Minute, MinFixes: 1}, []Verdict{active}, StatePending, held, StatePending, ""},
		{"pending for MinFixes within the hysteresis ends", twice, []Verdict{active}, StatePending, held, StateInactive, ""},
		{"firing goes on", twice, []Verdict{active, active}, StateFiring, active, StateFiring, ""},
		{"firing escalates", twice, []Verdict{active, active}, StateFiring, severe, StateFiring, "escalated"},
		{"firing escalates after EscalateAfter", Timing{MinFixes: 1, EscalateAfter: 20 * time.Second}, []Verdict{active, active}, StateFiring, active, StateFiring, "escalated"},
		{"firing within the hysteresis stays", twice, []Verdict{active, active}, StateFiring, held, StateFiring, ""},
		{"firing and clear without ClearFor: resolved and over", twice, []Verdict{active, active}, StateFiring, clear, StateInactive, "resolved"},
		{"firing and clear: clearing", lingering, []Verdict{active, active}, StateFiring, clear, StateClearing, ""},
		{"clearing and active: the same alert goes on", lingering, []Verdict{active, active, clear}, StateClearing, active, StateFiring, ""},
		{"clearing, not yet for ClearFor", lingering, []Verdict{active, active, clear}, StateClearing, clear, StateClearing, ""},
		{"clearing for ClearFor: resolved and over", lingering, []Verdict{active, active, clear, clear, clear, clear, clear}, StateClearing, clear, StateInactive, "resolved"},
		{"resolved and active: a new episode", twice, []Verdict{instant}, StateResolved, active, StatePending, ""},
		{"resolved and clear: over", twice, []Verdict{instant}, StateResolved, clear, StateInactive, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, eng := loadTestEngine(t)
			tr := eng.track("粤B00001")
			const i = 0 // the first rule's slot; its Describe is all the state machine asks of it
			d := eng.fixes[i].rule
			ep := eng.keep(tr, i, eng.episode(tr, i))
			at := start
			judge := func(v Verdict) {
				eng.step(tr, i, ep, d, tc.timing, PhaseIn, &Observation{Time: at, LL: [2]float64{114, 22.5}}, v)
				at = at.Add(10 * time.Second)
			}
			for _, v := range tc.to {
				judge(v)
			}
			if ep.State() != tc.from {
				t.Fatalf("reached %s, want %s", ep.State(), tc.from)
			}
			eng.Reset()
			judge(tc.v)
			var got []string
			for _, ch := range eng.Changes() {
				got = append(got, string(ch.Kind))
			}
			if ep.State() != tc.want || strings.Join(got, " ") != tc.change {
				t.Errorf("%s → %s emitting %q, want %s emitting %q", tc.from, ep.State(), strings.Join(got, " "), tc.want, tc.change)
			}
			if open := ep.alert != nil; open != tc.want.alertOpen() {
				t.Errorf("in state %s with an open alert: %v", ep.State(), open)
			}
			checkEpisodeGauges(t, eng)
		})
	}
}

// TestClearingResolvesAtFirstClear: ClearFor counts from the last active observation; the alert
// resolves at the first clear observation past it, and ends at the first clear one.
func TestClearingResolvesAtFirstClear(t *testing.T) {
	_, eng := loadTestEngine(t)
	tr := eng.track("粤B00001")
	ep := eng.keep(tr, 0, eng.episode(tr, 0))
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	timing := Timing{MinFixes: 1, ClearFor: time.Minute}
	for k, v := range []Verdict{{Active: true}, {Clear: true}, {}, {Clear: true}} { // every 30 s
		eng.step(tr, 0, ep, eng.fixes[0].rule, timing, PhaseIn, &Observation{Time: start.Add(time.Duration(k) * 30 * time.Second)}, v)
	}
	changes := eng.Changes()
	if len(changes) != 2 || changes[1].Kind != ChangeResolved || !changes[1].Alert.End.Equal(start.Add(30*time.Second)) ||
		!changes[1].Alert.Updated.Equal(start.Add(90*time.Second)) || ep.State() != StateInactive {
		t.Fatalf("changes %s, %s; want the alert resolved at 90s with its end at 30s", kinds(changes), ep.State())
	}
}

// checkEpisodeGauges fails unless muckwatch_episodes counts the engine's episodes by rule and state.
func checkEpisodeGauges(t *testing.T, eng *Engine) {
	t.Helper()
	count := make([][numStates]int, len(eng.names))
	for _, tr := range eng.tracks {
		for i, ep := range tr.episodes {
			if ep != nil {
				count[i][ep.state]++
			}
		}
	}
	for i, rule := range eng.names {
		for s := StatePending; s < numStates; s++ {
			if got := gaugeValue(t, eng.metrics.episodes[i][s]); got != float64(count[i][s]) {
				t.Fatalf("muckwatch_episodes{rule=%q,state=%q} is %g; the tracks have %d", rule, s, got, count[i][s])
			}
		}
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
