package detectors

import "github.com/prometheus/client_golang/prometheus"

// engineMetrics are the engine's metrics, registered with the Registerer it is created with.
type engineMetrics struct {
	alerts        *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	skippedEvents *prometheus.CounterVec
	tracked       prometheus.Gauge
}

func newEngineMetrics(reg prometheus.Registerer, rules []Rule) *engineMetrics {
	m := &engineMetrics{
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_alert_changes_total",
			Help: "Alert changes emitted, by rule, severity and change (opened, escalated, resolved)."}, []string{"rule", "severity", "change"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_detector_skipped_fixes_total",
			Help: "Fixes stored but not judged, by reason (out_of_order, jump)."}, []string{"reason"}),
		skippedEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_detector_skipped_events_total",
			Help: "Events stored but not judged, by reason (replayed: judged before a restart or rebalance)."}, []string{"reason"}),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_tracked_vehicles",
			Help: "Vehicles with detector state."}),
	}
	for _, r := range rules {
		m.alerts.WithLabelValues(string(r), string(SeverityWarning), string(ChangeOpened))
	}
	if reg != nil {
		reg.MustRegister(m.alerts, m.skipped, m.skippedEvents, m.tracked)
	}
	return m
}
