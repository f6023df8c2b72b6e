package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/configs"
	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/internal/secure"
	"github.com/muckwatch/muckwatch/sink"
)

// Config is the whole of muckwatch.yaml. It is parsed and validated once at start; nothing reads
// raw config at run time.
type Config struct {
	City               string                 `yaml:"city"`
	CityReloadInterval time.Duration          `yaml:"city_reload_interval"`
	Kafka              ingest.ConsumerConfig  `yaml:"kafka"`
	Outputs            sink.KafkaOutputConfig `yaml:"outputs"`
	ClickHouse         sink.ClickHouseConfig  `yaml:"clickhouse"`
	Pipeline           StagesConfig           `yaml:"pipeline"`
	Runtime            RuntimeConfig          `yaml:"runtime"`
	Detectors          detectors.Config       `yaml:"detectors"`
	API                api.Config             `yaml:"api"`
	Metrics            MetricsConfig          `yaml:"metrics"`
	Log                LogConfig              `yaml:"log"`
}

// StagesConfig configures the pipeline between the consumer and the sinks: event time, and the
// retries while a sink fails (the only layer that retries a write).
type StagesConfig struct {
	// IdlePartition: an input partition read to its end that has delivered nothing for this long
	// (wall time) no longer holds event time back; once all are so, event time moves on with the
	// wall clock, this far behind. Default 5s.
	IdlePartition time.Duration `yaml:"idle_partition"`
	// RetryBackoff and MaxRetryBackoff: the first and the longest wait between attempts to write
	// a batch, or to read the checkpoints of partitions taken over, while a sink fails. It retries
	// for as long as that lasts, its offsets uncommitted meanwhile. Defaults 200ms and 10s.
	RetryBackoff    time.Duration `yaml:"retry_backoff"`
	MaxRetryBackoff time.Duration `yaml:"max_retry_backoff"`
	// CheckpointInterval: how often the detector state of the vehicles touched since the last
	// checkpoint is produced to the state topic; the input offsets are committed only with the
	// checkpoint that covers them, so a crash reads again (and the idempotent writes absorb) at
	// most this much input, plus the one write the checkpoint rides with. Default 5s.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
}

func (c StagesConfig) withDefaults() StagesConfig {
	if c.IdlePartition == 0 {
		c.IdlePartition = 5 * time.Second
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 200 * time.Millisecond
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = 10 * time.Second
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = 5 * time.Second
	}
	return c
}

func (c StagesConfig) validate() error {
	if c.IdlePartition < 0 {
		return fmt.Errorf("pipeline.idle_partition must not be negative, got %s", c.IdlePartition)
	}
	if c.RetryBackoff < 0 || c.MaxRetryBackoff < c.RetryBackoff {
		return fmt.Errorf("pipeline.retry_backoff (%s) and pipeline.max_retry_backoff (%s) must be positive, the longest at least the first", c.RetryBackoff, c.MaxRetryBackoff)
	}
	if c.CheckpointInterval < 0 {
		return fmt.Errorf("pipeline.checkpoint_interval must not be negative, got %s", c.CheckpointInterval)
	}
	return nil
}

// MetricsConfig configures the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is the address of the HTTP server serving /metrics (default 127.0.0.1:9464); "off"
	// disables it.
	Listen string `yaml:"listen"`
	// HealthzStall: /healthz (liveness) fails once the consumer has handled no batch and no idle
	// tick for this long while nothing explains it (starting, restoring detector state, holding
	// back for a failing sink). Default 2m.
	HealthzStall time.Duration `yaml:"healthz_stall"`
	// ReadyzHolding: /readyz (readiness) fails once the pipeline has held back for a failing sink
	// for this long. Default 30s.
	ReadyzHolding time.Duration `yaml:"readyz_holding"`
}

