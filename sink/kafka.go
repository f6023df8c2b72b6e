package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/statetopic"
	"github.com/muckwatch/muckwatch/record"
)

// ReasonHeader is the header of dead-letter records that holds the reject reason.
const ReasonHeader = "muckwatch-reason"

// OriginHeader is the header of alert records that names the instance that made the change
// (SetOrigin): in a shared view that instance journals the change and hands it to the webhook.
const OriginHeader = "muckwatch-origin"

// KafkaOutput produces alert changes to the alerts topic, rejects to the dead-letter topic and
// detector checkpoints to the state topic. It is safe for concurrent use.
//
// The checkpoints go through a producer and connections of their own: a write of thousands of
// them is a few large produce requests, and an alert change behind them on the same connection
// would wait for the broker to take them all.
type KafkaOutput struct {
	cfg        KafkaOutputConfig
	w          *kafka.Writer
	state      *PartitionProducer
	rekeyed    map[string]*PartitionProducer // by re-keyed topic, made on first use (WriteMisrouted's goroutine only)
	transports [2]*kafka.Transport
	origin     []kafka.Header // the alert records' OriginHeader; nil: none
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
	o.w = &kafka.Writer{
		Addr:                   kafka.TCP(cfg.Brokers...),
		Balancer:               &kafka.Hash{}, // by vehicle: one vehicle's records stay in order
		BatchTimeout:           cfg.BatchTimeout,
		RequiredAcks:           acks,
		AllowAutoTopicCreation: true,
		Transport:              o.transports[0],
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			log.Warn("kafka producer: " + fmt.Sprintf(msg, args...))
		}),
	}
	o.state = NewPartitionProducer(&kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: o.transports[1]}, cfg.StateTopic, acks)
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

// Write produces one alert message (EncodeChange) per change (key: vehicle id) and one DeadLetterMessage per
// reject (key: the original key; header muckwatch-reason), and returns when the broker
// acknowledged every record, or with the error of the records it did not.
func (o *KafkaOutput) Write(ctx context.Context, changes []detectors.Change, rejects []record.Reject) error {
	n := len(changes) + len(rejects)
	if n == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, n)
	now := time.Now() // the records' time: when they were produced (a shared view's lag counts from it)
	for _, c := range changes {
		msgs = append(msgs, kafka.Message{
			Time:    now,
			Topic:   o.cfg.AlertsTopic,
			Key:     []byte(c.Alert.VehicleID),
			Value:   EncodeChange(c),
			Headers: o.origin,
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
	if len(values) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(values))
	now := time.Now()
	for i := range values {
		msgs[i] = kafka.Message{Time: now, Topic: o.cfg.AlertsTopic, Key: keys[i], Value: values[i], Headers: o.origin}
	}
	if err := o.w.WriteMessages(ctx, msgs...); err != nil {
		o.m.errors.WithLabelValues(o.cfg.AlertsTopic).Add(float64(len(msgs)))
		return fmt.Errorf("cannot produce %d alert changes to Kafka topic %s: %w", len(msgs), o.cfg.AlertsTopic, err)
	}
	o.m.produced.WithLabelValues(o.cfg.AlertsTopic).Add(float64(len(msgs)))
	return nil
}

// SetOrigin names the instance in the OriginHeader of every alert record produced from now on.
// Call it before the first write.
func (o *KafkaOutput) SetOrigin(instance string) {
	o.origin = []kafka.Header{{Key: OriginHeader, Value: []byte(instance)}}
}

// WriteLive produces live records (api.LiveRecord, already encoded) to the live topic, keyed
// "vehicle/PLATE" or "officer/ID", and returns when the broker acknowledged them.
func (o *KafkaOutput) WriteLive(ctx context.Context, keys, values [][]byte) error {
	if len(values) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(values))
	now := time.Now()
	for i := range values {
		msgs[i] = kafka.Message{Time: now, Topic: o.cfg.LiveTopic, Key: keys[i], Value: values[i]}
	}
	if err := o.w.WriteMessages(ctx, msgs...); err != nil {
		o.m.errors.WithLabelValues(o.cfg.LiveTopic).Add(float64(len(msgs)))
		return fmt.Errorf("cannot produce %d live records to Kafka topic %s: %w", len(msgs), o.cfg.LiveTopic, err)
	}
	o.m.produced.WithLabelValues(o.cfg.LiveTopic).Add(float64(len(msgs)))
	return nil
}

