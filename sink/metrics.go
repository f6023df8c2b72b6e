package sink

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// chMetrics are one ClickHouse sink's metrics, labelled by table.
type chMetrics struct {
	rows      *prometheus.CounterVec
	batchRows *prometheus.HistogramVec
	seconds   *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	retries   *prometheus.CounterVec
	up        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *chMetrics {
	f := promauto.With(reg)
	m := &chMetrics{
		rows: f.NewCounterVec(prometheus.CounterOpts{
			Name: "muckwatch_clickhouse_rows_total",
			Help: "Rows that ClickHouse acknowledged, by table.",
		}, []string{"table"}),
		batchRows: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "muckwatch_clickhouse_batch_rows",
			Help:    "Rows per insert, by table.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10), // 1 … 262144
		}, []string{"table"}),
		seconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "muckwatch_clickhouse_insert_seconds",
			Help:    "Time of one successful insert attempt, from prepare to the server's acknowledgement, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1 ms … 8 s
		}, []string{"table"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "muckwatch_clickhouse_errors_total",
			Help: "Failed insert attempts, by table (each retry that fails counts).",
		}, []string{"table"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "muckwatch_clickhouse_retries_total",
			Help: "Insert attempts repeated after a transient error, by table.",
		}, []string{"table"}),
		up: f.NewGauge(prometheus.GaugeOpts{
			Name: "muckwatch_clickhouse_up",
			Help: "1 when the last ping or insert reached ClickHouse, 0 when it failed.",
		}),
	}
	for _, t := range insertTables() {
		m.rows.WithLabelValues(t)
		m.batchRows.WithLabelValues(t)
		m.seconds.WithLabelValues(t)
		m.errors.WithLabelValues(t)
		m.retries.WithLabelValues(t)
	}
	return m
}

// kafkaMetrics are one Kafka output's metrics, labelled by topic.
type kafkaMetrics struct {
	produced *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

func newKafkaMetrics(reg prometheus.Registerer, topics ...string) *kafkaMetrics {
	f := promauto.With(reg)
	m := &kafkaMetrics{
		produced: f.NewCounterVec(prometheus.CounterOpts{
			Name: "muckwatch_kafka_produced_total",
			Help: "Records the broker acknowledged, by topic.",
		}, []string{"topic"}),
		errors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "muckwatch_kafka_produce_errors_total",
			Help: "Records that could not be produced, by topic.",
		}, []string{"topic"}),
	}
	for _, t := range topics {
		m.produced.WithLabelValues(t)
		m.errors.WithLabelValues(t)
	}
	return m
}
