// Package chlocal starts a throwaway local ClickHouse server for the demo and the tests, using
// the project's own deploy/clickhouse-local.sh (which installs Debian's clickhouse-server when it
// is missing). Tests that use it never skip: they fail loudly when the server cannot be started.
package chlocal

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Server is a running throwaway ClickHouse server.
type Server struct {
	Dir      string
	TCPAddr  string // host:port of the native protocol
	HTTPAddr string // host:port of the HTTP interface
	// TLSAddr is host:port of the native protocol over TLS, when the server was started with a
	// certificate (see StartSecure).
	TLSAddr string
	script  string
}

// Script returns the path of deploy/clickhouse-local.sh in this checkout.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "clickhouse-local.sh")
}

// Start starts a server with its data under a new temporary folder.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "muckwatch-ch-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a folder for ClickHouse: %w", err)
	}
	return StartIn(dir)
}

// StartIn starts (or finds running) a server with its data under dir.
func StartIn(dir string) (*Server, error) { return start(dir, nil) }

// Ports are a server's ports, chosen by the caller.
type Ports struct{ TCP, HTTP, Interserver int }

// StartOn starts a server under dir on the ports given (not free ones of its choosing), with the
// XML files the caller put in dir/config.d merged into its config: the servers of a cluster name
// each other's ports before they start (internal/chcluster). It fails when a port is taken.
func StartOn(dir string, p Ports) (*Server, error) {
	return start(dir, []string{fmt.Sprintf("CLICKHOUSE_PORTS=%d %d %d", p.TCP, p.HTTP, p.Interserver)})
}

// StartSecure starts a server under dir that also speaks TLS on a native port of its own (with
// the PEM certificate and key given) and has a user with a password besides "default".
func StartSecure(dir, certFile, keyFile, user, password string) (*Server, error) {
	return start(dir, []string{"CLICKHOUSE_TLS_CERT=" + certFile, "CLICKHOUSE_TLS_KEY=" + keyFile,
		"CLICKHOUSE_USER=" + user, "CLICKHOUSE_PASSWORD=" + password})
}

func start(dir string, env []string) (*Server, error) {
	s := &Server{Dir: dir, script: Script()}
	var stderr bytes.Buffer
	cmd := exec.Command("bash", s.script, "start", dir)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cannot start ClickHouse with %s in %s: %w\n%s", s.script, dir, err, stderr.String())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "CLICKHOUSE_TCP":
			s.TCPAddr = "127.0.0.1:" + v
		case "CLICKHOUSE_HTTP":
			s.HTTPAddr = "127.0.0.1:" + v
		case "CLICKHOUSE_TCP_SECURE":
			s.TLSAddr = "127.0.0.1:" + v
		}
	}
	if s.TCPAddr == "" {
		return nil, fmt.Errorf("cannot read the ClickHouse ports from %s output %q", s.script, out)
	}
	return s, nil
}

// Stop stops the server and keeps its data (the demo's history outlives a run).
func (s *Server) Stop() error {
	if err := exec.Command("bash", s.script, "stop", s.Dir).Run(); err != nil {
		return fmt.Errorf("cannot stop the ClickHouse server in %s: %w", s.Dir, err)
	}
	return nil
}

// Destroy stops the server and removes its data (tests).
func (s *Server) Destroy() error {
	err := s.Stop()
	if rmErr := os.RemoveAll(s.Dir); err == nil {
		err = rmErr
	}
	return err
}

// RunTests is a test package's TestMain body: it starts a server, hands it to set, runs the tests
// and destroys the server. Without a server the tests do not run and the package fails loudly
// (integration tests never skip).
func RunTests(m interface{ Run() int }, what string, set func(*Server)) int {
	srv, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s need a ClickHouse server and could not start one: %v\n", what, err)
		return 1
	}
	set(srv)
	code := m.Run()
	if err := srv.Destroy(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot stop the test ClickHouse server: %v\n", err)
	}
	return code
}
