package api

import (
	"os"
	"testing"

	"github.com/muckwatch/muckwatch/internal/chlocal"
)

// chServer is the real, throwaway ClickHouse server the package's integration tests share. Each
// test makes its own database on it.
var chServer *chlocal.Server

func TestMain(m *testing.M) {
	os.Exit(chlocal.RunTests(m, "package api's integration tests", func(s *chlocal.Server) { chServer = s }))
}
