// Package ingest is muckwatch's Kafka input: the kafka-go consumer group that reads the input
// topics, decodes every record with the wire contract (package record), hands batches to a
// Handler, and commits their offsets only after the handler has durably written them.
package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/internal/secure"
	"github.com/muckwatch/muckwatch/record"
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
	// BatchMaxBytes closes a batch early once its records hold this many bytes (huge hostile
	// records must not pile up). Default 8 MiB.
	BatchMaxBytes int `yaml:"batch_max_bytes"`
	// BatchMaxWait is how long a batch waits to fill before it is handed downstream.
	BatchMaxWait time.Duration `yaml:"batch_max_wait"`
	// BatchesInFlight is how many batches may be handed downstream and not yet durably written:
	// the next batches are judged while the ones before are written. Default 64; the records in
	// flight are bounded too (RecordsInFlight).
	BatchesInFlight int `yaml:"batches_in_flight"`
	// FetchMaxWait is the longest a fetch waits at the broker for data.
	FetchMaxWait time.Duration `yaml:"fetch_max_wait"`
	// FetchMaxBytes is the most bytes one fetch returns.
	FetchMaxBytes int `yaml:"fetch_max_bytes"`
	// SessionTimeout: a member not heard from this long (a crashed instance) is dropped from the
	// group and its partitions move to the others. Default 30s; at least 6s (the brokers' usual
	// group.min.session.timeout.ms).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Decode bounds what a valid record is.
	Decode record.DecodeConfig `yaml:"decode"`
	// Security: SASL authentication and TLS (sasl: and tls: in the kafka section).
	Security secure.Kafka `yaml:",inline"`
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
		c.BatchMaxWait = 5 * time.Millisecond
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = 8 << 20
	}
	if c.BatchesInFlight == 0 {
		c.BatchesInFlight = 64
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
	case c.BatchMaxBytes < 1<<10:
		return fmt.Errorf("kafka.batch_max_bytes must be at least 1 KiB, got %d", c.BatchMaxBytes)
	case c.BatchesInFlight < 1 || c.BatchesInFlight > 256:
		return fmt.Errorf("kafka.batches_in_flight must be 1 to 256, got %d", c.BatchesInFlight)
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
	if err := c.Security.Validate("kafka"); err != nil {
		return err
	}
	return c.Decode.Validate()
}

// Batch is what the consumer hands downstream: the decoded records of a run of Kafka messages and
// the rejected ones. The consumer reuses a Batch once it is done (see Handler); a handler must
// not keep its slices after calling Done.
type Batch struct {
	Fixes    []record.Fix
	Events   []record.Event
	Officers []record.OfficerPosition
	Rejects  []record.Reject
	// Fetched is when the first message of the batch was fetched, for latency measurement.
	Fetched time.Time
	done    chan error // the handler's verdict, read by the consumer's committer
	lean    int        // consecutive Resets that found a large slice mostly unused
}

// Done reports that the batch is durably written (err nil), or cannot be. Only the first call
// counts.
func (b *Batch) Done(err error) {
	if b.done == nil {
		return // a batch the consumer did not hand out (a test's)
	}
	select {
	case b.done <- err:
	default:
	}
}

// Len is the number of records in the batch, rejects included.
func (b *Batch) Len() int { return len(b.Fixes) + len(b.Events) + len(b.Officers) + len(b.Rejects) }

// Reset empties the batch, keeping its capacity unless it has used little of a large one for
// shrinkAfter fills in a row (a batch of a backlog now filled by live traffic): what batches keep
// follows what they hold, and live traffic, whose batches vary in size (a few larger ones after
// every pause), does not drop and regrow them.
func (b *Batch) Reset() {
	if oversized(b.Fixes) || oversized(b.Events) || oversized(b.Officers) {
		b.lean++
	} else {
		b.lean = 0
	}
	drop := b.lean >= shrinkAfter
	if drop {
		b.lean = 0
	}
	b.Fixes = empty(b.Fixes, drop)
	b.Events = empty(b.Events, drop)
	b.Officers = empty(b.Officers, drop)
	for i := range b.Rejects {
		b.Rejects[i] = record.Reject{} // drop references to message bytes
	}
	b.Rejects = b.Rejects[:0]
	b.Fetched = time.Time{}
	select { // a verdict left unread when the drain timeout gave up on this batch
	case <-b.done:
	default:
	}
}