// WriteState produces detector checkpoints (keyed by vehicle id) to the compacted state topic and
// returns when the broker acknowledged them. partitions[i] is the input partition of vehicle i's
// records: its checkpoint goes to the state partition of that number (modulo the state topic's
// partition count), where the instance that takes the input partition over finds it.
func (o *KafkaOutput) WriteState(ctx context.Context, keys, values [][]byte, partitions []int32) error {
	if len(values) == 0 {
		return nil
	}
	if err := o.state.Write(ctx, keys, values, partitions); err != nil {
		o.m.errors.WithLabelValues(o.cfg.StateTopic).Add(float64(len(values)))
		return fmt.Errorf("cannot produce %d detector checkpoints to Kafka topic %s: %w", len(values), o.cfg.StateTopic, err)
	}
	o.m.produced.WithLabelValues(o.cfg.StateTopic).Add(float64(len(values)))
	return nil
}

// WriteMisrouted produces misrouted fixes and events as they came (key and value) to their
// topics' re-keyed topics (record.Rekeyed), each to the partition the contract's partitioner gives
// its key, and returns when the broker acknowledged them all. It is called by one goroutine.
func (o *KafkaOutput) WriteMisrouted(ctx context.Context, recs []record.Misrouted) error {
	if len(recs) == 0 {
		return nil
	}
	byTopic := map[string][]int{}
	for i := range recs {
		byTopic[recs[i].Src.Topic] = append(byTopic[recs[i].Src.Topic], i)
	}
	for topic, idx := range byTopic {
		dst := record.Rekeyed(topic)
		p := o.rekeyed[dst]
		if p == nil {
			if o.rekeyed == nil {
				o.rekeyed = map[string]*PartitionProducer{}
			}
			p = NewPartitionProducer(&kafka.Client{Addr: kafka.TCP(o.cfg.Brokers...), Transport: o.transports[1]}, dst, o.state.acks)
			o.rekeyed[dst] = p
		}
		keys, values, parts := make([][]byte, len(idx)), make([][]byte, len(idx)), make([]int32, len(idx))
		for j, i := range idx {
			keys[j], values[j], parts[j] = recs[i].Key, recs[i].Value, recs[i].Partition
		}
		if err := p.Write(ctx, keys, values, parts); err != nil {
			o.m.errors.WithLabelValues(dst).Add(float64(len(idx)))
			return fmt.Errorf("cannot re-key %d records of %s to %s: %w", len(idx), topic, dst, err)
		}
		o.m.produced.WithLabelValues(dst).Add(float64(len(idx)))
	}
	return nil
}

// PartitionProducer produces records straight to the partitions its caller chose, with kafka-go's
// Client: kafka.Writer copies every record into a batch it makes room for up front and looks the
// topic's partitions up for every write, where this needs one lookup a minute and one produce
// request per partition and half-megabyte, read from the caller's keys and values. The detector
// checkpoints go to their state partitions through one; the bench produces its traffic with one.
type PartitionProducer struct {
	client *kafka.Client
	topic  string
	acks   kafka.RequiredAcks

	mu         sync.Mutex
	partitions int       // of the topic
	looked     time.Time // when they were looked up
}

// maxRequestBytes bounds the records of one produce request, well under the brokers' usual
// message.max.bytes (1 MiB).
const maxRequestBytes = 512 << 10

// NewPartitionProducer returns a producer to topic through client.
func NewPartitionProducer(client *kafka.Client, topic string, acks kafka.RequiredAcks) *PartitionProducer {
	return &PartitionProducer{client: client, topic: topic, acks: acks}
}

