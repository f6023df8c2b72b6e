package evaluate

import (
	"os"
	"testing"

	"github.com/muckwatch/muckwatch/internal/chlocal"
)

// chServer is the real ClickHouse server the evaluation's tests share.
var chServer *chlocal.Server

func TestMain(m *testing.M) {
	os.Exit(chlocal.RunTests(m, "integration tests", func(s *chlocal.Server) { chServer = s }))
}