// shrinkAfter is how many fills in a row must leave a large slice of a batch mostly unused before
// Reset drops it.
const shrinkAfter = 8

// oversized reports whether s is large and less than a quarter used.
func oversized[T any](s []T) bool { return cap(s) > 1024 && len(s) < cap(s)/4 }

// empty empties s, keeping no references to the records' strings; drop lets an oversized s go.
func empty[T any](s []T, drop bool) []T {
	if drop && oversized(s) {
		return nil
	}
	clear(s)
	return s[:0]
}

// Handler is what the consumer needs downstream. Handle takes a batch in and may return before it
// is written (judging the next batch while this one is written); it calls b.Done once everything
// in the batch is durably written, or cannot be. The consumer commits a batch's offsets only
// once it and every batch handed in before it are done, and keeps at most
// ConsumerConfig.BatchesInFlight batches handed in and not done. An error, from Handle or Done,
// stops the consumer without committing, so the records are read again after a restart.
type Handler interface {
	Handle(ctx context.Context, b *Batch) error
}

// HandlerFunc adapts a function that returns once the batch is written to Handler.
type HandlerFunc func(ctx context.Context, b *Batch) error

// Handle calls f and, if it succeeded, b.Done.
func (f HandlerFunc) Handle(ctx context.Context, b *Batch) error {
	if err := f(ctx, b); err != nil {
		return err
	}
	b.Done(nil)
	return nil
}

// TopicPartition names one input partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String is "topic/partition".
func (tp TopicPartition) String() string { return tp.Topic + "/" + strconv.Itoa(int(tp.Partition)) }

// Rebalance is what changed for this instance when its consumer group entered a new generation.
type Rebalance struct {
	Generation int32
	// Owned are the partitions this instance reads in this generation.
	Owned []TopicPartition
	// Added are owned partitions that were not read by this instance in the generation before:
	// state kept per partition (detector state) must be restored for them, as another instance
	// may have moved them on since.
	Added []TopicPartition
	// Revoked are partitions read in the generation before that are no longer owned: their state
	// belongs to another instance now.
	Revoked []TopicPartition
	// CaughtUp are added partitions with nothing to read after their committed offset: no record
	// of theirs will come to say they are read, yet their vehicles' silence is real.
	CaughtUp []TopicPartition
}

// Rebalancer is implemented by a Handler that keeps state per partition. Rebalanced is called at
// the start of every generation, before any record of it is handled; an error stops the consumer.
type Rebalancer interface {
	Rebalanced(ctx context.Context, r Rebalance) error
}

// Idler is implemented by a Handler with time-driven decisions: Idle is called about once a
// second while no record arrives, so that decisions waiting for quiet partitions to stop holding
// back the event time are taken without new records. b is an empty batch, to be done like any
// other (what the decisions produced is written in order with the batches); its error stops the
// consumer.
type Idler interface {
	Idle(ctx context.Context, b *Batch) error
}

