// Package ingest is muckwatch's Kafka input: the kafka-go consumer group that reads the input
// topics, decodes every record with the wire contract (package record), hands batches to a
// Handler, and commits their offsets only after the handler has durably written them.
//
// The Consumer (consumer.go) joins the group and, for every generation of it, tells the handler
// which partitions moved and reads the generation (generation.go): a fetcher per partition
// (fetch.go) decodes its records into chunks (decode.go), the read loop fills batches with them
// and hands them to the Handler (handler.go), and the committer commits each batch's offsets, in
// order, once it is done (commit.go). Its settings are in config.go, its metrics in metrics.go.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/record"
)

// Consumer reads the input topics as a member of a consumer group, decodes records into batches,
// hands them to a Handler, and commits their offsets after the handler succeeded.
//
// Membership is kafka-go's ConsumerGroup with a co-partitioning assignor: partition i of every input
// topic goes to the same instance (the topics are co-partitioned by vehicle). Each generation is
// read by one fetcher per assigned partition; a generation ends (an instance joined or left) only
// once the batches in hand are handled and committed.
type Consumer struct {
	cfg ConsumerConfig
	// the re-keyed topics of the GPS and events topics, read as those are (empty without rekey)
	rekeyedGPS, rekeyedEvents string
	log                       *slog.Logger
	group                     kafka.ConsumerGroupConfig
	dialer                    *kafka.Dialer
	// normalize makes a plate canonical (each partition's fetcher has a decoder of its own)
	normalize func(string) string
	// plates numbers the plates for all the fetchers' decoders (record.Fix.VehicleNo)
	plates  *record.PlateNumbers
	metrics *consumerMetrics
	now     func() time.Time
	lagMu   sync.Mutex
	lags    map[TopicPartition]int64
	// DrainTimeout bounds how long a stopping consumer spends handling and committing what it read.
	DrainTimeout time.Duration
}

// NewConsumer returns a consumer for cfg (defaults applied, then validated). normalize is the
// plate normaliser (see city.NormalizePlate).
func NewConsumer(cfg ConsumerConfig, normalize func(string) string, log *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create the Kafka consumer: %w", err)
	}
	dialer, err := cfg.Security.Dialer()
	if err != nil {
		return nil, fmt.Errorf("cannot create the Kafka consumer: %w", err)
	}
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	start := kafka.FirstOffset
	if cfg.StartOffset == "last" {
		start = kafka.LastOffset
	}
	var rekeyedGPS, rekeyedEvents string
	if cfg.Rekey {
		rekeyedGPS, rekeyedEvents = record.Rekeyed(cfg.Topics.GPS), record.Rekeyed(cfg.Topics.Events)
	}
	gc := kafka.ConsumerGroupConfig{
		ID:             cfg.GroupID,
		Brokers:        cfg.Brokers,
		Dialer:         dialer,
		Topics:         cfg.InputTopics(),
		GroupBalancers: []kafka.GroupBalancer{coPartitioned{}},
		// A silent terminal must not look like a dead consumer: the heartbeat is the group's.
		HeartbeatInterval: 3 * time.Second,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.SessionTimeout,
		JoinGroupBackoff:  time.Second,
		StartOffset:       start,
		Logger:            kafka.LoggerFunc(func(msg string, args ...any) { log.Debug(fmt.Sprintf(msg, args...), "component", "kafka-group") }),
		ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { log.Warn(fmt.Sprintf(msg, args...), "component", "kafka-group") }),
	}
	if err := gc.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create the Kafka consumer: %w", err)
	}
	return &Consumer{
		cfg:           cfg,
		rekeyedGPS:    rekeyedGPS,
		rekeyedEvents: rekeyedEvents,
		log:           log,
		group:         gc,
		dialer:        dialer,
		normalize:     normalize,
		plates:        record.NewPlateNumbers(),
		metrics:       newConsumerMetrics(reg, cfg.Topics),
		now:           time.Now,
		lags:          make(map[TopicPartition]int64),
		DrainTimeout:  30 * time.Second,
	}, nil
}

// Run consumes until ctx is cancelled or the handler fails. On cancellation it hands what it has
// already read to the handler, commits it, leaves the group and returns nil.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	cg, err := kafka.NewConsumerGroup(c.group)
	if err != nil {
		return fmt.Errorf("cannot join consumer group %s: %w", c.cfg.GroupID, err)
	}
	defer cg.Close()
	var (
		owned   = map[TopicPartition]bool{}
		lastGen int32
	)
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, kafka.SASLAuthenticationFailed) {
				return fmt.Errorf("Kafka refused the credentials of user %q (%s): %w", c.cfg.Security.SASL.Username, c.cfg.Security.SASL.Mechanism, err)
			}
			// A broker restart or a lost connection: the group keeps trying to join, with back-off,
			// from the committed offsets (nothing fetched and unhandled is committed).
			if !errors.Is(err, kafka.RebalanceInProgress) {
				c.metrics.fetchErrors.Inc()
			}
			c.log.Warn("cannot join the consumer group yet; retrying", "group", c.cfg.GroupID, "err", err)
			continue
		}
		parts, rb := c.assignment(gen, owned, lastGen)
		rb.CaughtUp = c.caughtUp(ctx, parts, rb.Added)
		if err := c.countPartitions(ctx, parts); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		lastGen = gen.ID
		c.metrics.rebalances.Inc()
		c.metrics.assigned.Set(float64(len(parts)))
		c.log.Info("consumer group generation", "group", c.cfg.GroupID, "generation", gen.ID,
			"owned", partitionList(rb.Owned), "added", partitionList(rb.Added), "revoked", partitionList(rb.Revoked))
		c.lagMu.Lock()
		for _, tp := range rb.Revoked {
			delete(c.lags, tp)
			c.metrics.lag.DeleteLabelValues(tp.Topic, strconv.Itoa(int(tp.Partition)))
		}
		c.lagMu.Unlock()
		if r, ok := h.(Rebalancer); ok {
			if err := r.Rebalanced(ctx, rb); err != nil {
				if ctx.Err() != nil {
					return nil // stopped while taking partitions over: nothing of this generation was read
				}
				return fmt.Errorf("generation %d of group %s: %w", gen.ID, c.cfg.GroupID, err)
			}
		}
		stopped, err := c.runGeneration(ctx, gen, parts, h)
		if err != nil || stopped {
			return err
		}
	}
}

