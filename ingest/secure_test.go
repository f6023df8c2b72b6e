package ingest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/muckwatch/muckwatch/internal/secure"
	"github.com/muckwatch/muckwatch/internal/secure/securetest"
)

// The consumer reads a cluster that wants SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) over TLS,
// with the password from the environment; wrong credentials stop it with an error naming the
// user, and the password appears in no error and no log line.
func TestConsumerSASLAndTLS(t *testing.T) {
	cert := securetest.SelfSigned(t)
	const password = "kafka-pw-from-env"
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(2, "muck.gps", "muck.events", "muck.officers"),
				kfake.EnableSASL(), kfake.Superuser(mech, "muckwatch", password),
				kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			addr := c.ListenAddrs()[0]
			t.Setenv("MUCKWATCH_TEST_KAFKA_PASSWORD", password)
			t.Setenv("MUCKWATCH_TEST_KAFKA_WRONG", "guess")
			sec := secure.Kafka{
				SASL: secure.SASL{Mechanism: mech, Username: "muckwatch", PasswordEnv: "MUCKWATCH_TEST_KAFKA_PASSWORD"},
				TLS:  secure.TLS{Enabled: true, CAFile: cert.CertFile},
			}
			transport, err := sec.Transport()
			if err != nil {
				t.Fatal(err)
			}
			w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "muck.gps", Transport: transport, BatchTimeout: time.Millisecond}
			now := time.Now().UnixMilli()
			var msgs []kafka.Message
			for i := range 20 {
				msgs = append(msgs, kafka.Message{Key: []byte("粤B00001"), Value: fmt.Appendf(nil,
					`{"vehicle_id":"粤B00001","ts":%d,"lat":22.5,"lon":114.0,"event_id":"s-%d"}`, now-int64(1000*(20-i)), i)})
			}
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				t.Fatal(err)
			}
			w.Close()
			transport.CloseIdleConnections()

			var logs bytes.Buffer
			consumer := func(s secure.Kafka) *Consumer {
				c, err := NewConsumer(ConsumerConfig{Brokers: []string{addr}, GroupID: "g", BatchMaxWait: 20 * time.Millisecond, Security: s},
					nil, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			ids, err := collect(t, consumer(sec), 20, nil)
			if err != nil || len(ids) != 20 {
				t.Fatalf("read %d of 20 fixes: %v", len(ids), err)
			}
			wrong := sec
			wrong.SASL.PasswordEnv = "MUCKWATCH_TEST_KAFKA_WRONG"
			_, err = collect(t, consumer(wrong), 1, nil)
			if err == nil || !strings.Contains(err.Error(), `user "muckwatch"`) {
				t.Errorf("wrong password: %v, want an error naming the user", err)
			}
			if err != nil && strings.Contains(err.Error(), password) || strings.Contains(logs.String(), password) {
				t.Error("the password leaked into an error or the log")
			}
		})
	}
}

// Settings that cannot work are refused before connecting, naming the field.
func TestSecurityValidate(t *testing.T) {
	for _, tc := range []struct {
		s    secure.Kafka
		want string
	}{
		{secure.Kafka{SASL: secure.SASL{Mechanism: "GSSAPI", Username: "u", PasswordEnv: "P"}}, "kafka.sasl.mechanism"},
		{secure.Kafka{SASL: secure.SASL{Mechanism: "PLAIN", PasswordEnv: "P"}}, "kafka.sasl.username"},
		{secure.Kafka{SASL: secure.SASL{Mechanism: "PLAIN", Username: "u", PasswordEnv: "hunter2!"}}, "kafka.sasl.password_env"},
		{secure.Kafka{SASL: secure.SASL{Username: "u"}}, "without a mechanism"},
		{secure.Kafka{TLS: secure.TLS{CAFile: "ca.pem"}}, "kafka.tls: settings given but enabled is false"},
		{secure.Kafka{TLS: secure.TLS{Enabled: true, CertFile: "c.pem"}}, "cert_file and key_file go together"},
	} {
		cfg := ConsumerConfig{Brokers: []string{"127.0.0.1:9092"}, Security: tc.s}.WithDefaults()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error with %q", tc.s, err, tc.want)
		}
	}
	unset := secure.Kafka{SASL: secure.SASL{Mechanism: "PLAIN", Username: "u", PasswordEnv: "MUCKWATCH_TEST_UNSET_PW"}}
	if _, err := unset.Dialer(); err == nil || !strings.Contains(err.Error(), "MUCKWATCH_TEST_UNSET_PW") {
		t.Errorf("unset password variable: %v", err)
	}
	missing := secure.Kafka{TLS: secure.TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}}
	if _, err := missing.Transport(); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("missing CA file: %v", err)
	}
}
