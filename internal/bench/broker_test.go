package bench

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/internal/watchdog"
)

// TestBrokerChild starts the broker in a child process, as the bench does, finds the topics it
// was given there over TCP with the partitions asked, and stops it: the process is gone.
func TestBrokerChild(t *testing.T) {
	watchdog.Start(t, 2*time.Minute, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topics := []string{"muck.gps", "muck.alerts"}
	addr, pid, stop, err := startBroker(ctx, &Options{Partitions: 3, ChildCommand: testChild}, topics, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if pid <= 0 {
		t.Errorf("the broker runs in process %d, want a child process", pid)
	}
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		_ = stop()
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, tp := range md.Topics {
		if tp.Error == nil {
			got[tp.Name] = len(tp.Partitions)
		}
	}
	for _, name := range topics {
		if got[name] != 3 {
			t.Errorf("topic %s: %d partitions, want 3 (metadata: %v)", name, got[name], got)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the broker's process %d is still there after stop: %v", pid, err)
	}
}

// TestRunChildRefuses: a child process without what it needs, or of no such name, says so.
func TestRunChildRefuses(t *testing.T) {
	var out bytes.Buffer
	if err := RunChild(context.Background(), "broker", nil, nil, &out); err == nil || !strings.Contains(err.Error(), "--topics") || out.Len() != 0 {
		t.Errorf("a broker without topics: err %v, output %q", err, out.String())
	}
	if err := RunChild(context.Background(), "pipeline", nil, nil, &out); !errors.Is(err, ErrUnknownChild) {
		t.Errorf("an unknown child: %v", err)
	}
}
