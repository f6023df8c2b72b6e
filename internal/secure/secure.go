// Package secure turns the TLS and SASL settings of the configuration into what the Kafka and
// ClickHouse clients take. Secrets are never in the configuration: a password is read from the
// environment variable the configuration names, when the connection is set up.
package secure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// TLS configures an encrypted connection.
type TLS struct {
	// Enabled turns TLS on.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the certificate authorities to trust; empty: the system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate and its key (PEM), for servers that ask for one.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server's certificate is checked against.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate reports settings that cannot work; field prefixes the messages (e.g. "kafka.tls").
func (t TLS) Validate(field string) error {
	var errs []error
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		errs = append(errs, fmt.Errorf("%s: settings given but enabled is false", field))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s: cert_file and key_file go together", field))
	}
	return errors.Join(errs...)
}

// Config returns the crypto/tls configuration, or nil when TLS is off. Files are read now.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented as for tests
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load the client certificate %s: %w", t.CertFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// SASL configures Kafka authentication.
type SASL struct {
	// Mechanism is "" (none), "PLAIN", "SCRAM-SHA-256" or "SCRAM-SHA-512".
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// PasswordEnv names the environment variable holding the password, e.g.
	// MUCKWATCH_KAFKA_PASSWORD.
	PasswordEnv string `yaml:"password_env"`
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports settings that cannot work; field prefixes the messages (e.g. "kafka.sasl").
func (s SASL) Validate(field string) error {
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.PasswordEnv != "" {
			return fmt.Errorf("%s: username or password_env given without a mechanism", field)
		}
		return nil
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("%s.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", field, s.Mechanism)
	}
	if s.Username == "" {
		return fmt.Errorf("%s.username: required with mechanism %s", field, s.Mechanism)
	}
	if !envName.MatchString(s.PasswordEnv) {
		return fmt.Errorf("%s.password_env: %q is not an environment variable name (it names the variable that holds the password, not the password)", field, s.PasswordEnv)
	}
	return nil
}

// Mechanism returns the kafka-go SASL mechanism, with the password read from the environment, or
// nil when SASL is off.
func (s SASL) mechanism() (sasl.Mechanism, error) {
	if s.Mechanism == "" {
		return nil, nil
	}
	pass, ok := os.LookupEnv(s.PasswordEnv)
	if !ok || pass == "" {
		return nil, fmt.Errorf("the Kafka password of user %q is not set: environment variable %s is empty", s.Username, s.PasswordEnv)
	}
	switch s.Mechanism {
	case "PLAIN":
		return plain.Mechanism{Username: s.Username, Password: pass}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, s.Username, pass)
	default:
		return scram.Mechanism(scram.SHA512, s.Username, pass)
	}
}

// Kafka is how muckwatch connects to Kafka: SASL authentication and TLS.
type Kafka struct {
	SASL SASL `yaml:"sasl"`
	TLS  TLS  `yaml:"tls"`
}

// Validate reports settings that cannot work; field prefixes the messages (e.g. "kafka").
func (k Kafka) Validate(field string) error {
	return errors.Join(k.SASL.Validate(field+".sasl"), k.TLS.Validate(field+".tls"))
}

// Dialer returns the dialer for kafka-go readers, consumer groups and connections; nil when
// neither SASL nor TLS is configured (kafka-go's default dialer).
func (k Kafka) Dialer() (*kafka.Dialer, error) {
	mech, tc, err := k.parts()
	if err != nil || (mech == nil && tc == nil) {
		return nil, err
	}
	return &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true, ClientID: "muckwatch", SASLMechanism: mech, TLS: tc}, nil
}

// Transport returns the transport for kafka-go writers (a new one, which the caller closes).
func (k Kafka) Transport() (*kafka.Transport, error) {
	mech, tc, err := k.parts()
	if err != nil {
		return nil, err
	}
	return &kafka.Transport{ClientID: "muckwatch", IdleTimeout: 30 * time.Second, SASL: mech, TLS: tc}, nil
}

func (k Kafka) parts() (sasl.Mechanism, *tls.Config, error) {
	mech, err := k.SASL.mechanism()
	if err != nil {
		return nil, nil, err
	}
	tc, err := k.TLS.Config()
	if err != nil {
		return nil, nil, fmt.Errorf("kafka tls: %w", err)
	}
	return mech, tc, nil
}
