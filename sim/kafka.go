package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/muckwatch/muckwatch/record"
	"github.com/segmentio/kafka-go"
)

// KafkaEmitter produces the simulator's records to Kafka, keyed by vehicle, in batches.
type KafkaEmitter struct {
	ctx    context.Context
	w      *kafka.Writer
	topics map[string]string
	buf    []kafka.Message
	sent   int
}

func NewKafkaEmitter(ctx context.Context, brokers []string, t record.Topics) *KafkaEmitter {
	return &KafkaEmitter{
		ctx: ctx,
		w: &kafka.Writer{
			Addr:                   kafka.TCP(brokers...),
			Balancer:               &kafka.Hash{},
			BatchSize:              2000,
			BatchBytes:             4 << 20,
			BatchTimeout:           5 * time.Millisecond,
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
		},
		topics: map[string]string{"gps": t.GPS, "events": t.Events, "officers": t.Officers},
	}
}

// Emit implements Emitter.
func (e *KafkaEmitter) Emit(r Record) error {
	e.buf = append(e.buf, kafka.Message{Topic: e.topics[r.Topic], Key: []byte(r.Key), Value: r.Value, Time: time.Now()})
	if len(e.buf) >= 5000 {
		return e.Flush()
	}
	return nil
}

// Flush produces what is buffered and waits for the broker's acks.
func (e *KafkaEmitter) Flush() error {
	if len(e.buf) == 0 {
		return nil
	}
	if err := e.w.WriteMessages(e.ctx, e.buf...); err != nil {
		return fmt.Errorf("cannot produce %d simulated records: %w", len(e.buf), err)
	}
	e.sent += len(e.buf)
	clear(e.buf)
	e.buf = e.buf[:0]
	return nil
}

// Close closes the producer.
func (e *KafkaEmitter) Close() error { return e.w.Close() }

// WallClock runs simulated time at speedup × wall time, never ahead of the wall clock (so device
// times are never in the future), flushing the emitter before it sleeps.
type WallClock struct {
	Ctx       context.Context
	WallStart time.Time
	SimStart  time.Time
	Speedup   float64
	Flush     func() error
}

// Wait implements Pacer.
func (p *WallClock) Wait(t time.Time) error {
	due := p.WallStart.Add(time.Duration(float64(t.Sub(p.SimStart)) / p.Speedup))
	if t.After(due) && time.Now().Before(t) {
		due = t // caught up with the present: real time from here on
	}
	wait := time.Until(due)
	if wait <= 0 {
		return p.Ctx.Err()
	}
	if err := p.Flush(); err != nil {
		return err
	}
	select {
	case <-p.Ctx.Done():
		return p.Ctx.Err()
	case <-time.After(wait):
		return nil
	}
}
