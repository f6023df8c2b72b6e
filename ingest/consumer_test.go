package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// startBroker starts an embedded Kafka-protocol broker on a free port.
func startBroker(t *testing.T, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(2, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func produceFixes(t *testing.T, addr, topic string, from, n int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond}
	defer w.Close()
	now := time.Now().UnixMilli()
	var msgs []kafka.Message
	for i := from; i < from+n; i++ {
		plate := fmt.Sprintf("粤B%05d", i%5)
		msgs = append(msgs, kafka.Message{Key: []byte(plate), Value: []byte(fmt.Sprintf(
			`{"vehicle_id":"%s","ts":%d,"lat":22.5,"lon":114.0,"event_id":"f-%d"}`, plate, now-int64(1000*(from+n-i)), i))})
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func newTestConsumer(t *testing.T, addr string) *Consumer {
	t.Helper()
	c, err := NewConsumer(ConsumerConfig{Brokers: []string{addr}, GroupID: "g", BatchMaxWait: 20 * time.Millisecond},
		nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// collect runs a consumer until it has handed want fixes to its handler (then stops it) or the
// handler fails; it returns the fix ids handed over.
func collect(t *testing.T, c *Consumer, want int, fail error) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ids []string
	err := c.Run(ctx, HandlerFunc(func(_ context.Context, b *Batch) error {
		if fail != nil {
			return fail
		}
		for _, f := range b.Fixes {
			ids = append(ids, f.FixID)
		}
		if len(ids) >= want {
			cancel()
		}
		return nil
	}))
	return ids, err
}

// Offsets are committed only after the handler succeeded: a failed batch is read again by the
// next consumer of the group, a handled one is not.
func TestConsumerCommitsOnlyAfterHandler(t *testing.T) {
	addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
	produceFixes(t, addr, "muck.gps", 0, 50)

	boom := errors.New("ClickHouse is down")
	if _, err := collect(t, newTestConsumer(t, addr), 50, boom); !errors.Is(err, boom) {
		t.Fatalf("want the handler's error, got %v", err)
	}
	ids, err := collect(t, newTestConsumer(t, addr), 50, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 50 {
		t.Fatalf("after a failed batch the next consumer must read all 50 fixes again, read %d", len(ids))
	}
	produceFixes(t, addr, "muck.gps", 50, 10)
	ids, err = collect(t, newTestConsumer(t, addr), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 10 || ids[0] == "f-0" {
		t.Fatalf("after a handled batch the next consumer must read only the 10 new fixes, read %d: %v", len(ids), ids)
	}
}
