package ingest

import (
	"context"
	"strconv"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// Batch is what the consumer hands downstream: the decoded records of a run of Kafka messages and
// the rejected ones. The consumer reuses a Batch once it is done (see Handler); a handler must
// not keep its slices after calling Done.
type Batch struct {
	Fixes    []record.Fix
	Events   []record.Event
	Officers []record.OfficerPosition
	Rejects  []record.Reject
	// Misrouted are fixes and events to re-key (kafka.rekey): produced to their re-keyed topic's
	// right partition before the batch is done, and judged once read from there.
	Misrouted []record.Misrouted
	// Fetched is when the first message of the batch was fetched, for latency measurement.
	Fetched time.Time
	done    chan Verdict // the handler's verdict, read by the consumer's committer
	lean    int          // consecutive Resets that found a large slice mostly unused
}

// Verdict is what a handler said of a batch: Done (Err, or nil), Written (Held), or
// WrittenCommitLater (Later).
type Verdict struct {
	Err  error
	Held bool // written, but its offsets wait for a later batch's Done
	// Later: written, and its offsets (and those held before it) are committed once an error or
	// nil comes from it: nil, committed; an error, as Done(err)
	Later <-chan error
}

// NewBatch returns an empty batch for driving a Handler without a consumer (a test, a tool), and
// the channel that receives what the handler says of it (the first Done or Written).
func NewBatch() (*Batch, <-chan Verdict) {
	done := make(chan Verdict, 1)
	return &Batch{done: done}, done
}

// Done reports that the batch is durably written (err nil), or cannot be. With err nil the
// offsets of this batch and of every batch before it are committed (those Written included).
// Only the first call of Done or Written counts.
func (b *Batch) Done(err error) { b.tell(Verdict{Err: err}) }

// Written reports that the batch is durably written but its offsets must not be committed yet:
// the handler's state that covers it is not (a checkpoint taken on an interval). The batch is
// freed to be filled again, and its offsets are committed with the next batch that is Done.
// A consumer stopped before that reads those records again.
func (b *Batch) Written() { b.tell(Verdict{Held: true}) }

// WrittenCommitLater reports that the batch is durably written and that the handler's state that
// covers it, and the batches before it, is being saved: the batch is freed to be filled again at
// once, as with Written, and its offsets and theirs are committed once commit is called with
// nil (the state is saved). Called with an error, nothing more is committed, as with Done(err).
// The batches handed in after it go on meanwhile; the commit functions of several batches must be
// called in the order the batches were handed in. Only the first call of Done, Written or
// WrittenCommitLater counts, and of commit.
func (b *Batch) WrittenCommitLater() (commit func(err error)) {
	later := make(chan error, 1)
	b.tell(Verdict{Later: later})
	return func(err error) {
		select {
		case later <- err:
		default:
		}
	}
}

func (b *Batch) tell(v Verdict) {
	if b.done == nil {
		return // a batch the consumer did not hand out (a test's)
	}
	select {
	case b.done <- v:
	default:
	}
}

// Len is the number of records in the batch, rejects included.
func (b *Batch) Len() int {
	return len(b.Fixes) + len(b.Events) + len(b.Officers) + len(b.Rejects) + len(b.Misrouted)
}

// Reset empties the batch, keeping its capacity unless it has used little of a large one for
// shrinkAfter fills in a row (a batch of a backlog now filled by live traffic): what batches keep
// follows what they hold, and live traffic, whose batches vary in size (a few larger ones after
// every pause), does not drop and regrow them.
func (b *Batch) Reset() {
	if oversized(b.Fixes) || oversized(b.Events) || oversized(b.Officers) {
		b.lean++
	} else {
		b.lean = 0
	}
	drop := b.lean >= shrinkAfter
	if drop {
		b.lean = 0
	}
	b.Fixes = empty(b.Fixes, drop)
	b.Events = empty(b.Events, drop)
	b.Officers = empty(b.Officers, drop)
	for i := range b.Rejects {
		b.Rejects[i] = record.Reject{} // drop references to message bytes
	}
	b.Rejects = b.Rejects[:0]
	clear(b.Misrouted)
	b.Misrouted = b.Misrouted[:0]
	b.Fetched = time.Time{}
	select { // a verdict left unread when the drain timeout gave up on this batch
	case <-b.done:
	default:
	}
}

// shrinkAfter is how many fills in a row must leave a large slice of a batch mostly unused before
// Reset drops it.
const shrinkAfter = 8

// oversized reports whether s is large and less than a quarter used.
func oversized[T any](s []T) bool { return cap(s) > 1024 && len(s) < cap(s)/4 }

// empty empties s, keeping no references to the records' strings; drop lets an oversized s go.
func empty[T any](s []T, drop bool) []T {
	if drop && oversized(s) {
		return nil
	}
	clear(s)
	return s[:0]
}

// Handler is what the consumer needs downstream. Handle takes a batch in and may return before it
// is written (judging the next batch while this one is written); it calls b.Done once everything
// in the batch is durably written, or cannot be, or b.Written once it is written but its offsets
// are to wait (see Batch.Written). The consumer commits a batch's offsets only once it and every
// batch handed in before it are done, and keeps at most ConsumerConfig.BatchesInFlight batches
// handed in and neither done nor written. An error, from Handle or Done,
// stops the consumer without committing, so the records are read again after a restart.
type Handler interface {
	Handle(ctx context.Context, b *Batch) error
}

// HandlerFunc adapts a function that returns once the batch is written to Handler.
type HandlerFunc func(ctx context.Context, b *Batch) error

// Handle calls f and, if it succeeded, b.Done.
func (f HandlerFunc) Handle(ctx context.Context, b *Batch) error {
	if err := f(ctx, b); err != nil {
		return err
	}
	b.Done(nil)
	return nil
}

// TopicPartition names one input partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String is "topic/partition".
func (tp TopicPartition) String() string { return tp.Topic + "/" + strconv.Itoa(int(tp.Partition)) }

// Rebalance is what changed for this instance when its consumer group entered a new generation.
type Rebalance struct {
	Generation int32
	// Owned are the partitions this instance reads in this generation.
	Owned []TopicPartition
	// Added are owned partitions that were not read by this instance in the generation before:
	// state kept per partition (detector state) must be restored for them, as another instance
	// may have moved them on since.
	Added []TopicPartition
	// Revoked are partitions read in the generation before that are no longer owned: their state
	// belongs to another instance now.
	Revoked []TopicPartition
	// CaughtUp are added partitions with nothing to read after their committed offset: no record
	// of theirs will come to say they are read, yet their vehicles' silence is real.
	CaughtUp []TopicPartition
}

// Rebalancer is implemented by a Handler that keeps state per partition. Rebalanced is called at
// the start of every generation, before any record of it is handled; an error stops the consumer.
type Rebalancer interface {
	Rebalanced(ctx context.Context, r Rebalance) error
}

// Checkpointer is implemented by a Handler that checkpoints its state on an interval and calls
// Batch.Written for the batches in between. Checkpoint is called with an empty batch at the end of
// every generation (a rebalance, a stop), once every batch read in it has been handed in: the
// handler checkpoints its state and calls b.Done, so that what the generation read is committed
// before its partitions may go to another instance; its error stops the consumer.
type Checkpointer interface {
	Checkpoint(ctx context.Context, b *Batch) error
}

// Idler is implemented by a Handler with time-driven decisions: Idle is called about once a
// second while no record arrives, so that decisions waiting for quiet partitions to stop holding
// back the event time are taken without new records. b is an empty batch, to be done like any
// other (what the decisions produced is written in order with the batches); its error stops the
// consumer.
type Idler interface {
	Idle(ctx context.Context, b *Batch) error
}