// assignment lists the partitions gen assigns to this instance with their start offsets, and what
// changed since the generation before (owned is updated). A generation that does not follow the
// last one (this member was dropped from the group meanwhile) counts every partition as added.
func (c *Consumer) assignment(gen *kafka.Generation, owned map[TopicPartition]bool, lastGen int32) ([]assignedPartition, Rebalance) {
	rb := Rebalance{Generation: gen.ID}
	var parts []assignedPartition
	now := map[TopicPartition]bool{}
	for topic, as := range gen.Assignments {
		for _, a := range as {
			tp := TopicPartition{topic, int32(a.ID)}
			now[tp] = true
			parts = append(parts, assignedPartition{TopicPartition: tp, offset: a.Offset})
			rb.Owned = append(rb.Owned, tp)
			if !owned[tp] || gen.ID != lastGen+1 {
				rb.Added = append(rb.Added, tp)
			}
		}
	}
	for tp := range owned {
		if !now[tp] {
			rb.Revoked = append(rb.Revoked, tp)
		}
		delete(owned, tp)
	}
	for tp := range now {
		owned[tp] = true
	}
	for _, l := range [][]TopicPartition{rb.Owned, rb.Added, rb.Revoked} {
		sortPartitions(l)
	}
	return parts, rb
}

// caughtUp lists the added partitions whose start offset is their end: nothing to read. A
// partition whose end cannot be read is left out (it is then judged read once a record comes).
func (c *Consumer) caughtUp(ctx context.Context, parts []assignedPartition, added []TopicPartition) []TopicPartition {
	isAdded := map[TopicPartition]bool{}
	for _, tp := range added {
		isAdded[tp] = true
	}
	var out []TopicPartition
	for _, p := range parts {
		if !isAdded[p.TopicPartition] {
			continue
		}
		first, last, err := c.partitionEnds(ctx, p.TopicPartition)
		if err != nil {
			c.log.Warn("cannot read a partition's offsets", "topic", p.Topic, "partition", p.Partition, "err", err)
			continue
		}
		if p.offset >= last || p.offset == kafka.LastOffset || (p.offset == kafka.FirstOffset && first == last) {
			out = append(out, p.TopicPartition)
		}
	}
	sortPartitions(out)
	return out
}

// countPartitions sets how many partitions the topics of parts have, for the check that each
// record of a truck's is where the contract's partitioner puts it (partitioner.go). A topic whose
// metadata cannot be read is not checked in this generation. With rekey, a re-keyed topic must
// have as many partitions as its topic: records re-keyed to it would be misrouted again.
func (c *Consumer) countPartitions(ctx context.Context, parts []assignedPartition) error {
	counts := map[string]int{}
	count := func(topic string) int {
		n, ok := counts[topic]
		if !ok {
			for _, b := range c.cfg.Brokers {
				if l, err := c.dialer.LookupPartitions(ctx, "tcp", b, topic); err == nil {
					n = len(l)
					break
				}
			}
			counts[topic] = n
		}
		return n
	}
	for i := range parts {
		topic := parts[i].Topic
		if topic != c.cfg.Topics.GPS && topic != c.cfg.Topics.Events {
			continue // officers are keyed by officer, re-keyed records are where they belong
		}
		parts[i].of = count(topic)
		if c.cfg.Rekey && parts[i].of > 0 {
			if r := count(record.Rekeyed(topic)); r != parts[i].of {
				return fmt.Errorf("kafka.rekey: topic %s has %d partitions where %s has %d: create it with %d",
					record.Rekeyed(topic), r, topic, parts[i].of, parts[i].of)
			}
		}
	}
	return nil
}

// partitionEnds reads a partition's first and end offsets from its leader.
func (c *Consumer) partitionEnds(ctx context.Context, tp TopicPartition) (int64, int64, error) {
	var err error
	for _, b := range c.cfg.Brokers {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var conn *kafka.Conn
		conn, err = c.dialer.DialLeader(dctx, "tcp", b, tp.Topic, int(tp.Partition))
		cancel()
		if err != nil {
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		first, last, rerr := conn.ReadOffsets()
		conn.Close()
		return first, last, rerr
	}
	return 0, 0, err
}

type assignedPartition struct {
	TopicPartition
	offset int64 // where to start: the committed offset, or kafka.FirstOffset / LastOffset
	of     int   // how many partitions its topic has (0: unknown), for the partitioner check
}

// partitionList is l for a log line: "muck.gps/0,muck.gps/1".
func partitionList(l []TopicPartition) string {
	var b strings.Builder
	for i, tp := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tp.String())
	}
	return b.String()
}

func sortPartitions(l []TopicPartition) {
	slices.SortFunc(l, func(a, b TopicPartition) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
}

// Lag returns the consumer lag summed over the partitions this consumer has read, as of the last
// commit.
func (c *Consumer) Lag() int64 {
	c.lagMu.Lock()
	defer c.lagMu.Unlock()
	var sum int64
	for _, l := range c.lags {
		sum += l
	}
	return sum
}
