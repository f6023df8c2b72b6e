package bench

import (
	"fmt"
	"os"
	"runtime/trace"
	"sync"
	"time"
)

// traceAfter and traceFor place the execution trace (--trace) in the backlog: past the first
// fetches, and short enough for go tool trace to open. The live window's (--live-trace) lasts
// liveTraceFor, longer than a checkpoint interval, so that one checkpoint falls in it.
const (
	traceAfter   = 2 * time.Second
	traceFor     = 3 * time.Second
	liveTraceFor = 6 * time.Second
)

// startTrace writes an execution trace of length, from traceAfter after from, to path (none
// when path is empty). The returned stop ends it early if it is still running, and waits for
// the file to be written; it may be called more than once.
func startTrace(path string, from time.Time, length time.Duration) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cannot create the execution trace: %w", err)
	}
	var (
		mu      sync.Mutex
		started bool
		ended   bool
	)
	end := func() {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		ended = true
		if started {
			trace.Stop()
		}
		f.Close()
	}
	begin := time.AfterFunc(time.Until(from.Add(traceAfter)), func() {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		if err := trace.Start(f); err != nil {
			return
		}
		started = true
		time.AfterFunc(length, end)
	})
	return func() {
		begin.Stop()
		end()
	}, nil
}
