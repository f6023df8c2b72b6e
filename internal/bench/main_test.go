package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"

	"github.com/muckwatch/muckwatch/internal/chlocal"
)

// chServer is the real ClickHouse server the bench's tests share.
var chServer *chlocal.Server

// testChildEnv, set in a child process's environment, makes this test binary run the bench's
// child process it names (RunChild, with the process's arguments) instead of the tests: the
// bench's child processes (broker, terminals, squads) are muckbench's subcommands, and a test
// binary is not muckbench.
const testChildEnv = "MUCKBENCH_TEST_CHILD"

// testChild returns the command that runs child process name with args in a child process of
// this test binary (Options.ChildCommand).
func testChild(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), testChildEnv+"="+name)
	return cmd
}

func TestMain(m *testing.M) {
	if name := os.Getenv(testChildEnv); name != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := RunChild(ctx, name, os.Args[1:], os.Stdin, os.Stdout)
		stop()
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "muckbench %s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(chlocal.RunTests(m, "integration tests", func(s *chlocal.Server) { chServer = s }))
}
