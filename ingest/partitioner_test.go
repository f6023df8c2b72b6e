package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// The partitions the producers people use give a plate: seen in the issue with 8 partitions,
// kcat (librdkafka's default, CRC32) put 粤B00001 on 2 where kafka-go's Hash (FNV-1a) gives 5.
func TestPartitionerVectors(t *testing.T) {
	for _, tc := range []struct {
		name, key string
		n, want   int
	}{
		{"fnv1a", "粤B00001", 8, 5},
		{"crc32", "粤B00001", 8, 2},
	} {
		p, err := newPartitioner(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.partition([]byte(tc.key), tc.n); got != tc.want {
			t.Errorf("%s(%s) over %d partitions = %d, want %d", tc.name, tc.key, tc.n, got, tc.want)
		}
	}
	if _, err := newPartitioner("random"); err == nil {
		t.Error("an unknown partitioner is accepted")
	}
}

// Fixes produced with each of the three partitioners are read; the consumer counts as misrouted
// exactly those not where the configured partitioner puts their key, and hands every one on.
func TestConsumerCountsMisroutedRecords(t *testing.T) {
	const partitions = 8
	cluster, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(partitions, "muck.gps", "muck.events", "muck.officers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	addr := cluster.ListenAddrs()[0]
	balancers := map[string]kafka.Balancer{"fnv1a": &kafka.Hash{}, "murmur2": kafka.Murmur2Balancer{Consistent: true}, "crc32": kafka.CRC32Balancer{Consistent: true}}
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	placed := map[string]map[string]int{} // producer's partitioner → plate → partition
	total := 0
	for name, b := range balancers {
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "muck.gps", Balancer: b, BatchTimeout: time.Millisecond}
		var msgs []kafka.Message
		placed[name] = map[string]int{}
		for i := range 40 {
			plate := fmt.Sprintf("粤B%05d", i)
			placed[name][plate] = b.Balance(kafka.Message{Key: []byte(plate)}, ids...)
			msgs = append(msgs, kafka.Message{Key: []byte(plate), Value: fmt.Appendf(nil,
				`{"vehicle_id":"%s","ts":%d,"lat":22.5,"lon":114.0,"event_id":"%s-%d"}`, plate, time.Now().UnixMilli(), name, i)})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
		total += len(msgs)
	}
	for contract := range balancers {
		t.Run(contract, func(t *testing.T) {
			c, err := NewConsumer(ConsumerConfig{Brokers: []string{addr}, GroupID: "g-" + contract, Partitioner: contract, BatchMaxWait: 20 * time.Millisecond},
				nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err != nil {
				t.Fatal(err)
			}
			read, err := collect(t, c, total, nil)
			if err != nil || len(read) != total {
				t.Fatalf("read %d of %d fixes: %v", len(read), total, err)
			}
			want := 0
			for producer := range balancers {
				for plate, p := range placed[producer] {
					if p != placed[contract][plate] {
						want++
					}
				}
			}
			if got := testutil.ToFloat64(c.metrics.misrouted.WithLabelValues("muck.gps", contract)); int(got) != want || want == 0 {
				t.Errorf("misrouted %v, want %d (and some)", got, want)
			}
		})
	}
}
