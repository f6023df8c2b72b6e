package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/sink"
)

// watch observes the pipeline from outside: rows in ClickHouse and its group's committed
// offsets.
type watch struct {
	conn       *sink.ClickHouse
	db         string
	client     *kafka.Client
	group      string
	topic      string
	partitions int
	stopped    <-chan struct{}
}

func (w *watch) count(ctx context.Context, expr string) (uint64, error) {
	var n uint64
	if err := w.conn.Conn().QueryRow(ctx, "SELECT "+expr+" FROM "+w.db+".positions").Scan(&n); err != nil {
		return 0, fmt.Errorf("cannot count the stored fixes: %w", err)
	}
	return n, nil
}

// lag is the pipeline group's lag on the GPS topic: records not yet committed.
func (w *watch) lag(ctx context.Context) (int64, error) {
	parts := make([]int, w.partitions)
	reqs := make([]kafka.OffsetRequest, w.partitions)
	for p := range parts {
		parts[p], reqs[p] = p, kafka.LastOffsetOf(p)
	}
	ends, err := w.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{w.topic: reqs}})
	if err != nil {
		return 0, fmt.Errorf("cannot list the offsets of %s: %w", w.topic, err)
	}
	committed, err := w.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: w.group, Topics: map[string][]int{w.topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("cannot fetch the committed offsets of group %s: %w", w.group, err)
	}
	if committed.Error != nil {
		return 0, fmt.Errorf("cannot fetch the committed offsets of group %s: %w", w.group, committed.Error)
	}
	at := map[int]int64{}
	for _, c := range committed.Topics[w.topic] {
		at[c.Partition] = max(c.CommittedOffset, 0)
	}
	var lag int64
	for _, e := range ends.Topics[w.topic] {
		if e.Error != nil {
			return 0, fmt.Errorf("cannot list the offsets of %s/%d: %w", w.topic, e.Partition, e.Error)
		}
		lag += max(e.LastOffset-at[e.Partition], 0)
	}
	return lag, nil
}

// readLag returns how many records of the topic the pipeline has yet to read: the partitions'
// ends less the records its consumer has read (muckwatch_ingest_records_total in reg; the
// bench's group reads the topic once, from its start). Unlike the group's committed lag, it
// does not trail by the offsets waiting for the next checkpoint.
func (w *watch) readLag(ctx context.Context, reg prometheus.Gatherer) (int64, error) {
	ends, err := topicEnds(ctx, w.client, w.topic, w.partitions)
	if err != nil {
		return 0, err
	}
	var end int64
	for _, e := range ends {
		end += e
	}
	read := int64(gatherSums(reg)[recordsMetric][1])
	return max(end-read, 0), nil
}

// waitCaughtUp polls until at least want fixes are stored and the group has committed everything,
// and returns when it saw that. It fails when the stored count stops growing for stall or the
// pipeline stops.
func (w *watch) waitCaughtUp(ctx context.Context, want uint64) (time.Time, error) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last uint64
	moved := time.Now()
	for {
		n, err := w.count(ctx, "count()")
		if err != nil {
			return time.Time{}, err
		}
		if n != last {
			last, moved = n, time.Now()
		}
		if n >= want {
			lag, err := w.lag(ctx)
			if err != nil {
				return time.Time{}, err
			}
			if lag == 0 {
				return time.Now(), nil
			}
		}
		if time.Since(moved) > stall {
			return time.Time{}, fmt.Errorf("%d of %d fixes stored and nothing new for %s", n, want, stall)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-w.stopped:
			return time.Time{}, errors.New("the pipeline stopped")
		case <-tick.C:
		}
	}
}

// topicEnds returns the end offset of each partition of topic.
func topicEnds(ctx context.Context, c *kafka.Client, topic string, partitions int) ([]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("cannot list the offsets of %s: %w", topic, err)
	}
	ends := make([]int64, partitions)
	for _, e := range resp.Topics[topic] {
		if e.Error != nil {
			return nil, fmt.Errorf("cannot list the offsets of %s/%d: %w", topic, e.Partition, e.Error)
		}
		if e.Partition >= 0 && e.Partition < partitions {
			ends[e.Partition] = e.LastOffset
		}
	}
	return ends, nil
}
