package pipeline

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestHostileFlood sends `muckwatch run` (a process of its own, so that its memory is its own)
// 200 records of 900 KiB — about the most a broker with the default message.max.bytes accepts,
// 180 MB in all — between valid fixes that are each sent twice: every huge record is dead-lettered,
// every valid fix is stored once in effect, and the process's peak resident memory stays within
// its memory limit.
func TestHostileFlood(t *testing.T) {
	floodRecords := 200
	if n, err := strconv.Atoi(os.Getenv("MUCKWATCH_FLOOD_RECORDS")); err == nil && n > 0 {
		floodRecords = n // make chaos: a longer flood
	}
	r := newRig(t, "flood")
	// Under its memory limit the process lets the heap grow to the limit before collecting
	// (GOGC off), so its memory is bounded by the limit, set here below the default 440 MiB.
	const limitMiB = 300
	cfg, err := os.ReadFile(r.config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.config, fmt.Appendf(cfg, "runtime:\n  memory_limit_mib: %d\n", limitMiB), 0o600); err != nil {
		t.Fatal(err)
	}
	gps := "muck.gps"
	now := time.Now()
	pad := strings.Repeat("y", 900<<10)
	var msgs []kafka.Message
	valid := 0
	for i := range floodRecords {
		for j := range 10 {
			plate := fmt.Sprintf("粤B2%04d", (i*10+j)%50)
			m := fixMsg(gps, plate, now.Add(time.Duration(i*10+j-10*floodRecords)*time.Second), 22.55, 114.05, 20)
			msgs = append(msgs, m, m) // a terminal sending each fix twice
			valid++
		}
		msgs = append(msgs, kafka.Message{Topic: gps, Key: []byte("粤B20000"), Value: fmt.Appendf(nil,
			`{"vehicle_id":"粤B20000","ts":%d,"lat":22.5,"lon":114.0,"pad":"%s"}`, now.UnixMilli(), pad)})
	}
	cmd := r.start()
	// batches of at most 1,000,000 bytes: under the broker's message.max.bytes, one huge record each
	w := &kafka.Writer{Addr: kafka.TCP(r.addr), Balancer: &kafka.Hash{}, BatchTimeout: 2 * time.Millisecond, RequiredAcks: kafka.RequireAll, BatchBytes: 1_000_000}
	for i := 0; i < len(msgs); i += 100 {
		if err := w.WriteMessages(context.Background(), msgs[i:min(i+100, len(msgs))]...); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for r.count("SELECT count() FROM "+r.db+".rejects") < uint64(floodRecords) || r.count("SELECT uniqExact(fix_id) FROM "+r.db+".positions") < uint64(valid) {
		if time.Now().After(deadline) {
			t.Fatalf("after 2 minutes %d rejects (of %d) and %d of %d fixes stored; the log is in %s",
				r.count("SELECT count() FROM "+r.db+".rejects"), floodRecords, r.stored(), valid, r.dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
	peak := peakRSS(t, cmd.Process.Pid)
	r.stopAll()
	final := r.count("SELECT count() FROM " + r.db + ".positions FINAL")
	if final != uint64(valid) {
		t.Errorf("positions FINAL: %d rows for %d distinct fixes sent twice each", final, valid)
	}
	if n := r.count("SELECT count() FROM " + r.db + ".rejects WHERE reason = 'too_large'"); n != uint64(floodRecords) {
		t.Errorf("%d too_large rejects, want %d", n, floodRecords)
	}
	t.Logf("%d valid fixes sent twice and %d records of 900 KiB (%d MB): %d fixes stored once in effect, %d dead-lettered; peak RSS of the pipeline %d MiB",
		valid, floodRecords, floodRecords*900*1024/1e6, final, floodRecords, peak>>20)
	if peak > (limitMiB+60)<<20 { // the limit, and what the runtime keeps beside the heap
		t.Errorf("peak RSS %d MiB for a flood of %d records of 900 KiB under a %d MiB limit; memory is not bounded", peak>>20, floodRecords, limitMiB)
	}
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
