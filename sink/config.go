package sink

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/internal/secure"
)

// ClickHouseConfig configures the ClickHouse connection and writes. Call ApplyDefaults, then
// Validate; OpenClickHouse does both on its own copy.
type ClickHouseConfig struct {
	// Addr lists the servers' native-protocol addresses as host:port (9000, or 9440 with TLS).
	// Connections are spread over them; at least one is required.
	Addr []string `yaml:"addr"`
	// Database holds muckwatch's tables; it is created by Migrate. Default "muckwatch". Letters,
	// digits and underscores only, not starting with a digit.
	Database string `yaml:"database"`
	// Username to log in as. Default "default".
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable that holds the password, e.g.
	// MUCKWATCH_CLICKHOUSE_PASSWORD. Empty means no password. The password itself never goes into
	// a config file.
	PasswordEnv string `yaml:"password_env"`
	// TLS connects with TLS (the server's secure native port, usually 9440).
	TLS bool `yaml:"tls"`
	// CAFile is a PEM file of the certificate authorities to trust (empty: the system's);
	// CertFile and KeyFile a client certificate, for servers that ask for one; ServerName
	// overrides the name the server certificate is checked against. All need TLS.
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only; needs TLS.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// DialTimeout bounds connecting and logging in to one server. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// MaxOpenConns bounds the connections open at once. Default 4.
	MaxOpenConns int `yaml:"max_open_conns"`
	// Cluster names the ClickHouse cluster (in the servers' remote_servers) whose schema an
	// operator created once from `muckwatch migrate --cluster-ddl NAME`. Set, muckwatch does not
	// migrate the database (the pipeline never runs ON CLUSTER DDL itself): it checks that every
	// table is the Distributed table of that schema over this cluster and refuses to start
	// otherwise; and every insert is synchronous (insert_distributed_sync = 1), so a write is
	// acknowledged, and its Kafka offsets committed, only once its rows are on their shards.
	// Empty (the default): one server, migrated by muckwatch.
	Cluster string `yaml:"cluster"`
	// Compression compresses the native protocol with LZ4; worth it when ClickHouse is across a
	// network, not on the same machine. Default off.
	Compression bool `yaml:"compression"`
	// FlushInterval: the pipeline inserts at most this often, all the batches judged meanwhile
	// together (their alerts are announced at once regardless). Default 250ms; at most 10s.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

func (c *ClickHouseConfig) tlsSettings() secure.TLS {
	return secure.TLS{Enabled: c.TLS, CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
}

// Defaults of ClickHouseConfig.
const (
	DefaultDatabase      = "muckwatch"
	DefaultUsername      = "default"
	DefaultDialTimeout   = 10 * time.Second
	DefaultMaxOpenConns  = 4
	DefaultFlushInterval = 250 * time.Millisecond
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ApplyDefaults fills the fields left at their zero value with their defaults.
func (c *ClickHouseConfig) ApplyDefaults() {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Username == "" {
		c.Username = DefaultUsername
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxOpenConns == 0 {
		c.MaxOpenConns = DefaultMaxOpenConns
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
}

// Validate reports every invalid field of a config that had its defaults applied.
func (c *ClickHouseConfig) Validate() error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, errors.New("addr: at least one host:port is required"))
	}
	for _, a := range c.Addr {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("addr: %q is not host:port", a))
		}
	}
	if !identRE.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("database: %q must match %s", c.Database, identRE))
	}
	if c.Username == "" {
		errs = append(errs, errors.New("username: must not be empty"))
	}
	if c.PasswordEnv != "" && !identRE.MatchString(c.PasswordEnv) {
		errs = append(errs, fmt.Errorf("password_env: %q is not an environment variable name (it names the variable that holds the password, not the password)", c.PasswordEnv))
	}
	if err := c.tlsSettings().Validate("tls"); err != nil {
		errs = append(errs, fmt.Errorf("%w (ca_file, cert_file, key_file, server_name and insecure_skip_verify need tls: true)", err))
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("dial_timeout: %s must be positive", c.DialTimeout))
	}
	if c.MaxOpenConns < 1 {
		errs = append(errs, fmt.Errorf("max_open_conns: %d must be at least 1", c.MaxOpenConns))
	}
	if c.Cluster != "" && !identRE.MatchString(c.Cluster) {
		errs = append(errs, fmt.Errorf("cluster: %q must match %s (the cluster's name in remote_servers)", c.Cluster, identRE))
	}
	if c.FlushInterval < 0 || c.FlushInterval > 10*time.Second {
		errs = append(errs, fmt.Errorf("flush_interval: %s must be between 0 and 10s", c.FlushInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid clickhouse config: %w", err)
	}
	return nil
}

// KafkaOutputConfig configures the Kafka outputs: the alert feed and the dead-letter topic.
type KafkaOutputConfig struct {
	// Brokers lists bootstrap brokers as host:port; at least one is required.
	Brokers []string `yaml:"brokers"`
	// AlertsTopic receives one JSON message per alert change (EncodeChange), keyed by vehicle id.
	// Default "muck.alerts".
	AlertsTopic string `yaml:"alerts_topic"`
	// DLQTopic receives one JSON DeadLetterMessage per rejected record, keyed by the record's
	// original key, with a muckwatch-reason header. Default "muck.dlq".
	DLQTopic string `yaml:"dlq_topic"`
	// StateTopic receives the detectors' per-vehicle checkpoints, keyed by consumer group and
	// vehicle id ("GROUP/PLATE", so that each group restores only its own); it should be
	// compacted (cleanup.policy=compact) with as many partitions as the GPS topic, so that a
	// vehicle's state lives in the same partition number as its fixes. Default "muck.state".
	StateTopic string `yaml:"state_topic"`
	// LiveTopic receives, with api.view shared, each vehicle's newest position and risk and each
	// officer's newest position (api.LiveRecord), keyed "vehicle/PLATE" or "officer/ID"; every
	// instance reads it whole to answer for every vehicle. It should be compacted. Default
	// "muck.live".
	LiveTopic string `yaml:"live_topic"`
	// BatchTimeout is how long the producer waits to fill a batch before sending it. Default 1ms:
	// every write the pipeline makes is already a batch (a judged batch's alert changes, a write's
	// checkpoints), and an alert waits this long to be announced (kafka-go's own default of 1s
	// would delay every alert by up to a second).
	BatchTimeout time.Duration `yaml:"batch_timeout"`
	// RequiredAcks is "all" (default: every in-sync replica has the record) or "one" (the leader
	// has it). "none" is refused: the input offsets are committed after these writes return.
	RequiredAcks string `yaml:"required_acks"`
	// Security: SASL authentication and TLS (sasl: and tls:); when brokers is left out, the kafka
	// section's brokers and security are used.
	Security secure.Kafka `yaml:",inline"`
}

// Defaults of KafkaOutputConfig.
const (
	DefaultAlertsTopic  = "muck.alerts"
	DefaultDLQTopic     = "muck.dlq"
	DefaultStateTopic   = "muck.state"
	DefaultLiveTopic    = "muck.live"
	DefaultBatchTimeout = time.Millisecond
	DefaultRequiredAcks = "all"
)

// ApplyDefaults fills the fields left at their zero value with their defaults.
func (c *KafkaOutputConfig) ApplyDefaults() {
	if c.AlertsTopic == "" {
		c.AlertsTopic = DefaultAlertsTopic
	}
	if c.DLQTopic == "" {
		c.DLQTopic = DefaultDLQTopic
	}
	if c.StateTopic == "" {
		c.StateTopic = DefaultStateTopic
	}
	if c.LiveTopic == "" {
		c.LiveTopic = DefaultLiveTopic
	}
	if c.BatchTimeout == 0 {
		c.BatchTimeout = DefaultBatchTimeout
	}
	if c.RequiredAcks == "" {
		c.RequiredAcks = DefaultRequiredAcks
	}
}

// Validate reports every invalid field of a config that had its defaults applied.
func (c *KafkaOutputConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one host:port is required"))
	}
	for _, b := range c.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("brokers: %q is not host:port", b))
		}
	}
	for _, t := range []struct{ field, topic string }{{"alerts_topic", c.AlertsTopic}, {"dlq_topic", c.DLQTopic}, {"state_topic", c.StateTopic}} {
		if err := validTopic(t.topic); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.field, err))
		}
	}
	if c.AlertsTopic != "" && c.AlertsTopic == c.DLQTopic {
		errs = append(errs, fmt.Errorf("dlq_topic: %q must differ from alerts_topic", c.DLQTopic))
	}
	if c.StateTopic != "" && (c.StateTopic == c.AlertsTopic || c.StateTopic == c.DLQTopic) {
		errs = append(errs, fmt.Errorf("state_topic: %q must differ from alerts_topic and dlq_topic", c.StateTopic))
	}
	if c.LiveTopic != "" {
		if err := validTopic(c.LiveTopic); err != nil {
			errs = append(errs, fmt.Errorf("live_topic: %w", err))
		} else if c.LiveTopic == c.AlertsTopic || c.LiveTopic == c.DLQTopic || c.LiveTopic == c.StateTopic {
			errs = append(errs, fmt.Errorf("live_topic: %q must differ from alerts_topic, dlq_topic and state_topic", c.LiveTopic))
		}
	}
	if c.BatchTimeout <= 0 {
		errs = append(errs, fmt.Errorf("batch_timeout: %s must be positive", c.BatchTimeout))
	}
	if _, err := requiredAcks(c.RequiredAcks); err != nil {
		errs = append(errs, fmt.Errorf("required_acks: %w", err))
	}
	if err := c.Security.Validate("outputs"); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid kafka output config: %w", err)
	}
	return nil
}

// validTopic checks a Kafka topic name: 1–249 characters of [a-zA-Z0-9._-], not "." or "..".
func validTopic(t string) error {
	if t == "" || len(t) > 249 || t == "." || t == ".." {
		return fmt.Errorf("%q is not a valid topic name", t)
	}
	if i := strings.IndexFunc(t, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("%q is not a valid topic name: only letters, digits, '.', '_' and '-'", t)
	}
	return nil
}