func (c MetricsConfig) withDefaults() MetricsConfig {
	if c.HealthzStall == 0 {
		c.HealthzStall = 2 * time.Minute
	}
	if c.ReadyzHolding == 0 {
		c.ReadyzHolding = 30 * time.Second
	}
	return c
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// LoadConfig reads the config at path, or the embedded default config when path is empty.
// Unknown fields are errors, so a typo does not silently fall back to a default.
func LoadConfig(path string) (Config, error) {
	var data []byte
	var err error
	if path == "" {
		data, err = configs.FS.ReadFile(configs.DefaultConfig)
		path = "(embedded) configs/" + configs.DefaultConfig
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return Config{}, fmt.Errorf("cannot read config: %w", err)
	}
	return ParseConfig(path, data)
}

func ParseConfig(path string, data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) { // an empty file is an empty config
		return Config{}, fmt.Errorf("cannot parse config %s: %w", path, err)
	}
	c.applyDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("invalid config %s: %w", path, err)
	}
	return c, nil
}

func (c *Config) applyDefaults() {
	if c.City == "" {
		c.City = "configs/cities/shenzhen"
	}
	if len(c.Kafka.Brokers) == 0 {
		c.Kafka.Brokers = []string{"127.0.0.1:9092"}
	}
	c.Kafka = c.Kafka.WithDefaults()
	if len(c.Outputs.Brokers) == 0 { // the same cluster, reached the same way
		c.Outputs.Brokers = c.Kafka.Brokers
		if c.Outputs.Security == (secure.Kafka{}) {
			c.Outputs.Security = c.Kafka.Security
		}
	}
	c.Outputs.ApplyDefaults()
	if len(c.ClickHouse.Addr) == 0 {
		c.ClickHouse.Addr = []string{"127.0.0.1:9000"}
	}
	c.ClickHouse.ApplyDefaults()
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = "127.0.0.1:9464"
	}
	if c.Metrics.Listen == "off" {
		c.Metrics.Listen = ""
	}
	c.Metrics = c.Metrics.withDefaults()
	c.Pipeline = c.Pipeline.withDefaults()
	c.Runtime = c.Runtime.withDefaults()
	c.Detectors = c.Detectors.WithDefaults()
	c.API = c.API.WithDefaults()
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// Validate reports the first invalid section.
func (c *Config) Validate() error {
	if c.CityReloadInterval < 0 {
		return fmt.Errorf("city_reload_interval must not be negative, got %s", c.CityReloadInterval)
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if err := c.Outputs.Validate(); err != nil {
		return fmt.Errorf("outputs: %w", err)
	}
	for _, t := range []string{c.Outputs.AlertsTopic, c.Outputs.DLQTopic, c.Outputs.StateTopic} {
		if t == c.Kafka.Topics.GPS || t == c.Kafka.Topics.Events || t == c.Kafka.Topics.Officers {
			return fmt.Errorf("outputs: topic %q is also an input topic", t)
		}
	}
	if err := c.ClickHouse.Validate(); err != nil {
		return fmt.Errorf("clickhouse: %w", err)
	}
	if err := c.Pipeline.validate(); err != nil {
		return err
	}
	if err := c.Runtime.validate(); err != nil {
		return err
	}
	if err := c.Detectors.Validate(); err != nil {
		return err
	}
	if err := c.API.Validate(); err != nil {
		return err
	}
	if c.Metrics.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %q is not host:port", c.Metrics.Listen)
		}
	}
	if c.Metrics.HealthzStall < 0 || c.Metrics.ReadyzHolding < 0 {
		return fmt.Errorf("metrics.healthz_stall (%s) and metrics.readyz_holding (%s) must not be negative", c.Metrics.HealthzStall, c.Metrics.ReadyzHolding)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return err
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format must be text or json, got %q", c.Log.Format)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("log.level must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func NewLogger(c LogConfig) *slog.Logger {
	level, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// Topics lists every topic the configuration names: the inputs and the outputs (the live topic
// with api.view shared only).
func (c Config) Topics() []string {
	t := append(c.Kafka.InputTopics(), c.Outputs.AlertsTopic, c.Outputs.DLQTopic, c.Outputs.StateTopic)
	if c.API.View == api.ViewShared {
		t = append(t, c.Outputs.LiveTopic)
	}
	return t
}
