// Package watchdog ends a test binary whose test hangs, saying where: the integration tests run
// real brokers, ClickHouse servers and pipelines, and a hang there must name itself rather than
// wait for go test's global timeout.
package watchdog

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Start ends the test binary when t runs longer than limit, printing every goroutine and then,
// last (CI shows the tail of the output), tail's lines (a pipeline's last log lines, say; tail may
// be nil) and the test's own goroutines: a hang names where it is.
func Start(t testing.TB, limit time.Duration, tail func() []string) {
	timer := time.AfterFunc(limit, func() {
		buf := make([]byte, 64<<20)
		buf = buf[:runtime.Stack(buf, true)]
		os.Stderr.Write(buf)
		if tail != nil {
			fmt.Fprintf(os.Stderr, "\n\nWATCHDOG: %s still running after %s; the last log lines:\n", t.Name(), limit)
			for _, l := range tail() {
				fmt.Fprint(os.Stderr, l)
			}
		}
		fmt.Fprintf(os.Stderr, "\nWATCHDOG: %s: its goroutines in test code:\n", t.Name())
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "_test.go") {
				fmt.Fprintf(os.Stderr, "%s\n\n", g)
			}
		}
		fmt.Fprintf(os.Stderr, "WATCHDOG: %s hung (see the goroutines above)\n", t.Name())
		os.Exit(2)
	})
	t.Cleanup(func() { timer.Stop() })
}
