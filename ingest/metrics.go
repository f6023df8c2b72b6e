package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/record"
)

type consumerMetrics struct {
	in            *prometheus.CounterVec
	inGPS, inEv   prometheus.Counter
	inOff         prometheus.Counter
	rejects       *prometheus.CounterVec
	lag           *prometheus.GaugeVec
	batchRecords  prometheus.Histogram
	handleSeconds prometheus.Histogram
	heldSeconds   prometheus.Counter
	commits       prometheus.Counter
	commitErrors  prometheus.Counter
	fetchErrors   prometheus.Counter
	rebalances    prometheus.Counter
	assigned      prometheus.Gauge
	topics        record.Topics
}

func newConsumerMetrics(reg prometheus.Registerer, topics record.Topics) *consumerMetrics {
	m := &consumerMetrics{
		in: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_ingest_records_total",
			Help: "Records read from Kafka, by topic (rejected ones included)."}, []string{"topic"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_ingest_rejects_total",
			Help: "Records rejected to the dead-letter topic, by topic and reason."}, []string{"topic", "reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "muckwatch_consumer_lag",
			Help: "Records behind the partition's high watermark after the last commit."}, []string{"topic", "partition"}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_ingest_batch_records",
			Help: "Records per batch handed downstream.", Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		handleSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_ingest_handle_seconds",
			Help: "Time to detect and durably write one batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		heldSeconds: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_held_seconds_total",
			Help: "Time the consumer waited to start a batch because the records in flight (handed downstream, not yet durably written) were at their bound: the writes holding reading back."}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_commits_total",
			Help: "Offset commits after a batch was durably written."}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_commit_errors_total",
			Help: "Offset commits that failed."}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_fetch_errors_total",
			Help: "Fetches from Kafka that failed and were retried (broker down, connection lost)."}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_generations_total",
			Help: "Consumer group generations this instance took part in (instances joining or leaving)."}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_consumer_assigned_partitions",
			Help: "Input partitions this instance reads in the current generation."}),
		topics: topics,
	}
	m.inGPS = m.in.WithLabelValues(topics.GPS)
	m.inEv = m.in.WithLabelValues(topics.Events)
	m.inOff = m.in.WithLabelValues(topics.Officers)
	for _, t := range []string{topics.GPS, topics.Events, topics.Officers} {
		for _, r := range record.AllReasons() {
			m.rejects.WithLabelValues(t, string(r))
		}
	}
	if reg != nil {
		reg.MustRegister(m.in, m.rejects, m.lag, m.batchRecords, m.handleSeconds, m.heldSeconds, m.commits, m.commitErrors, m.fetchErrors, m.rebalances, m.assigned)
	}
	return m
}

func (m *consumerMetrics) records(topic string) prometheus.Counter {
	switch topic {
	case m.topics.GPS:
		return m.inGPS
	case m.topics.Events:
		return m.inEv
	case m.topics.Officers:
		return m.inOff
	}
	return m.in.WithLabelValues(topic)
}
