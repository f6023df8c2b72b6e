package main

import (
	"os"
	"os/exec"
	"testing"

	"github.com/muckwatch/muckwatch/internal/chlocal"
)

// chServer is the real ClickHouse server the command tests share.
var chServer *chlocal.Server

// testChildEnv, set in a child process's environment, makes this test binary run muckwatch's
// subcommand it names (with the process's arguments) instead of the tests: the bench's child
// processes (broker, squads) are this program's subcommands, and a test binary is not muckwatch.
const testChildEnv = "MUCKWATCH_TEST_CHILD"

// testChild returns the command that runs subcommand name with args in a child process of this
// test binary (benchOptions.ChildCommand).
func testChild(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), testChildEnv+"="+name)
	return cmd
}

func TestMain(m *testing.M) {
	if name := os.Getenv(testChildEnv); name != "" {
		os.Exit(runCommand(name, os.Args[1:]))
	}
	os.Exit(chlocal.RunTests(m, "integration tests", func(s *chlocal.Server) { chServer = s }))
}