// Consumer reads the input topics as a member of a consumer group, decodes records into batches,
// hands them to a Handler, and commits their offsets after the handler succeeded.
//
// Membership is kafka-go's ConsumerGroup with a co-partitioning assignor: partition i of every input
// topic goes to the same instance (the topics are co-partitioned by vehicle). Each generation is
// read by one kafka-go reader per assigned partition; a generation ends (an instance joined or
// left) only once the batch in hand is handled and committed.
type Consumer struct {
	cfg    ConsumerConfig
	log    *slog.Logger
	group  kafka.ConsumerGroupConfig
	dialer *kafka.Dialer
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
	gc := kafka.ConsumerGroupConfig{
		ID:             cfg.GroupID,
		Brokers:        cfg.Brokers,
		Dialer:         dialer,
		Topics:         []string{cfg.Topics.GPS, cfg.Topics.Events, cfg.Topics.Officers},
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
		cfg:          cfg,
		log:          log,
		group:        gc,
		dialer:       dialer,
		normalize:    normalize,
		plates:       record.NewPlateNumbers(),
		metrics:      newConsumerMetrics(reg, cfg.Topics),
		now:          time.Now,
		lags:         make(map[TopicPartition]int64),
		DrainTimeout: 30 * time.Second,
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
			parts = append(parts, assignedPartition{tp, a.Offset})
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

// flight is one batch, from being filled until it is done and committed, with where it ends in
// each partition it read (not its messages: those are garbage once decoded).
type flight struct {
	b       Batch
	records int
	bytes   int // of its records' keys and values
	marks   []partitionMark
	handed  time.Time
}

// partitionMark is where a batch ends in one partition.
type partitionMark struct {
	tp   TopicPartition
	next int64 // the offset after the batch's last message of the partition: what to commit
	hwm  int64 // the partition's high watermark when that message was fetched (0: unknown)
}

// add appends a chunk's records to the flight's batch and moves its marks on.
func (f *flight) add(ch *chunk) {
	b := &f.b
	b.Fixes = append(b.Fixes, ch.b.Fixes...)
	b.Events = append(b.Events, ch.b.Events...)
	b.Officers = append(b.Officers, ch.b.Officers...)
	b.Rejects = append(b.Rejects, ch.b.Rejects...)
	f.records += ch.b.Len()
	f.bytes += ch.bytes
	for j := range f.marks {
		if pm := &f.marks[j]; pm.tp == ch.mark.tp {
			if ch.mark.next > pm.next {
				*pm = ch.mark
			}
			return
		}
	}
	f.marks = append(f.marks, ch.mark)
}

// chunk is a run of consecutive records of one partition, decoded by the partition's fetcher:
// decoding runs beside judging, and batches are filled a chunk at a time, not a record at a time.
type chunk struct {
	b       Batch // its decoded records; never handed downstream itself
	mark    partitionMark
	bytes   int       // keys and values
	fetched time.Time // when the fetch response holding its records arrived
}

// A chunk holds at most chunkRecords records (fewer when batches are smaller) and about
// batch_max_bytes/chunkBytesShare bytes, all from one fetch response: it is handed over when full
// or when the response's records are all decoded, never waiting for the next fetch.
const (
	chunkRecords    = 256
	chunkBytesShare = 16
)

func (ch *chunk) reset() {
	ch.b.Reset()
	ch.mark, ch.bytes, ch.fetched = partitionMark{}, 0, time.Time{}
}

// runGeneration reads the generation's partitions until ctx is cancelled (stopped) or the
// generation ends. The generation is held open until the batch in hand is handled and committed.
func (c *Consumer) runGeneration(ctx context.Context, gen *kafka.Generation, parts []assignedPartition, h Handler) (stopped bool, err error) {
	ended := make(chan struct{})
	finished := make(chan struct{})
	defer close(finished)
	gen.Start(func(gctx context.Context) {
		<-gctx.Done()
		close(ended)
		<-finished
	})
	fetchCtx, stopFetch := context.WithCancel(ctx)
	var fetchers sync.WaitGroup
	defer func() {
		stopFetch()
		fetchers.Wait()
	}()
	// Memory stays bounded by what is in flight, whatever the records' sizes: short per-partition
	// queues (fetchQueue), a short hand-off of chunks (each closed at chunkRecords or a share of
	// BatchMaxBytes), batches closed at BatchMaxBytes, at most BatchesInFlight batches handed
	// downstream and not done.
	chunks := make(chan *chunk, min(fetchQueue, max(4, 2*len(parts))))
	spareChunks := sync.Pool{New: func() any { return new(chunk) }}
	release := func(ch *chunk) {
		ch.reset()
		spareChunks.Put(ch)
	}
	for _, p := range parts {
		fetchers.Add(1)
		go func() {
			defer fetchers.Done()
			c.fetch(fetchCtx, p, len(parts), chunks, func() *chunk { return spareChunks.Get().(*chunk) })
		}()
	}

	// The batches handed in are worked on as long as it takes while running (a ClickHouse outage
	// is held through), and for at most DrainTimeout once stopping, even those begun before.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopDrain := context.AfterFunc(ctx, func() { time.AfterFunc(c.DrainTimeout, cancelWork) })
	defer stopDrain()

	// The free batches are a stack: the most recently done is filled next, so a backlog keeps
	// reusing the few batches its big runs need and the others stay small.
	var (
		freeMu sync.Mutex
		free   = make([]*flight, 0, c.cfg.BatchesInFlight)
	)
	for range c.cfg.BatchesInFlight {
		free = append(free, &flight{b: Batch{done: make(chan error, 1)}})
	}
	takeFree := func() *flight {
		freeMu.Lock()
		defer freeMu.Unlock()
		if n := len(free); n > 0 {
			f := free[n-1]
			free = free[:n-1]
			return f
		}
		return nil
	}
	handed := make(chan *flight, c.cfg.BatchesInFlight)
	// Records in flight are bounded too: a batch is started only while a full one still fits in
	// recordsInFlight, so big batches (a backlog) do not pile up as deep as small ones (live).
	// So are their bytes: huge records (a hostile flood) are held until announced, and decoding
	// beside judging lets the consumer run ahead of the announcer.
	var inFlight, bytesInFlight atomic.Int64
	budget := int64(recordsInFlight * c.cfg.BatchMaxRecords)
	bytesBudget := int64(bytesInFlightShare * c.cfg.BatchMaxBytes)
	freed := make(chan struct{}, 1)
	// The first failure, of handing a batch in or of writing one, ends the generation.
	var (
		failOnce sync.Once
		failure  error
		failed   = make(chan struct{}) // closed once failure is set
	)
	fail := func(err error) {
		failOnce.Do(func() {
			failure = err
			close(failed)
		})
	}
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		c.commitInOrder(workCtx, gen, handed, func(f *flight) {
			inFlight.Add(-int64(f.records))
			bytesInFlight.Add(-int64(f.bytes))
			freeMu.Lock()
			free = append(free, f)
			freeMu.Unlock()
			select {
			case freed <- struct{}{}:
			default:
			}
		}, fail)
	}()
	// drain waits until every batch handed in is done and committed, or given up.
	drain := func() {
		close(handed)
		<-committerDone
	}
	// give finishes the generation: a stop while a batch could not be finished is not an error
	// (its records are read again), a failure is.
	give := func(stopping bool) (bool, error) {
		drain()
		select {
		case <-failed:
			if ctx.Err() != nil {
				c.log.Warn("stopped before every batch in hand was written; their records will be read again", "err", failure)
				return true, nil
			}
			return false, failure
		default:
		}
		return stopping, nil
	}

	var carry *chunk // a chunk that did not fit in the batch before: it starts the next one
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	idler, _ := h.(Idler)
	for {
		// A batch to fill: at most BatchesInFlight are handed in and not done, and a full one
		// still fits in the records budget.
		var f *flight
		var held time.Time // since when the bounds have kept a batch from starting
		for {
			if inFlight.Load()+int64(c.cfg.BatchMaxRecords) <= budget && bytesInFlight.Load()+int64(c.cfg.BatchMaxBytes) <= bytesBudget {
				if f = takeFree(); f != nil {
					break
				}
			}
			if held.IsZero() {
				held = time.Now()
			}
			select {
			case <-freed:
			case <-ctx.Done():
				return give(true)
			case <-ended:
				return give(false)
			case <-failed:
				return give(false)
			}
		}
		if !held.IsZero() {
			c.metrics.heldSeconds.Add(time.Since(held).Seconds())
		}
		f.b.Reset()
		f.records, f.bytes, f.marks = 0, 0, f.marks[:0]
		// Wait for the first chunk of a batch.
		ch := carry
		carry = nil
	first:
		for ch == nil {
			select {
			case <-ctx.Done():
				return give(true)
			case <-ended:
				return give(false)
			case <-failed:
				return give(false)
			case <-idle.C:
				if idler == nil {
					continue
				}
				f.handed = c.now()
				if err := idler.Idle(workCtx, &f.b); err != nil {
					fail(fmt.Errorf("idle: %w", err))
					return give(false)
				}
				handed <- f
				f = nil
				break first
			case ch = <-chunks:
				idle.Reset(time.Second)
			}
		}
		if f == nil {
			continue // an idle tick was handed in
		}
		f.b.Fetched = ch.fetched
		f.add(ch)
		release(ch)
		timer.Reset(c.cfg.BatchMaxWait)
	fill:
		for f.records < c.cfg.BatchMaxRecords && f.bytes < c.cfg.BatchMaxBytes {
			select {
			case ch = <-chunks:
				if f.records+ch.b.Len() > c.cfg.BatchMaxRecords {
					carry = ch // the next batch's first
					break fill
				}
				f.add(ch)
				release(ch)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			case <-ended:
				break fill
			}
		}
		timer.Stop()
		stopping := ctx.Err() != nil
		c.metrics.batchRecords.Observe(float64(f.records))
		f.handed = c.now()
		inFlight.Add(int64(f.records))
		bytesInFlight.Add(int64(f.bytes))
		if err := h.Handle(workCtx, &f.b); err != nil {
			fail(fmt.Errorf("cannot handle a batch of %d records: %w", f.records, err))
			return give(false)
		}
		handed <- f
		if stopping {
			return give(true)
		}
	}
}

// commitInOrder waits for each batch handed in to be done, in order, and commits its offsets;
// then the batch may be filled again. After a failure (reported to fail) nothing more is
// committed: the records from there on are read again.
func (c *Consumer) commitInOrder(ctx context.Context, gen *kafka.Generation, handed <-chan *flight, free func(*flight), fail func(error)) {
	broken := false
	for f := range handed {
		var err error
		select {
		case err = <-f.b.done:
		case <-ctx.Done():
			err = fmt.Errorf("not written within the drain timeout (%s) after the stop: %w", c.DrainTimeout, ctx.Err())
		}
		if err != nil && !broken {
			broken = true
			fail(fmt.Errorf("cannot write a batch of %d records: %w", f.records, err))
		}
		if !broken {
			c.metrics.handleSeconds.Observe(c.now().Sub(f.handed).Seconds())
			if len(f.marks) > 0 {
				c.commit(ctx, gen, f)
			}
		}
		free(f)
	}
}

// commit commits the offsets after f, which is durably written. A commit that keeps failing (the
// broker down, the group rebalancing) only means the records are read again, and writing them
// again is idempotent.
func (c *Consumer) commit(ctx context.Context, gen *kafka.Generation, f *flight) {
	offsets := map[string]map[int]int64{}
	for _, pm := range f.marks {
		po := offsets[pm.tp.Topic]
		if po == nil {
			po = map[int]int64{}
			offsets[pm.tp.Topic] = po
		}
		po[int(pm.tp.Partition)] = pm.next
	}
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := gen.CommitOffsets(offsets)
		if err == nil {
			c.metrics.commits.Inc()
			break
		}
		c.metrics.commitErrors.Inc()
		if attempt == 5 || ctx.Err() != nil || generationOver(err) {
			c.log.Warn("cannot commit offsets; the batch's records will be read again (writes are idempotent)", "records", f.records, "err", err)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	c.lagMu.Lock()
	for _, pm := range f.marks {
		if pm.hwm > 0 {
			c.lags[pm.tp] = pm.hwm - pm.next
		}
	}
	for tp, l := range c.lags {
		c.metrics.lag.WithLabelValues(tp.Topic, strconv.Itoa(int(tp.Partition))).Set(float64(l))
	}
	c.lagMu.Unlock()
}

// recordsInFlight is how many full batches' worth of records may be handed downstream and not
// yet done.
const recordsInFlight = 8

// bytesInFlightShare is how many full batches' worth of bytes (batch_max_bytes) may be handed
// downstream and not yet done.
const bytesInFlightShare = 2

// RecordsInFlight is how many records may be handed downstream and not yet done: a batch is
// started only while a full one still fits.
func (c ConsumerConfig) RecordsInFlight() int {
	return recordsInFlight * c.WithDefaults().BatchMaxRecords
}

// fetchQueue is how many chunks wait in the hand-off to batching.
const fetchQueue = 32

// maxFetchBytes bounds one fetch of one partition (the broker still sends a record larger than
// that whole): a response is held until its records are decoded, so this is the memory a fetcher
// holds, and 1 MiB is 5,000 fixes, a round trip well spent.
const maxFetchBytes = 1 << 20

// fetch reads one partition from offset until ctx is cancelled, decodes its records into chunks
// (taken from spare) and sends them to chunks, retrying failed fetches (a broker restart, a lost
// connection) with back-off. Each partition has its own decoder, so decoding runs beside judging,
// and its own connection, so that a fetch waiting at the broker for new records (fetch_max_wait)
// does not hold another partition's back. It fetches with kafka-go's Client: a response's
// records are read from its buffers into two reused ones, where kafka.Reader allocated every
// record's key and value and handed each over a channel from a goroutine of its own (a sixth of
// the pipeline's CPU with the garbage it made).
func (c *Consumer) fetch(ctx context.Context, p assignedPartition, of int, chunks chan<- *chunk, spare func() *chunk) {
	tp := TopicPartition{p.Topic, p.Partition}
	transport, err := c.cfg.Security.Transport()
	if err != nil {
		c.log.Error("cannot connect to Kafka to fetch a partition", "topic", p.Topic, "partition", p.Partition, "err", err)
		return
	}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: transport}
	req := kafka.FetchRequest{Topic: p.Topic, Partition: int(p.Partition), Offset: p.offset, MinBytes: 1,
		MaxBytes: int64(max(64<<10, min(maxFetchBytes, c.cfg.FetchMaxBytes/of))), MaxWait: c.cfg.FetchMaxWait}
	dec := record.NewDecoder(c.cfg.Decode, c.normalize)
	dec.NumberPlates(c.plates)
	maxRecords := min(chunkRecords, c.cfg.BatchMaxRecords)
	maxBytes := max(1, c.cfg.BatchMaxBytes/chunkBytesShare)
	records := c.metrics.records(p.Topic)
	m := kafka.Message{Topic: p.Topic, Partition: int(p.Partition)} // the record at hand; its Key is reused
	var buf []byte                                                  // for the values of the records that can be accepted
	var ch *chunk
	// send hands the chunk at hand to batching.
	send := func() bool {
		records.Add(float64(ch.b.Len()))
		select {
		case chunks <- ch:
			ch = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	backoff := time.Second
	err = nil // the fetch that failed, waited out before the next
	for {
		if err != nil {
			c.metrics.fetchErrors.Inc()
			c.log.Warn("cannot fetch from Kafka; retrying", "topic", p.Topic, "partition", p.Partition, "offset", req.Offset, "retry_in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		if req.Offset < 0 { // kafka.FirstOffset or LastOffset: found once, not at every fetch
			if req.Offset, err = startOffset(ctx, client, tp, req.Offset); err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
		}
		var res *kafka.FetchResponse
		if res, err = client.Fetch(ctx, &req); err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if res.Error != nil {
			if errors.Is(res.Error, kafka.OffsetOutOfRange) {
				// Retention deleted the records before they were read, or the topic was made
				// anew: the partition is read from its first record left.
				c.log.Error("the offset to read from is no longer in Kafka (records deleted before they were read, or the topic recreated); reading from the first record left",
					"topic", p.Topic, "partition", p.Partition, "offset", req.Offset)
				req.Offset = kafka.FirstOffset
				continue
			}
			err = fmt.Errorf("fetch from offset %d: %w", req.Offset, res.Error)
			continue
		}
		backoff = time.Second
		fetched := c.now()
		for {
			rec, rerr := res.Records.ReadRecord()
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					err = fmt.Errorf("a record after offset %d: %w", req.Offset, rerr)
				}
				break
			}
			if rec.Offset < req.Offset { // a compressed batch begins before the offset asked for
				closeBytes(rec)
				continue
			}
			m.Offset, m.HighWaterMark, m.Time = rec.Offset, res.HighWatermark, rec.Time
			m.Key, rerr = readBytes(m.Key, rec.Key)
			// A value too large to be accepted is read into memory of its own, which its
			// dead-letter record then keeps: no copy of it, and no buffer grown to its size.
			tooLarge := rec.Value != nil && rec.Value.Len() > c.cfg.Decode.MaxRecordBytes
			switch {
			case rerr != nil:
			case tooLarge:
				m.Value, rerr = readBytes(nil, rec.Value)
			default:
				m.Value, rerr = readBytes(buf, rec.Value)
				buf = m.Value
			}
			closeBytes(rec)
			if rerr != nil {
				err = fmt.Errorf("record at offset %d: %w", rec.Offset, rerr)
				break
			}
			if ch == nil {
				ch = spare()
				ch.fetched, ch.mark.tp = fetched, tp
			}
			c.decode(dec, &m, &ch.b, tooLarge)
			ch.mark.next, ch.mark.hwm = m.Offset+1, m.HighWaterMark
			ch.bytes += len(m.Key) + len(m.Value)
			req.Offset = m.Offset + 1
			if (ch.b.Len() >= maxRecords || ch.bytes >= maxBytes) && !send() {
				return
			}
		}
		if ch != nil && !send() {
			return
		}
	}
}

// startOffset returns the offset at (kafka.FirstOffset or LastOffset) stands for in partition tp.
func startOffset(ctx context.Context, client *kafka.Client, tp TopicPartition, at int64) (int64, error) {
	r, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		tp.Topic: {{Partition: int(tp.Partition), Timestamp: at}}}})
	if err != nil {
		return at, fmt.Errorf("cannot look up where to start reading: %w", err)
	}
	for _, o := range r.Topics[tp.Topic] {
		switch {
		case o.Partition != int(tp.Partition):
		case o.Error != nil:
			return at, fmt.Errorf("cannot look up where to start reading: %w", o.Error)
		case at == kafka.FirstOffset:
			return o.FirstOffset, nil
		default:
			return o.LastOffset, nil
		}
	}
	return at, errors.New("cannot look up where to start reading: the broker did not answer for the partition")
}

