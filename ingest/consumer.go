package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Topics names the input topics.
type Topics struct {
	GPS      string `yaml:"gps"`
	Events   string `yaml:"events"`
	Officers string `yaml:"officers"`
}

// ConsumerConfig configures the Kafka input.
type ConsumerConfig struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group; instances with the same group share the partitions.
	GroupID string `yaml:"group_id"`
	// Topics are the input topic names.
	Topics Topics `yaml:"topics"`
	// StartOffset is where a new group starts: "first" (default) or "last".
	StartOffset string `yaml:"start_offset"`
	// BatchMaxRecords is the most records handed downstream at once.
	BatchMaxRecords int `yaml:"batch_max_records"`
	// BatchMaxWait is how long a batch waits to fill before it is handed downstream.
	BatchMaxWait time.Duration `yaml:"batch_max_wait"`
	// FetchMaxWait is the longest a fetch waits at the broker for data.
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// FetchMaxBytes is the most bytes one fetch returns.
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// SessionTimeout: a member not heard from this long (a crashed instance) is dropped from the
	// group and its partitions move to the others. Default 30s; at least 6s (the brokers' usual
	// group.min.session.timeout.ms).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Decode bounds what a valid record is.
	Decode DecodeConfig `yaml:"decode"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c ConsumerConfig) WithDefaults() ConsumerConfig {
	if c.GroupID == "" {
		c.GroupID = "muckwatch"
	}
	if c.Topics.GPS == "" {
		c.Topics.GPS = "muck.gps"
	}
	if c.Topics.Events == "" {
		c.Topics.Events = "muck.events"
	}
	if c.Topics.Officers == "" {
		c.Topics.Officers = "muck.officers"
	}
	if c.StartOffset == "" {
		c.StartOffset = "first"
	}
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = 5000
	}
	if c.BatchMaxWait == 0 {
		c.BatchMaxWait = 50 * time.Millisecond
	}
	if c.FetchMaxWait == 0 {
		c.FetchMaxWait = 1500 * time.Millisecond
	}
	if c.FetchMaxBytes == 0 {
		c.FetchMaxBytes = 16 << 20
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 30 * time.Second
	}
	c.Decode = c.Decode.WithDefaults()
	return c
}

// Validate reports the first invalid field.
func (c ConsumerConfig) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka.brokers: at least one broker is required")
	case c.GroupID == "":
		return errors.New("kafka.group_id must not be empty")
	case c.Topics.GPS == "" || c.Topics.Events == "" || c.Topics.Officers == "":
		return errors.New("kafka.topics: gps, events and officers must all be named")
	case c.Topics.GPS == c.Topics.Events || c.Topics.GPS == c.Topics.Officers || c.Topics.Events == c.Topics.Officers:
		return fmt.Errorf("kafka.topics: gps, events and officers must be different topics, got %q, %q, %q", c.Topics.GPS, c.Topics.Events, c.Topics.Officers)
	case c.StartOffset != "first" && c.StartOffset != "last":
		return fmt.Errorf("kafka.start_offset must be \"first\" or \"last\", got %q", c.StartOffset)
	case c.BatchMaxRecords < 1 || c.BatchMaxRecords > 1_000_000:
		return fmt.Errorf("kafka.batch_max_records must be within [1, 1000000], got %d", c.BatchMaxRecords)
	case c.BatchMaxWait <= 0:
		return fmt.Errorf("kafka.batch_max_wait must be positive, got %s", c.BatchMaxWait)
	case c.FetchMaxWait <= 0:
		return fmt.Errorf("kafka.fetch_max_wait must be positive, got %s", c.FetchMaxWait)
	case c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute:
		return fmt.Errorf("kafka.session_timeout must be within [6s, 5m], got %s", c.SessionTimeout)
	case c.FetchMaxBytes < 1<<10:
		return fmt.Errorf("kafka.fetch_max_bytes must be at least 1 KiB, got %d", c.FetchMaxBytes)
	}
	for i, b := range c.Brokers {
		if b == "" {
			return fmt.Errorf("kafka.brokers[%d] is empty", i)
		}
	}
	return c.Decode.Validate()
}

// Batch is what the consumer hands downstream: the decoded records of a run of Kafka messages and
// the rejected ones. The consumer reuses a Batch after the handler returns; a handler must not
// keep its slices.
type Batch struct {
	Fixes    []Fix
	Events   []Event
	Officers []OfficerPosition
	Rejects  []Reject
	// Fetched is when the first message of the batch was fetched, for latency measurement.
	Fetched time.Time
}

// Len is the number of records in the batch, rejects included.
func (b *Batch) Len() int { return len(b.Fixes) + len(b.Events) + len(b.Officers) + len(b.Rejects) }

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	b.Fixes = b.Fixes[:0]
	b.Events = b.Events[:0]
	b.Officers = b.Officers[:0]
	for i := range b.Rejects {
		b.Rejects[i] = Reject{} // drop references to message bytes
	}
	b.Rejects = b.Rejects[:0]
}

// Handler is what the consumer needs downstream. Handle returns nil only once everything in the
// batch is durably written; only then are the batch's offsets committed. An error stops the
// consumer without committing, so the records are read again after a restart.
type Handler interface {
	Handle(ctx context.Context, b *Batch) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, b *Batch) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, b *Batch) error { return f(ctx, b) }

type topicPartition struct {
	topic     string
	partition int
}

// Consumer reads the input topics as a member of a consumer group, decodes records into batches,
// hands them to a Handler, and commits their offsets after the handler succeeded.
type Consumer struct {
	cfg     ConsumerConfig
	log     *slog.Logger
	reader  *kafka.Reader
	dec     *Decoder
	metrics *consumerMetrics
	now     func() time.Time
	lagMu   sync.Mutex
	lags    map[topicPartition]int64
	// DrainTimeout bounds how long a stopping consumer spends handling and committing what it read.
	DrainTimeout time.Duration
}

// NewConsumer returns a consumer for cfg (defaults applied, then validated). normalize is the
// plate normaliser (see city.NormalizePlate). dialer may be nil (plain TCP).
func NewConsumer(cfg ConsumerConfig, normalize func(string) string, dialer *kafka.Dialer, log *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create the Kafka consumer: %w", err)
	}
	start := kafka.FirstOffset
	if cfg.StartOffset == "last" {
		start = kafka.LastOffset
	}
	rc := kafka.ReaderConfig{
		Brokers:        cfg.Brokers,
		GroupID:        cfg.GroupID,
		GroupTopics:    []string{cfg.Topics.GPS, cfg.Topics.Events, cfg.Topics.Officers},
		Dialer:         dialer,
		MinBytes:       1,
		MaxBytes:       cfg.FetchMaxBytes,
		MaxWait:        cfg.FetchMaxWait,
		QueueCapacity:  cfg.BatchMaxRecords,
		StartOffset:    start,
		CommitInterval: 0, // commits are explicit and synchronous, once per batch, after the handler succeeded
		// A silent terminal must not look like a dead consumer: the heartbeat is the reader's.
		HeartbeatInterval: 3 * time.Second,
		SessionTimeout:    cfg.SessionTimeout,
		RebalanceTimeout:  cfg.SessionTimeout,
		JoinGroupBackoff:  time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		Logger:            kafka.LoggerFunc(func(msg string, args ...any) { log.Debug(fmt.Sprintf(msg, args...), "component", "kafka-reader") }),
		ErrorLogger:       kafka.LoggerFunc(func(msg string, args ...any) { log.Warn(fmt.Sprintf(msg, args...), "component", "kafka-reader") }),
	}
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("cannot create the Kafka consumer: %w", err)
	}
	return &Consumer{
		cfg:          cfg,
		log:          log,
		reader:       kafka.NewReader(rc),
		dec:          NewDecoder(cfg.Decode, normalize),
		metrics:      newConsumerMetrics(reg, cfg.Topics),
		now:          time.Now,
		lags:         make(map[topicPartition]int64),
		DrainTimeout: 30 * time.Second,
	}, nil
}

// Run consumes until ctx is cancelled or the handler fails. On cancellation it hands what it has
// already read to the handler, commits it, and returns nil.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	defer c.reader.Close()
	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	msgs := make(chan kafka.Message, c.cfg.BatchMaxRecords)
	go func() {
		defer close(msgs)
		backoff := time.Second
		for {
			m, err := c.reader.FetchMessage(fetchCtx)
			if err != nil {
				if fetchCtx.Err() != nil {
					return
				}
				// A broker restart or a lost connection: keep trying, from the committed offsets
				// (nothing fetched and unhandled is committed), until the brokers are back.
				c.metrics.fetchErrors.Inc()
				c.log.Warn("cannot fetch from Kafka; retrying", "retry_in", backoff, "err", err)
				select {
				case <-fetchCtx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 30*time.Second)
				continue
			}
			backoff = time.Second
			select {
			case msgs <- m:
			case <-fetchCtx.Done():
				return
			}
		}
	}()

	var (
		batch   Batch
		pending = make([]kafka.Message, 0, c.cfg.BatchMaxRecords)
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	for {
		// Wait for the first message of a batch.
		m, ok := <-msgs
		if !ok { // stopped
			return nil
		}
		batch.Reset()
		batch.Fetched = c.now()
		pending = append(pending[:0], m)
		timer.Reset(c.cfg.BatchMaxWait)
	fill:
		for len(pending) < c.cfg.BatchMaxRecords {
			select {
			case m, ok = <-msgs:
				if !ok {
					break fill
				}
				pending = append(pending, m)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		stopping := ctx.Err() != nil
		if err := c.handle(ctx, h, &batch, pending); err != nil {
			return err
		}
		if stopping {
			return nil
		}
	}
}

// handle decodes pending into batch, hands it to h and commits. Once a batch is read it is
// finished even if ctx is cancelled meanwhile, within DrainTimeout.
func (c *Consumer) handle(ctx context.Context, h Handler, batch *Batch, pending []kafka.Message) error {
	for i := range pending {
		c.decode(&pending[i], batch)
	}
	c.metrics.batchRecords.Observe(float64(len(pending)))
	workCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.drainTimeout(ctx))
	defer cancel()
	start := c.now()
	if err := h.Handle(workCtx, batch); err != nil {
		return fmt.Errorf("cannot handle a batch of %d records: %w", len(pending), err)
	}
	c.metrics.handleSeconds.Observe(c.now().Sub(start).Seconds())
	// The batch is durably written: a commit that keeps failing (the broker down, the group
	// rebalancing) only means its records are read again, and writing them again is idempotent.
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := c.reader.CommitMessages(workCtx, pending...)
		if err == nil {
			c.metrics.commits.Inc()
			break
		}
		c.metrics.commitErrors.Inc()
		if attempt == 5 || workCtx.Err() != nil {
			c.log.Warn("cannot commit offsets; the batch's records will be read again (writes are idempotent)", "records", len(pending), "err", err)
			break
		}
		select {
		case <-workCtx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	c.lagMu.Lock()
	for i := range pending {
		m := &pending[i]
		if m.HighWaterMark > 0 {
			c.lags[topicPartition{m.Topic, m.Partition}] = m.HighWaterMark - m.Offset - 1
		}
	}
	for tp, l := range c.lags {
		c.metrics.lag.WithLabelValues(tp.topic, strconv.Itoa(tp.partition)).Set(float64(l))
	}
	c.lagMu.Unlock()
	return nil
}

// drainTimeout is unbounded while running (the handler retries a ClickHouse outage for as long as
// it lasts) and DrainTimeout once stopping.
func (c *Consumer) drainTimeout(ctx context.Context) time.Duration {
	if ctx.Err() != nil {
		return c.DrainTimeout
	}
	return 365 * 24 * time.Hour
}

func (c *Consumer) decode(m *kafka.Message, b *Batch) {
	ref := m.Time
	if ref.IsZero() {
		ref = c.now()
	}
	src := Source{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Behind: max(0, m.HighWaterMark-m.Offset-1)}
	var err error
	switch m.Topic {
	case c.cfg.Topics.GPS:
		b.Fixes = append(b.Fixes, Fix{})
		f := &b.Fixes[len(b.Fixes)-1]
		if err = c.dec.DecodeFix(m.Value, ref, f); err != nil {
			b.Fixes = b.Fixes[:len(b.Fixes)-1]
		} else {
			f.Src = src
		}
	case c.cfg.Topics.Events:
		b.Events = append(b.Events, Event{})
		e := &b.Events[len(b.Events)-1]
		if err = c.dec.DecodeEvent(m.Value, ref, e); err != nil {
			b.Events = b.Events[:len(b.Events)-1]
		} else {
			e.Src = src
		}
	case c.cfg.Topics.Officers:
		b.Officers = append(b.Officers, OfficerPosition{})
		o := &b.Officers[len(b.Officers)-1]
		if err = c.dec.DecodeOfficer(m.Value, ref, o); err != nil {
			b.Officers = b.Officers[:len(b.Officers)-1]
		} else {
			o.Src = src
		}
	default:
		err = reject(ReasonUnknownTopic, "topic %q is not one of the configured input topics", m.Topic)
	}
	c.metrics.records(m.Topic).Inc()
	if err != nil {
		r := Reject{Src: src, Key: m.Key, Value: m.Value, Reason: ReasonOf(err), Detail: err.Error(), Received: c.now()}
		var re *RejectError
		if errors.As(err, &re) {
			r.Detail = re.Detail
		}
		b.Rejects = append(b.Rejects, r)
		c.metrics.rejects.WithLabelValues(m.Topic, string(r.Reason)).Inc()
	}
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

type consumerMetrics struct {
	in            *prometheus.CounterVec
	inGPS, inEv   prometheus.Counter
	inOff         prometheus.Counter
	rejects       *prometheus.CounterVec
	lag           *prometheus.GaugeVec
	batchRecords  prometheus.Histogram
	handleSeconds prometheus.Histogram
	commits       prometheus.Counter
	commitErrors  prometheus.Counter
	fetchErrors   prometheus.Counter
	topics        Topics
}

func newConsumerMetrics(reg prometheus.Registerer, topics Topics) *consumerMetrics {
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
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_commits_total",
			Help: "Offset commits after a batch was durably written."}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_commit_errors_total",
			Help: "Offset commits that failed."}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "muckwatch_consumer_fetch_errors_total",
			Help: "Fetches from Kafka that failed and were retried (broker down, connection lost)."}),
		topics: topics,
	}
	m.inGPS = m.in.WithLabelValues(topics.GPS)
	m.inEv = m.in.WithLabelValues(topics.Events)
	m.inOff = m.in.WithLabelValues(topics.Officers)
	for _, t := range []string{topics.GPS, topics.Events, topics.Officers} {
		for _, r := range AllReasons() {
			m.rejects.WithLabelValues(t, string(r))
		}
	}
	if reg != nil {
		reg.MustRegister(m.in, m.rejects, m.lag, m.batchRecords, m.handleSeconds, m.commits, m.commitErrors, m.fetchErrors)
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
