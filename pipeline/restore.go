package pipeline

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/internal/backoff"
	"github.com/muckwatch/muckwatch/record"
)

// Rebalanced implements ingest.Rebalancer: detector state moves with the input partitions. The
// vehicles of revoked partitions are forgotten (their new owner carries them on); those of added
// partitions are restored from their checkpoints on the state topic, written before every commit,
// so the state restored covers at least the committed offsets the partition is read from. Records
// read again after a checkpoint are stored but not judged twice.
func (p *stages) Rebalanced(ctx context.Context, r ingest.Rebalance) error {
	forgot := 0
	now := time.Now()
	for _, tp := range r.Revoked {
		s := shardOf(tp)
		forgot += p.engine.Release(s)
		p.clock.Forget(s)
	}
	added := map[ingest.TopicPartition]bool{}
	var inputs []int32
	for _, tp := range r.Added {
		if tp.Topic != p.topics.GPS && tp.Topic != p.topics.Events {
			continue
		}
		s := shardOf(tp)
		forgot += p.engine.Release(s) // whatever this instance knew of it is stale
		p.clock.Forget(s)
		if !slices.Contains(r.CaughtUp, tp) {
			p.clock.Expect(s, now) // event time waits for its first records
		}
		added[tp] = true
		inputs = append(inputs, tp.Partition)
	}
	if len(inputs) == 0 || p.state == nil {
		p.log.Info("partitions moved", "generation", r.Generation, "owned", len(r.Owned), "revoked", len(r.Revoked), "vehicles_forgotten", forgot)
		return nil
	}
	owned := func(s record.Shard) bool {
		return added[ingest.TopicPartition{Topic: s.Topic, Partition: s.Partition}]
	}
	began := time.Now()
	n, retried := 0, false
	err := backoff.Retry(ctx, p.backoff, func() error {
		restored := 0
		var err error
		n, err = p.state(ctx, inputs, func(_, v []byte) error {
			if err := p.engine.Restore(v, owned); err != nil {
				p.log.Warn("a detector checkpoint cannot be restored; that vehicle starts afresh", "err", err)
			} else {
				restored++
			}
			return nil
		})
		return err
	}, func(attempt int, err error, wait time.Duration) {
		retried = true
		p.metrics.holding.Set(1)
		p.log.Warn("cannot read the detector checkpoints of the partitions taken over; retrying", "attempt", attempt, "retry_in", wait, "err", err)
	})
	if err != nil {
		p.metrics.holding.Set(1)
		return fmt.Errorf("cannot restore the detector state of partitions %v: %w", inputs, err)
	}
	for _, tp := range r.CaughtUp {
		s := shardOf(tp)
		p.clock.Settle(s, p.engine.Resume(s), time.Now())
	}
	if retried {
		p.metrics.holding.Set(0)
	}
	p.log.Info("detector state restored for the partitions taken over", "generation", r.Generation,
		"added", len(r.Added), "revoked", len(r.Revoked), "checkpoints_read", n, "vehicles", p.engine.Tracks(),
		"vehicles_forgotten", forgot, "caught_up", r.CaughtUp, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

func shardOf(tp ingest.TopicPartition) record.Shard {
	return record.Shard{Topic: tp.Topic, Partition: tp.Partition}
}
