package bench

import (
	"sync"
	"testing"
)

// TestSchedLatencies reads the runtime's scheduling latencies after goroutines woke each other
// thousands of times, and checks the buckets are cumulative and the quantiles in order. The
// runtime times only a sample of the wake-ups (one goroutine's in eight).
func TestSchedLatencies(t *testing.T) {
	before := schedLatencies()
	var wg sync.WaitGroup
	for range 4 {
		ping, pong := make(chan int), make(chan int)
		wg.Go(func() {
			for i := range 2000 {
				ping <- i
				<-pong
			}
			close(ping)
		})
		wg.Go(func() {
			for i := range ping {
				pong <- i
			}
		})
	}
	wg.Wait()
	after := schedLatencies()
	if len(after.bounds) == 0 || len(after.bounds) != len(after.counts) {
		t.Fatalf("%d bounds, %d counts: is /sched/latencies:seconds still a histogram?", len(after.bounds), len(after.counts))
	}
	for i := 1; i < len(after.bounds); i++ {
		if after.bounds[i] <= after.bounds[i-1] || after.counts[i] < after.counts[i-1] {
			t.Fatalf("bucket %d: bound %g after %g, count %d after %d", i, after.bounds[i], after.bounds[i-1], after.counts[i], after.counts[i-1])
		}
	}
	if last := after.counts[len(after.counts)-1]; last > after.total {
		t.Fatalf("cumulative count %d above the total %d", last, after.total)
	}
	d := after.sub(before)
	if d.total < 100 {
		t.Fatalf("%d wake-ups timed of the 16,000, want at least 100", d.total)
	}
	p50, p99, _ := d.p50p99Ms()
	if p50 < 0 || p99 < p50 {
		t.Errorf("p50 %g ms, p99 %g ms", p50, p99)
	}
}
