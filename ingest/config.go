package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/muckwatch/muckwatch/internal/secure"
	"github.com/muckwatch/muckwatch/record"
)

// ConsumerConfig configures the Kafka input.
type ConsumerConfig struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// GroupID is the consumer group; instances with the same group share the partitions.
	GroupID string `yaml:"group_id"`
	// Topics are the input topic names.
	Topics record.Topics `yaml:"topics"`
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
	// Partitioner is how the producers of the GPS and events topics choose a record's partition
	// from its key (the plate), as the wire contract says: fnv1a (default: kafka-go's Hash,
	// sarama), murmur2 (Java clients, kafkajs; librdkafka with partitioner=murmur2) or crc32
	// (librdkafka's default, consistent_random). Records found elsewhere are counted in
	// muckwatch_ingest_misrouted_total.
	Partitioner string `yaml:"partitioner"`
	// Rekey re-keys misrouted fixes and events (like Kafka Streams' repartition topics): each is
	// produced to TOPIC.rekeyed (which must exist with as many partitions as TOPIC) on the
	// partition the contract's partitioner gives its key, and judged from there, so that a truck's
	// state stays whole whatever partitioner its producers use. Default off.
	Rekey bool `yaml:"rekey"`
	// Decode bounds what a valid record is.
	Decode record.DecodeConfig `yaml:"decode"`
	// Security: SASL authentication and TLS (sasl: and tls: in the kafka section).
	Security secure.Kafka `yaml:",inline"`
}

// InputTopics lists the topics the consumer reads: the GPS, events and officers topics, and with
// rekey the GPS and events topics' re-keyed topics.
func (c ConsumerConfig) InputTopics() []string {
	t := []string{c.Topics.GPS, c.Topics.Events, c.Topics.Officers}
	if c.Rekey {
		t = append(t, record.Rekeyed(c.Topics.GPS), record.Rekeyed(c.Topics.Events))
	}
	return t
}

// WithDefaults returns c with zero fields set to their defaults.
func (c ConsumerConfig) WithDefaults() ConsumerConfig {
	if c.GroupID == "" {
		c.GroupID = "muckwatch"
	}
	if c.Topics.GPS == "" {
		c.Topics.GPS = "muck.gps"
	}
	if c.Partitioner == "" {
		c.Partitioner = "fnv1a"
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
	case c.Partitioner != "fnv1a" && c.Partitioner != "murmur2" && c.Partitioner != "crc32":
		return fmt.Errorf("kafka.partitioner must be fnv1a, murmur2 or crc32, got %q", c.Partitioner)
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

// recordsInFlight is how many full batches' worth of records may be handed downstream and not
// yet done. The writer starts a write once a quarter of that is judged (pipeline's fullRecords),
// so the consumer has three quarters to judge on while a write is under way: with half, a write
// of ~20,000 fixes outlasting the ~65 ms the consumer took to judge the other half held it back
// a fifth to a third of a backlog.
const recordsInFlight = 16

// bytesInFlightShare is how many full batches' worth of bytes (batch_max_bytes) may be handed
// downstream and not yet done.
const bytesInFlightShare = 2

// RecordsInFlight is how many records may be handed downstream and not yet done: a batch is
// started only while a full one still fits.
func (c ConsumerConfig) RecordsInFlight() int {
	return recordsInFlight * c.WithDefaults().BatchMaxRecords
}
