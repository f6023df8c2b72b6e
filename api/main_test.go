package api

import (
	"fmt"
	"os"
	"testing"

	"github.com/muckwatch/muckwatch/internal/chlocal"
)

// chServer is the real, throwaway ClickHouse server the package's integration tests share. Each
// test makes its own database on it.
var chServer *chlocal.Server

func TestMain(m *testing.M) {
	srv, err := chlocal.Start()
	if err != nil {
		// Integration tests fail loudly rather than skip: a missing ClickHouse must not look green.
		fmt.Fprintf(os.Stderr, "package api's integration tests need a ClickHouse server and could not start one: %v\n", err)
		os.Exit(1)
	}
	chServer = srv
	code := m.Run()
	if err := srv.Destroy(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot stop the test ClickHouse server: %v\n", err)
	}
	os.Exit(code)
}
