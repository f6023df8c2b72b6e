package pipeline

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/internal/backoff"
	"github.com/muckwatch/muckwatch/internal/statetopic"
	"github.com/muckwatch/muckwatch/record"
)

// Rebalanced implements ingest.Rebalancer: detector state moves with the input partitions. The
// vehicles of revoked partitions are forgotten (their new owner carries them on); those of added
// partitions are restored from their checkpoints on the state topic, written before every commit,
// so the state restored covers at least the committed offsets the partition is read from. Records
// read again after a checkpoint are stored but not judged twice.
func (p *stages) Rebalanced(ctx context.Context, r ingest.Rebalance) error {
	if p.health == nil {
		return p.rebalance(ctx, r)
	}
	p.health.setRestoring(true, false)
	err := p.rebalance(ctx, r)
	p.health.setRestoring(false, err == nil)
	return err
}

func (p *stages) rebalance(ctx context.Context, r ingest.Rebalance) error {
	forgot := 0
	now := p.now()
	for _, tp := range r.Revoked {
		s := shardOf(tp)
		forgot += p.engine.Release(s)
		p.clock.Forget(s)
	}
	added := map[ingest.TopicPartition]bool{}
	var inputs []int32
	for _, tp := range r.Added {
		if !p.judges(tp.Topic) {
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
	n, foreign, retried := 0, map[string]int{}, false
	err := backoff.Retry(ctx, p.backoff, func() error {
		restored := 0
		clear(foreign)
		var err error
		n, err = p.state(ctx, inputs, func(k, v []byte) error {
			if group, legacy := statetopic.Owner(k); !legacy && group != p.group {
				foreign[group]++ // another consumer group's state: not this one's to carry on
				return nil
			}
			if err := p.engine.Restore(v, owned); err != nil {
				p.metrics.refused.Inc()
				p.log.Warn("a detector checkpoint cannot be restored; that vehicle starts afresh", "err", err)
			} else {
				restored++
			}
			return nil
		})
		return err
	}, func(attempt int, err error, wait time.Duration) {
		retried = true
		p.hold(true)
		p.log.Warn("cannot read the detector checkpoints of the partitions taken over; retrying", "attempt", attempt, "retry_in", wait, "err", err)
	})
	if err != nil {
		p.hold(true)
		return fmt.Errorf("cannot restore the detector state of partitions %v: %w", inputs, err)
	}
	for _, tp := range r.CaughtUp {
		s := shardOf(tp)
		p.clock.Settle(s, p.engine.Resume(s), p.now())
	}
	if retried {
		p.hold(false)
	}
	for group, k := range foreign {
		p.log.Warn("the state topic holds checkpoints of another consumer group; they are left alone (give each group a state topic of its own: outputs.state_topic)",
			"group", group, "checkpoints", k, "own_group", p.group)
	}
	p.log.Info("detector state restored for the partitions taken over", "generation", r.Generation,
		"added", len(r.Added), "revoked", len(r.Revoked), "checkpoints_read", n, "vehicles", p.engine.Tracks(),
		"vehicles_forgotten", forgot, "caught_up", r.CaughtUp, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

func shardOf(tp ingest.TopicPartition) record.Shard {
	return record.Shard{Topic: tp.Topic, Partition: tp.Partition}
}

// judges reports whether the detectors judge the records of topic: fixes and camera events, as
// produced or re-keyed (officers' positions keep no detector state).
func (p *stages) judges(topic string) bool {
	switch topic {
	case p.topics.GPS, p.topics.Events, record.Rekeyed(p.topics.GPS), record.Rekeyed(p.topics.Events):
		return true
	}
	return false
}
