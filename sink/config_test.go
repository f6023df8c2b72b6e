package sink

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestClickHouseConfigDefaults(t *testing.T) {
	var c ClickHouseConfig
	if err := yaml.Unmarshal([]byte(`
addr: [ch-1:9000, "ch-2:9000"]
password_env: MUCKWATCH_CLICKHOUSE_PASSWORD
dial_timeout: 3s
compression: true
`), &c); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := ClickHouseConfig{
		Addr: []string{"ch-1:9000", "ch-2:9000"}, Database: "muckwatch", Username: "default",
		PasswordEnv: "MUCKWATCH_CLICKHOUSE_PASSWORD", DialTimeout: 3 * time.Second, MaxOpenConns: 4,
		Compression: true,
	}
	if !equalCH(c, want) {
		t.Errorf("config = %+v\nwant %+v", c, want)
	}
}

func equalCH(a, b ClickHouseConfig) bool {
	return strings.Join(a.Addr, ",") == strings.Join(b.Addr, ",") && a.Database == b.Database &&
		a.Username == b.Username && a.PasswordEnv == b.PasswordEnv && a.TLS == b.TLS &&
		a.InsecureSkipVerify == b.InsecureSkipVerify && a.DialTimeout == b.DialTimeout &&
		a.MaxOpenConns == b.MaxOpenConns && a.Cluster == b.Cluster && a.Compression == b.Compression
}

func TestClickHouseConfigValidate(t *testing.T) {
	f := func(tune func(c *ClickHouseConfig), want string) {
		t.Helper()
		c := ClickHouseConfig{Addr: []string{"127.0.0.1:9000"}}
		tune(&c)
		c.ApplyDefaults()
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("Validate() = %v, want nil", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("Validate() = %v, want an error with %q", err, want)
		}
	}
	f(func(c *ClickHouseConfig) {}, "")
	f(func(c *ClickHouseConfig) { c.Database = "muck_2026" }, "")
	f(func(c *ClickHouseConfig) { c.TLS, c.InsecureSkipVerify = true, true }, "")
	f(func(c *ClickHouseConfig) { c.Addr = nil }, "addr: at least one")
	f(func(c *ClickHouseConfig) { c.Addr = []string{"clickhouse"} }, `addr: "clickhouse" is not host:port`)
	f(func(c *ClickHouseConfig) { c.Database = "muck-watch" }, "database:")
	f(func(c *ClickHouseConfig) { c.Database = "x; DROP DATABASE default" }, "database:")
	f(func(c *ClickHouseConfig) { c.Database = "2026" }, "database:")
	f(func(c *ClickHouseConfig) { c.PasswordEnv = "s3cret!" }, "password_env:")
	f(func(c *ClickHouseConfig) { c.InsecureSkipVerify = true }, "need tls: true")
	f(func(c *ClickHouseConfig) { c.MaxOpenConns = -1 }, "max_open_conns:")
	f(func(c *ClickHouseConfig) { c.Cluster = "muck" }, "")
	f(func(c *ClickHouseConfig) { c.Cluster = "muck fleet" }, "cluster:")
}

func TestKafkaOutputConfig(t *testing.T) {
	var c KafkaOutputConfig
	if err := yaml.Unmarshal([]byte("brokers: [kafka-1:9092]\nbatch_timeout: 2ms\n"), &c); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.AlertsTopic != "muck.alerts" || c.DLQTopic != "muck.dlq" || c.BatchTimeout != 2*time.Millisecond || c.RequiredAcks != "all" {
		t.Errorf("config = %+v", c)
	}
	f := func(tune func(c *KafkaOutputConfig), want string) {
		t.Helper()
		c := KafkaOutputConfig{Brokers: []string{"127.0.0.1:9092"}}
		tune(&c)
		c.ApplyDefaults()
		err := c.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("Validate() = %v, want nil", err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("Validate() = %v, want an error with %q", err, want)
		}
	}
	f(func(c *KafkaOutputConfig) {}, "")
	f(func(c *KafkaOutputConfig) { c.RequiredAcks = "one" }, "")
	f(func(c *KafkaOutputConfig) { c.RequiredAcks = "none" }, "required_acks:")
	f(func(c *KafkaOutputConfig) { c.Brokers = nil }, "brokers: at least one")
	f(func(c *KafkaOutputConfig) { c.Brokers = []string{"kafka"} }, "brokers:")
	f(func(c *KafkaOutputConfig) { c.AlertsTopic = "muck alerts" }, "alerts_topic:")
	f(func(c *KafkaOutputConfig) { c.DLQTopic = "muck.alerts" }, "must differ")
	f(func(c *KafkaOutputConfig) { c.BatchTimeout = -time.Second }, "batch_timeout:")
}
