package detectors

import "github.com/prometheus/client_golang/prometheus"

// engineMetrics are the engine's metrics, registered with the Registerer it is created with.
type engineMetrics struct {
	alerts        *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	skippedEvents *prometheus.CounterVec
	tracked       prometheus.Gauge
	episodes      episodeGauges
}

func newEngineMetrics(reg prometheus.Registerer, rules []Rule) *engineMetrics {
	m := &engineMetrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_alert_changes_total",
			Help: "Alert changes emitted, by rule, severity and change (opened, escalated, resolved)."}, []string{"rule", "severity", "change"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_detector_skipped_fixes_total",
			Help: "Fixes stored but not judged, by reason (out_of_order, jump, snap)."}, []string{"reason"}),
		skippedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_detector_skipped_events_total",
			Help: "Events stored but not judged, by reason (replayed: judged before a restart or rebalance)."}, []string{"reason"}),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_tracked_vehicles",
			Help: "Vehicles with detector state."}),
	}
	for _, r := range rules {
		m.alerts.WithLabelValues(string(r), string(SeverityWarning), string(ChangeOpened))
	}
	episodes := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "muckwatch_episodes",
		Help: "Episodes the tracked vehicles are in, by rule and state: pending (the condition holds, not yet long enough), " +
			"firing (the alert is open), clearing (the alert is open, the condition clear for less than clear_for), " +
			"resolved (the alert closed, the episode kept until the condition is seen over)."}, []string{"rule", "state"})
	m.episodes = make(episodeGauges, len(rules))
	for i, r := range rules {
		for s := StatePending; s < numStates; s++ {
			m.episodes[i][s] = episodes.WithLabelValues(string(r), s.String())
		}
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.skipped, m.skippedEvents, m.tracked, episodes)
	}
	return m
}

// episodeGauges are muckwatch_episodes by rule slot and state, looked up once (nil for
// StateInactive, which is not counted: most vehicles are inactive for most rules).
type episodeGauges [][numStates]prometheus.Gauge

// moved counts an episode of rule slot i moving from one state to another.
func (g episodeGauges) moved(i int, from, to State) {
	if m := g[i][from]; m != nil {
		m.Dec()
	}
	if m := g[i][to]; m != nil {
		m.Inc()
	}
}
