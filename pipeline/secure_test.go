package pipeline

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/muckwatch/muckwatch/internal/secure"
	"github.com/muckwatch/muckwatch/internal/secure/securetest"
	"github.com/muckwatch/muckwatch/internal/statetopic"
)

// The whole pipeline against a Kafka cluster that wants SCRAM-SHA-512 over TLS, with the
// password in the environment only: fixes are read and stored, the alert and the checkpoints are
// produced, and the password appears nowhere in the log.
func TestPipelineSASLAndTLS(t *testing.T) {
	cert := securetest.SelfSigned(t)
	const password = "scram-pw-only-in-env"
	base, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	topics := base.Topics()
	cluster, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(4, topics...),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "muckwatch", password),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	t.Setenv("MUCKWATCH_KAFKA_PASSWORD", password)
	sec := secure.Kafka{
		SASL: secure.SASL{Mechanism: "SCRAM-SHA-512", Username: "muckwatch", PasswordEnv: "MUCKWATCH_KAFKA_PASSWORD"},
		TLS:  secure.TLS{Enabled: true, CAFile: cert.CertFile},
	}
	var logs bytes.Buffer
	env := startEnvLog(t, func(c *Config) {
		c.Kafka.Brokers, c.Outputs.Brokers = []string{addr}, []string{addr}
		c.Kafka.Security, c.Outputs.Security = sec, sec
		c.API.Listen = ""
	}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	transport, err := sec.Transport()
	if err != nil {
		t.Fatal(err)
	}
	defer transport.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Transport: transport, Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond}
	now := time.Now()
	var msgs []kafka.Message
	for i := range 10 { // an unregistered truck far above any limit: alerts at once
		msgs = append(msgs, fixMsg(env.cfg.Kafka.Topics.GPS, "粤Z99999", now.Add(time.Duration(i-10)*10*time.Second), 22.57+float64(i)*0.004, 114.13, 95))
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	env.waitFor("the fixes stored", time.Minute, func() bool {
		return env.count("SELECT count() FROM positions WHERE vehicle_id = ?", "粤Z99999") >= 10
	})
	env.waitFor("an alert stored", time.Minute, func() bool {
		return env.count("SELECT count() FROM alerts WHERE vehicle_id = ?", "粤Z99999") > 0
	})
	dialer, err := sec.Dialer()
	if err != nil {
		t.Fatal(err)
	}
	readOver := func(topic string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := statetopic.Read(ctx, []string{addr}, topic, dialer, nil, func(_, v []byte) error { return nil })
		if err != nil || n == 0 {
			t.Errorf("%s over SASL and TLS: %d records, %v", topic, n, err)
		}
	}
	readOver(env.cfg.Outputs.AlertsTopic)
	// checkpoints are taken on an interval and when the pipeline stops: read after the stop, so
	// that the test does not depend on whether an interval has passed since the fixes
	if err := env.stop(); err != nil {
		t.Fatal(err)
	}
	readOver(env.cfg.Outputs.StateTopic)
	if strings.Contains(logs.String(), password) {
		t.Error("the Kafka password is in the log")
	}
	if !strings.Contains(logs.String(), "pipeline running") {
		t.Errorf("the log was not captured: %q", logs.String())
	}
}
