package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/pipeline"
)

// measureCeiling reads the backlog with a bare kafka-go group reader configured as the pipeline's
// consumer is (fetch sizes, queue, group semantics), discarding every record.
func measureCeiling(ctx context.Context, cfg pipeline.Config, n int, r *Report) error {
	k := cfg.Kafka
	rd := kafka.NewReader(kafka.ReaderConfig{
		Brokers: k.Brokers, GroupID: ceilingGroupID, GroupTopics: []string{k.Topics.GPS},
		MinBytes: 1, MaxBytes: k.FetchMaxBytes, MaxWait: k.FetchMaxWait, QueueCapacity: k.BatchMaxRecords,
		StartOffset: kafka.FirstOffset, HeartbeatInterval: 3 * time.Second, SessionTimeout: k.SessionTimeout,
		RebalanceTimeout: k.SessionTimeout, JoinGroupBackoff: time.Second, ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second,
	})
	defer rd.Close()
	cctx, cancel := context.WithTimeout(ctx, max(3*time.Minute, time.Duration(n/5_000)*time.Second))
	defer cancel()
	began := time.Now()
	for got := 0; got < n; got++ {
		if _, err := rd.FetchMessage(cctx); err != nil {
			return fmt.Errorf("raw ceiling: a bare reader got %d of %d records: %w", got, n, err)
		}
	}
	r.CeilingSeconds = time.Since(began).Seconds()
	r.CeilingRate = float64(n) / r.CeilingSeconds
	return nil
}
