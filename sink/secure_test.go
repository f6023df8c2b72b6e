package sink

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/internal/secure/securetest"
)

// ClickHouse over TLS with a password from the environment: the pipeline's own connection
// (migrations, a write, a read back) works with the server's CA; a wrong password, a missing CA
// or plain text on the TLS port fail with a clear error, and the password is in no error or log.
func TestClickHouseTLSAndPassword(t *testing.T) {
	cert := securetest.SelfSigned(t)
	const user, password = "muckwatch_app", "n0t-in-any-file"
	srv, err := chlocal.StartSecure(t.TempDir(), cert.CertFile, cert.KeyFile, user, password)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Destroy() })
	if srv.TLSAddr == "" {
		t.Fatal("the server has no TLS port")
	}
	t.Setenv("MUCKWATCH_TEST_CH_PASSWORD", password)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	good := ClickHouseConfig{Addr: []string{srv.TLSAddr}, Database: "secure_test", Username: user,
		PasswordEnv: "MUCKWATCH_TEST_CH_PASSWORD", TLS: true, CAFile: cert.CertFile, DialTimeout: 5 * time.Second}
	c, err := OpenClickHouse(ctx, good, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var n uint64
	if err := c.Conn().QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", "secure_test").Scan(&n); err != nil || n == 0 {
		t.Fatalf("tables over TLS: %d, %v", n, err)
	}

	var errs []string
	for _, tc := range []struct {
		name string
		edit func(*ClickHouseConfig)
		want string
	}{
		{"wrong password", func(c *ClickHouseConfig) { c.PasswordEnv = "MUCKWATCH_TEST_CH_WRONG" }, "password"},
		{"no CA", func(c *ClickHouseConfig) { c.CAFile = "" }, "certificate"},
		{"plain text on the TLS port", func(c *ClickHouseConfig) { c.TLS, c.CAFile = false, "" }, "cannot ping ClickHouse"},
		{"TLS on the plain port", func(c *ClickHouseConfig) { c.Addr = []string{srv.TCPAddr} }, "cannot ping ClickHouse"},
	} {
		t.Setenv("MUCKWATCH_TEST_CH_WRONG", "not-the-password")
		cfg := good
		tc.edit(&cfg)
		_, err := OpenClickHouse(ctx, cfg, log, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
			continue
		}
		errs = append(errs, err.Error())
	}
	for _, s := range append(errs, logs.String()) {
		if strings.Contains(s, password) {
			t.Errorf("the password leaked: %s", s)
		}
	}
}
