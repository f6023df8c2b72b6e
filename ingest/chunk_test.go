package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/record"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Batches are filled a decoded chunk at a time; a chunk that does not fit starts the next batch.
// Whatever the batch and chunk sizes, every record arrives once, each partition's in offset order,
// no batch holds more than batch_max_records, and rejects travel with their chunk.
func TestConsumerChunksKeepOrder(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxRecords int
	}{
		{"batches smaller than a chunk", 100},
		{"a chunk and a bit", 300},
		{"several chunks a batch", 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
			const n = 3000
			produceFixes(t, addr, "muck.gps", 0, n)
			w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "muck.gps", Balancer: &kafka.Hash{}}
			if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte("x"), Value: []byte("{not json")}); err != nil {
				t.Fatal(err)
			}
			w.Close()
			c, err := NewConsumer(ConsumerConfig{Brokers: []string{addr}, GroupID: "g", BatchMaxWait: 20 * time.Millisecond, BatchMaxRecords: tc.maxRecords},
				nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			seen := map[string]bool{}
			last := map[int32]int64{0: -1, 1: -1}
			rejects, biggest := 0, 0
			var problems []string
			err = c.Run(ctx, HandlerFunc(func(_ context.Context, b *Batch) error {
				biggest = max(biggest, b.Len())
				for _, f := range b.Fixes {
					if seen[f.ID()] {
						problems = append(problems, "twice: "+f.ID())
					}
					seen[f.ID()] = true
					if f.Src.Offset <= last[f.Src.Partition] {
						problems = append(problems, fmt.Sprintf("partition %d: offset %d after %d", f.Src.Partition, f.Src.Offset, last[f.Src.Partition]))
					}
					last[f.Src.Partition] = f.Src.Offset
				}
				rejects += len(b.Rejects)
				if len(seen) == n && rejects == 1 {
					cancel()
				}
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) > 0 {
				t.Fatalf("%d problems, first %q", len(problems), problems[0])
			}
			if len(seen) != n || rejects != 1 {
				t.Errorf("%d of %d fixes and %d of 1 reject handed over", len(seen), n, rejects)
			}
			if biggest > tc.maxRecords {
				t.Errorf("a batch of %d records, batch_max_records %d", biggest, tc.maxRecords)
			}
		})
	}
}

// BenchmarkConsumer reads a preloaded backlog of fixes from an embedded broker over TCP (4
// partitions), decodes them and hands them over in batches to a handler that only marks them
// done: the consumer's own cost, kafka-go's reader included.
func BenchmarkConsumer(b *testing.B) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(4, "muck.gps", "muck.events", "muck.officers"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "muck.gps", Balancer: &kafka.Hash{}, BatchSize: 5000, BatchBytes: 4 << 20}
	const n = 200_000
	now := time.Now().UnixMilli()
	msgs := make([]kafka.Message, 0, 10_000)
	for i := range n {
		plate := fmt.Sprintf("粤B%05d", i%10_000)
		msgs = append(msgs, kafka.Message{Key: []byte(plate), Value: fmt.Appendf(nil,
			`{"vehicle_id":"%s","ts":%d,"lat":22.5%04d,"lon":114.0%04d,"speed":%d,"heading":90,"acc":1}`, plate, now-int64(n-i)*10, i%9999, i%7919, i%80)})
		if len(msgs) == cap(msgs) || i == n-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	w.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cons, err := NewConsumer(ConsumerConfig{Brokers: []string{addr}, GroupID: fmt.Sprintf("bench-%d", i)},
			nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := 0
		if err := cons.Run(ctx, HandlerFunc(func(_ context.Context, bt *Batch) error {
			if got += len(bt.Fixes); got >= n {
				cancel()
			}
			return nil
		})); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// A batch keeps its capacity through fills of varying size and gives up a large one only after
// eight fills in a row have used less than a quarter of it (shrinkAfter).
func TestBatchResetKeepsCapacity(t *testing.T) {
	const big = 4096
	for _, tc := range []struct {
		name  string
		fills []int // records of each fill after a first one of big
		kept  bool  // whether the big capacity is still there after the last
	}{
		{"7 small fills", repeat(100, 7), true},
		{"8 small fills in a row", repeat(100, 8), false},
		{"a large fill among small ones", append(append(repeat(100, 7), big/2), repeat(100, 7)...), true},
		{"fills of a quarter or more", repeat(big/4, 30), true},
		{"8 empty fills (idle ticks)", repeat(0, 8), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Batch
			b.Fixes = make([]record.Fix, big)
			b.Fixes[0].VehicleID = "粤B00001"
			b.Reset()
			for _, n := range tc.fills {
				b.Fixes = append(b.Fixes, make([]record.Fix, n)...)
				b.Reset()
				if len(b.Fixes) != 0 {
					t.Fatalf("Reset left %d fixes", len(b.Fixes))
				}
			}
			if kept := cap(b.Fixes) >= big; kept != tc.kept {
				t.Errorf("capacity %d after the fills, want kept %v", cap(b.Fixes), tc.kept)
			}
			if cap(b.Fixes) > 0 && b.Fixes[:1][0].VehicleID != "" {
				t.Errorf("Reset kept a reference to a record's plate")
			}
		})
	}
}

func repeat(n, times int) []int {
	s := make([]int, times)
	for i := range s {
		s[i] = n
	}
	return s
}
