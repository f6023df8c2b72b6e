package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Records deleted from Kafka before the group read them (retention, or an operator's
// kafka-delete-records) leave the group's committed offset below the partition's first record:
// the consumer reads on from the first record left instead of retrying the fetch for ever.
func TestConsumerReadsOnAfterRecordsAreDeleted(t *testing.T) {
	addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
	produceFixes(t, addr, "muck.gps", 0, 100)
	if ids, err := collect(t, newTestConsumer(t, addr), 100, nil); err != nil || len(ids) != 100 {
		t.Fatalf("first read: %d fixes, %v", len(ids), err)
	}
	produceFixes(t, addr, "muck.gps", 100, 100)

	// Delete all but the last 20 records of each partition: past the group's committed offsets.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(addr)}
	ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		"muck.gps": {kafka.LastOffsetOf(0), kafka.LastOffsetOf(1)}}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	topic := kmsg.NewDeleteRecordsRequestTopic()
	topic.Topic = "muck.gps"
	want, past := 0, 0
	for _, p := range ends.Topics["muck.gps"] {
		if p.Error != nil {
			t.Fatal(p.Error)
		}
		keep := min(p.LastOffset, 20)
		want += int(keep)
		if p.LastOffset-keep > p.LastOffset/2 { // half a partition's records came in the first 100, read and committed
			past++
		}
		dp := kmsg.NewDeleteRecordsRequestTopicPartition()
		dp.Partition, dp.Offset = int32(p.Partition), p.LastOffset-keep
		topic.Partitions = append(topic.Partitions, dp)
	}
	if past == 0 {
		t.Fatalf("no partition has its first record left past the committed offset: %+v", ends.Topics["muck.gps"])
	}
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.ErrorCode != 0 {
				t.Fatalf("deleting the records of partition %d: error code %d", rp.Partition, rp.ErrorCode)
			}
		}
	}

	// The records left: the last 20 of each partition, whose fixes are the last of the second 100
	// with that partition's plates (produceFixes: fix i of plate i%5, keyed by plate).
	left := map[string]bool{}
	var h kafka.Hash
	perPartition := map[int]int{}
	for i := 199; i >= 100; i-- {
		plate := fmt.Sprintf("粤B%05d", i%5)
		p := h.Balance(kafka.Message{Key: []byte(plate)}, 0, 1)
		if perPartition[p] < 20 {
			perPartition[p]++
			left[fmt.Sprintf("f-%d", i)] = true
		}
	}
	if len(left) != want {
		t.Fatalf("%d records left by the plates' partitions, %d by the offsets", len(left), want)
	}
	// Every record left is read, once, and none of the first 100 again. (A real broker refuses to
	// serve the deleted records; the embedded one still serves those that share a record batch
	// with one left, so they may come too.)
	rctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	seen := map[string]bool{}
	missing := len(left)
	var bad []string
	err = newTestConsumer(t, addr).Run(rctx, HandlerFunc(func(_ context.Context, b *Batch) error {
		for _, f := range b.Fixes {
			var n int
			if _, err := fmt.Sscanf(f.ID(), "f-%d", &n); err != nil || n < 100 || seen[f.ID()] {
				bad = append(bad, f.ID())
			}
			seen[f.ID()] = true
			if left[f.ID()] {
				missing--
			}
		}
		if missing == 0 {
			stop()
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if missing > 0 || len(bad) > 0 {
		t.Fatalf("after the deletion: %d of the %d records left not read in 30s; read again or from before the committed offsets: %v", missing, len(left), bad)
	}
}