// readBytes reads b into dst's memory (grown when too small); a null b is an empty slice.
func readBytes(dst []byte, b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return dst[:0], nil
	}
	n := b.Len()
	dst = slices.Grow(dst[:0], n)[:n]
	if _, err := io.ReadFull(b, dst); err != nil {
		return dst[:0], err
	}
	return dst, nil
}

// closeBytes gives a record's buffers back to kafka-go.
func closeBytes(r *kafka.Record) {
	if r.Key != nil {
		r.Key.Close()
	}
	if r.Value != nil {
		r.Value.Close()
	}
}

// generationOver tells a commit refused because the group has moved on: retrying cannot help,
// the records are read again by the partition's next owner.
func generationOver(err error) bool {
	return errors.Is(err, kafka.RebalanceInProgress) || errors.Is(err, kafka.IllegalGeneration) ||
		errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.ErrGenerationEnded)
}

// decode decodes m with dec into b, or adds it to b's rejects. m's key is the fetcher's buffer,
// copied when kept; so is its value, unless owned says the value's memory is m's own.
func (c *Consumer) decode(dec *record.Decoder, m *kafka.Message, b *Batch, owned bool) {
	ref := m.Time
	if ref.IsZero() {
		ref = c.now()
	}
	src := record.Source{Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, Behind: max(0, m.HighWaterMark-m.Offset-1)}
	var err error
	switch m.Topic {
	case c.cfg.Topics.GPS:
		b.Fixes = append(b.Fixes, record.Fix{})
		f := &b.Fixes[len(b.Fixes)-1]
		if err = dec.DecodeFix(m.Value, ref, f); err != nil {
			b.Fixes = b.Fixes[:len(b.Fixes)-1]
		} else {
			f.Src = src
		}
	case c.cfg.Topics.Events:
		b.Events = append(b.Events, record.Event{})
		e := &b.Events[len(b.Events)-1]
		if err = dec.DecodeEvent(m.Value, ref, e); err != nil {
			b.Events = b.Events[:len(b.Events)-1]
		} else {
			e.Src = src
		}
	case c.cfg.Topics.Officers:
		b.Officers = append(b.Officers, record.OfficerPosition{})
		o := &b.Officers[len(b.Officers)-1]
		if err = dec.DecodeOfficer(m.Value, ref, o); err != nil {
			b.Officers = b.Officers[:len(b.Officers)-1]
		} else {
			o.Src = src
		}
	default:
		err = &record.RejectError{Reason: record.ReasonUnknownTopic, Detail: fmt.Sprintf("topic %q is not one of the configured input topics", m.Topic)}
	}
	if err != nil {
		r := record.Reject{Src: src, Key: bytes.Clone(m.Key), Value: m.Value, Reason: record.ReasonOf(err), Detail: err.Error(), Received: c.now()}
		if !owned {
			r.Value = bytes.Clone(m.Value)
		}
		var re *record.RejectError
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
	heldSeconds   prometheus.Counter
	commits       prometheus.Counter
	commitErrors  prometheus.Counter
	fetchErrors   prometheus.Counter
	rebalances    prometheus.Counter
	assigned      prometheus.Gauge
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
