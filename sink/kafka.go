package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
)

// ReasonHeader is the header of dead-letter records that holds the reject reason.
const ReasonHeader = "muckwatch-reason"

// KafkaOutput produces alert changes to the alerts topic, rejects to the dead-letter topic and
// detector checkpoints to the state topic. It is safe for concurrent use.
//
// The checkpoints go through a producer and connections of their own: a write of thousands of
// them is a few large produce requests, and an alert change behind them on the same connection
// would wait for the broker to take them all.
type KafkaOutput struct {
	cfg        KafkaOutputConfig
	w, state   *kafka.Writer
	transports [2]*kafka.Transport
	log        *slog.Logger
	m          *kafkaMetrics
}

// NewKafkaOutput returns an output producing to cfg's brokers with kafka-go, with cfg's SASL and
// TLS settings; it connects on the first Write.
func NewKafkaOutput(cfg KafkaOutputConfig, log *slog.Logger, reg prometheus.Registerer) (*KafkaOutput, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	acks, _ := requiredAcks(cfg.RequiredAcks)
	o := &KafkaOutput{cfg: cfg, log: log, m: newKafkaMetrics(reg, cfg.AlertsTopic, cfg.DLQTopic)}
	for i := range o.transports {
		// Own transports, not kafka.DefaultTransport, so that Close closes their connections.
		t, err := cfg.Security.Transport()
		if err != nil {
			return nil, fmt.Errorf("cannot create the Kafka producer: %w", err)
		}
		o.transports[i] = t
	}
	writer := func(t *kafka.Transport, batchSize int) *kafka.Writer {
		return &kafka.Writer{
			Addr:                   kafka.TCP(cfg.Brokers...),
			Balancer:               &outputBalancer{stateTopic: cfg.StateTopic}, // one vehicle's records stay in order
			BatchTimeout:           cfg.BatchTimeout,
			BatchSize:              batchSize,
			RequiredAcks:           acks,
			AllowAutoTopicCreation: true,
			Transport:              t,
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
				log.Warn("kafka producer: " + fmt.Sprintf(msg, args...))
			}),
		}
	}
	// kafka-go makes room for BatchSize records in every batch it starts: alert changes and
	// rejects come a few at a time; a write's checkpoints (thousands) go in few produce requests,
	// bounded by BatchBytes (1 MiB, the brokers' usual message.max.bytes), not in hundreds of 100.
	o.w, o.state = writer(o.transports[0], 100), writer(o.transports[1], 5000)
	return o, nil
}

func requiredAcks(s string) (kafka.RequiredAcks, error) {
	switch s {
	case "all":
		return kafka.RequireAll, nil
	case "one":
		return kafka.RequireOne, nil
	}
	return 0, fmt.Errorf("%q must be \"all\" or \"one\"", s)
}

// Write produces one AlertMessage per change (key: vehicle id) and one DeadLetterMessage per
// reject (key: the original key; header muckwatch-reason), and returns when the broker
// acknowledged every record, or with the error of the records it did not.
func (o *KafkaOutput) Write(ctx context.Context, changes []detectors.Change, rejects []ingest.Reject) error {
	n := len(changes) + len(rejects)
	if n == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, n)
	for _, c := range changes {
		msgs = append(msgs, kafka.Message{
			Topic: o.cfg.AlertsTopic,
			Key:   []byte(c.Alert.VehicleID),
			Value: EncodeChange(c),
		})
	}
	for _, r := range rejects {
		msgs = append(msgs, kafka.Message{
			Topic:   o.cfg.DLQTopic,
			Key:     r.Key,
			Value:   EncodeReject(r),
			Headers: []kafka.Header{{Key: ReasonHeader, Value: []byte(r.Reason)}},
		})
	}
	err := o.w.WriteMessages(ctx, msgs...)
	if err == nil {
		o.count(len(changes), len(rejects), o.m.produced)
		return nil
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) && len(werrs) == len(msgs) {
		failed := map[string]int{}
		for i, e := range werrs {
			if e != nil {
				failed[msgs[i].Topic]++
			} else {
				o.m.produced.WithLabelValues(msgs[i].Topic).Inc()
			}
		}
		for topic, k := range failed {
			o.m.errors.WithLabelValues(topic).Add(float64(k))
		}
		return fmt.Errorf("cannot produce %d of %d records to Kafka: %w", werrs.Count(), n, err)
	}
	o.count(len(changes), len(rejects), o.m.errors)
	return fmt.Errorf("cannot produce %d records to Kafka: %w", n, err)
}

// WriteAlertJSON produces already-encoded records to the alerts topic (the API's handling and
// overdue changes), keyed by vehicle id, and returns when the broker acknowledged them.
func (o *KafkaOutput) WriteAlertJSON(ctx context.Context, keys, values [][]byte) error {
	return o.writeRaw(ctx, o.w, o.cfg.AlertsTopic, "alert changes", keys, values, nil)
}

// WriteState produces detector checkpoints (keyed by vehicle id) to the compacted state topic and
// returns when the broker acknowledged them. partitions[i] is the input partition of vehicle i's
// records: its checkpoint goes to the state partition of that number (modulo the state topic's
// partition count), where the instance that takes the input partition over finds it.
func (o *KafkaOutput) WriteState(ctx context.Context, keys, values [][]byte, partitions []int32) error {
	return o.writeRaw(ctx, o.state, o.cfg.StateTopic, "detector checkpoints", keys, values, partitions)
}

func (o *KafkaOutput) writeRaw(ctx context.Context, w *kafka.Writer, topic, what string, keys, values [][]byte, partitions []int32) error {
	if len(values) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(values))
	for i := range values {
		msgs[i] = kafka.Message{Topic: topic, Key: keys[i], Value: values[i]}
		if partitions != nil {
			msgs[i].Partition = int(partitions[i])
		}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		o.m.errors.WithLabelValues(topic).Add(float64(len(msgs)))
		return fmt.Errorf("cannot produce %d %s to Kafka topic %s: %w", len(msgs), what, topic, err)
	}
	o.m.produced.WithLabelValues(topic).Add(float64(len(msgs)))
	return nil
}

// outputBalancer places the detector checkpoints on the state partition numbered as their input
// partition, and every other record by the hash of its key (the vehicle).
type outputBalancer struct {
	stateTopic string
	hash       kafka.Hash
}

func (b *outputBalancer) Balance(msg kafka.Message, partitions ...int) int {
	if msg.Topic == b.stateTopic {
		return StatePartition(int32(msg.Partition), len(partitions))
	}
	return b.hash.Balance(msg, partitions...)
}

// StatePartition is the state topic partition holding the checkpoints of the vehicles read from
// input partition p, when the state topic has n partitions.
func StatePartition(p int32, n int) int {
	if n <= 0 {
		return 0
	}
	return int(p) % n
}

func (o *KafkaOutput) count(changes, rejects int, c *prometheus.CounterVec) {
	if changes > 0 {
		c.WithLabelValues(o.cfg.AlertsTopic).Add(float64(changes))
	}
	if rejects > 0 {
		c.WithLabelValues(o.cfg.DLQTopic).Add(float64(rejects))
	}
}

// Close flushes nothing (every Write is synchronous), stops the producers and closes their
// connections.
func (o *KafkaOutput) Close() error {
	err := errors.Join(o.w.Close(), o.state.Close())
	for _, t := range o.transports {
		t.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("cannot close the Kafka producer: %w", err)
	}
	return nil
}