// Write produces values[i] keyed by keys[i] to partition partitions[i] modulo the topic's
// partition count (statetopic.Partition), in order within each partition, the partitions in parallel,
// and returns once the broker acknowledged all of them.
func (s *PartitionProducer) Write(ctx context.Context, keys, values [][]byte, partitions []int32) error {
	n, err := s.count(ctx)
	if err != nil {
		return err
	}
	// The record indices by state partition, each partition's in order (a counting sort), cut
	// into requests of at most maxRequestBytes.
	start := make([]int, n+1)
	for _, p := range partitions {
		start[statetopic.Partition(p, n)+1]++
	}
	for p := range n {
		start[p+1] += start[p]
	}
	order, at := make([]int32, len(values)), slices.Clone(start[:n])
	for i, p := range partitions {
		sp := statetopic.Partition(p, n)
		order[at[sp]] = int32(i)
		at[sp]++
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for p := range n {
		idx := order[start[p]:start[p+1]]
		if len(idx) == 0 {
			continue
		}
		wg.Go(func() {
			for len(idx) > 0 {
				k, bytes := 0, 0
				for k < len(idx) && (k == 0 || bytes+len(keys[idx[k]])+len(values[idx[k]]) <= maxRequestBytes) {
					bytes += len(keys[idx[k]]) + len(values[idx[k]])
					k++
				}
				recs := &checkpointRecords{keys: keys, values: values, idx: idx[:k]}
				res, err := s.client.Produce(ctx, &kafka.ProduceRequest{Topic: s.topic, Partition: p, RequiredAcks: s.acks, Records: recs})
				switch {
				case err != nil:
				case res.Error != nil:
					err = res.Error
				case len(res.RecordErrors) > 0:
					for i, e := range res.RecordErrors { // one of them says enough
						err = fmt.Errorf("%d of %d records refused, record %d: %w", len(res.RecordErrors), k, i, e)
						break
					}
				}
				if err != nil {
					errs[p] = fmt.Errorf("partition %d: %w", p, err)
					return
				}
				idx = idx[k:]
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.mu.Lock()
		s.partitions = 0 // looked up again: the topic may have changed
		s.mu.Unlock()
		return err
	}
	return nil
}

// checkpointRecords hands kafka-go the records of one produce request, one at a time, straight
// from the checkpoints' keys and values: the encoder reads each record whole before asking for
// the next, so one Record and two readers serve them all.
type checkpointRecords struct {
	keys, values [][]byte
	idx          []int32
	rec          kafka.Record
	k, v         byteReader
}

func (r *checkpointRecords) ReadRecord() (*kafka.Record, error) {
	if len(r.idx) == 0 {
		return nil, io.EOF
	}
	i := r.idx[0]
	r.idx = r.idx[1:]
	r.k.b, r.v.b = r.keys[i], r.values[i]
	r.rec = kafka.Record{Key: &r.k, Value: &r.v}
	return &r.rec, nil
}

// byteReader is a kafka.Bytes, and an io.Reader, over a byte slice.
type byteReader struct{ b []byte }

func (r *byteReader) Len() int     { return len(r.b) }
func (r *byteReader) Close() error { return nil }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func (r *byteReader) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(r.b)
	r.b = r.b[n:]
	return int64(n), err
}

// count returns the number of partitions of the topic, looked up at most once a minute.
func (s *PartitionProducer) count(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.partitions > 0 && time.Since(s.looked) < time.Minute {
		return s.partitions, nil
	}
	// As kafka.Writer asks: a broker that creates topics on demand creates it.
	m, err := s.client.Transport.RoundTrip(ctx, s.client.Addr, &metadataAPI.Request{TopicNames: []string{s.topic}, AllowAutoTopicCreation: true})
	if err != nil {
		return 0, fmt.Errorf("cannot look up the partitions of Kafka topic %s: %w", s.topic, err)
	}
	for _, t := range m.(*metadataAPI.Response).Topics {
		if t.Name != s.topic {
			continue
		}
		if t.ErrorCode != 0 {
			return 0, fmt.Errorf("cannot look up the partitions of Kafka topic %s: %w", s.topic, kafka.Error(t.ErrorCode))
		}
		if len(t.Partitions) == 0 {
			break
		}
		s.partitions, s.looked = len(t.Partitions), time.Now()
		return s.partitions, nil
	}
	return 0, fmt.Errorf("Kafka topic %s has no partitions: create it (the state topic compacted, partitioned like the input)", s.topic)
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
	err := o.w.Close()
	for _, t := range o.transports {
		t.CloseIdleConnections()
	}
	if err != nil {
		return fmt.Errorf("cannot close the Kafka producer: %w", err)
	}
	return nil
}
