package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
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

// newBatchingConsumer returns a consumer of group g at addr making batches of at most 10 records,
// inFlight of them at most handed in and not done.
func newBatchingConsumer(t *testing.T, addr string, inFlight int) *Consumer {
	t.Helper()
	cfg := ConsumerConfig{Brokers: []string{addr}, GroupID: "g", BatchMaxWait: 20 * time.Millisecond, BatchMaxRecords: 10, BatchesInFlight: inFlight}
	c, err := NewConsumer(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
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
			ids = append(ids, f.ID())
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

// stagedHandler takes batches in and leaves them to the test to finish, as the pipeline's writer
// does; it records how many were handed in and not done at most.
type stagedHandler struct {
	handed chan *Batch
	mu     sync.Mutex
	out    int
	maxOut int
}

func newStagedHandler() *stagedHandler { return &stagedHandler{handed: make(chan *Batch, 64)} }

func (h *stagedHandler) Handle(_ context.Context, b *Batch) error {
	h.mu.Lock()
	h.out++
	h.maxOut = max(h.maxOut, h.out)
	h.mu.Unlock()
	h.handed <- b
	return nil
}

// receive returns the next batch handed in, failing t when none comes within 30 s.
func (h *stagedHandler) receive(t *testing.T) *Batch {
	t.Helper()
	select {
	case b := <-h.handed:
		return b
	case <-time.After(30 * time.Second):
		t.Fatal("no batch handed in within 30 s")
		return nil
	}
}

func (h *stagedHandler) done(b *Batch, err error) {
	h.mu.Lock()
	h.out--
	h.mu.Unlock()
	b.Done(err)
}

// A handler that finishes batches after Handle returned (the pipeline judges the next batches
// while the writer writes the ones before): offsets are committed only once a batch and every
// batch handed in before it are done, whatever order they are done in, and no more than
// BatchesInFlight are handed in and not done.
func TestConsumerStagedHandler(t *testing.T) {
	addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
	produceFixes(t, addr, "muck.gps", 0, 60)
	cfg := ConsumerConfig{Brokers: []string{addr}, GroupID: "g", BatchMaxWait: 20 * time.Millisecond, BatchMaxRecords: 10, BatchesInFlight: 3}
	staged := func() (*Consumer, *stagedHandler) {
		c, err := NewConsumer(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, newStagedHandler()
	}
	receive := func(h *stagedHandler) *Batch { return h.receive(t) }

	// The first batch fails after the two behind it were written: nothing may be committed.
	c, h := staged()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, h) }()
	b1, b2, b3 := receive(h), receive(h), receive(h)
	boom := errors.New("ClickHouse is down")
	h.done(b3, nil)
	h.done(b2, nil)
	h.done(b1, boom)
	if err := <-errc; !errors.Is(err, boom) {
		t.Fatalf("want the first batch's write error, got %v", err)
	}
	ids, err := collect(t, newTestConsumer(t, addr), 60, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 60 {
		t.Fatalf("the first batch failed, so all 60 fixes must be read again; read %d", len(ids))
	}

	// Produced again under a new group: batches done three at a time, newest first, are all
	// committed; the group then reads only what comes after.
	cfg.GroupID = "g2"
	c, h = staged()
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel2()
	go func() { errc <- c.Run(ctx2, h) }()
	fixes := 0
	var pending []*Batch
	for fixes < 60 {
		b := receive(h)
		fixes += len(b.Fixes)
		pending = append(pending, b)
		if len(pending) == 3 || fixes >= 60 {
			for i := len(pending) - 1; i >= 0; i-- {
				h.done(pending[i], nil)
			}
			pending = pending[:0]
		}
	}
	cancel2()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if h.maxOut > cfg.BatchesInFlight {
		t.Errorf("%d batches were handed in and not done at once, want at most %d", h.maxOut, cfg.BatchesInFlight)
	}
	produceFixes(t, addr, "muck.gps", 60, 10)
	c2, err := NewConsumer(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ids, err = collect(t, c2, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 10 || ids[0] == "f-0" {
		t.Fatalf("after all batches were done the group must read only the 10 new fixes, read %d: %v", len(ids), ids)
	}
}

// heldHandler writes every batch at once but holds its offsets back (Batch.Written) except the
// doneAt-th, which it reports Done: as the pipeline does between checkpoints. It stops the consumer
// once want fixes were handed in.
type heldHandler struct {
	doneAt, batches, want int
	stop                  context.CancelFunc
	ids                   []string
	committed             map[string]bool // the ids up to the batch reported Done
	checkpoints           int
}

func (h *heldHandler) Handle(_ context.Context, b *Batch) error {
	h.batches++
	for _, f := range b.Fixes {
		h.ids = append(h.ids, f.ID())
	}
	if h.batches == h.doneAt {
		for _, id := range h.ids {
			h.committed[id] = true
		}
		b.Done(nil)
	} else {
		b.Written()
	}
	if len(h.ids) >= h.want {
		h.stop()
	}
	return nil
}

// checkpointingHandler is a heldHandler that is an ingest.Checkpointer: at the end of the
// generation it commits everything it was handed.
type checkpointingHandler struct{ *heldHandler }

func (h checkpointingHandler) Checkpoint(_ context.Context, b *Batch) error {
	h.checkpoints++
	if b.Len() != 0 {
		return fmt.Errorf("the end-of-generation batch holds %d records, want none", b.Len())
	}
	b.Done(nil)
	return nil
}

// Batches reported Written are freed at once (more of them pass than BatchesInFlight) but their
// offsets are committed only with a later batch reported Done: a consumer stopped without a
// checkpoint has the next one read from after the last batch Done; a Checkpointer is handed an
// empty batch at the end of the generation and everything read is committed.
func TestConsumerHeldOffsets(t *testing.T) {
	for _, tc := range []struct {
		name       string
		checkpoint bool
	}{{"stopped between checkpoints", false}, {"checkpoint at the generation's end", true}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
			produceFixes(t, addr, "muck.gps", 0, 60)
			const inFlight = 2
			c := newBatchingConsumer(t, addr, inFlight)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			h := &heldHandler{doneAt: 3, want: 60, stop: cancel, committed: map[string]bool{}}
			var handler Handler = h
			if tc.checkpoint {
				handler = checkpointingHandler{h}
			}
			if err := c.Run(ctx, handler); err != nil {
				t.Fatal(err)
			}
			if h.batches <= inFlight+1 {
				t.Fatalf("%d batches handed in: too few to show Written batches freed", h.batches)
			}
			if tc.checkpoint != (h.checkpoints == 1) {
				t.Fatalf("%d checkpoints at the generation's end", h.checkpoints)
			}
			produceFixes(t, addr, "muck.gps", 60, 10)
			want := 10
			if !tc.checkpoint {
				want += 60 - len(h.committed)
			}
			ids, err := collect(t, newTestConsumer(t, addr), want, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) != want {
				t.Fatalf("the next consumer read %d fixes, want %d", len(ids), want)
			}
			for _, id := range ids {
				if h.committed[id] || (tc.checkpoint && slices.Contains(h.ids, id)) {
					t.Errorf("fix %s read again after its offset was committed", id)
				}
			}
		})
	}
}

// A batch whose commit waits for the handler's state (Batch.WrittenCommitLater, the pipeline's
// checkpoint) is freed at once: more than BatchesInFlight batches are handed in while its commit
// waits. Its offsets are committed when the handler says so, in order; a later commit that fails
// commits nothing more.
func TestConsumerCommitLater(t *testing.T) {
	addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
	produceFixes(t, addr, "muck.gps", 0, 60)
	const inFlight = 2
	c := newBatchingConsumer(t, addr, inFlight)
	h := newStagedHandler()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, h) }()
	receive := func() *Batch { return h.receive(t) } // none: the consumer waits for a commit

	b1 := receive()
	first := len(b1.Fixes) // read before the batch is freed
	commit1 := b1.WrittenCommitLater()
	// twice the batches in flight, each written, while the first's commit waits
	var commit2 func(error)
	for i := range 2 * inFlight {
		b := receive()
		if i == 2*inFlight-1 {
			commit2 = b.WrittenCommitLater()
		} else {
			b.Written()
		}
	}
	go func() { // the rest written, held
		for {
			select {
			case b := <-h.handed:
				b.Written()
			case <-ctx.Done():
				return
			}
		}
	}()
	commit1(nil)
	boom := errors.New("the state topic is down")
	commit2(boom)
	if err := <-errc; !errors.Is(err, boom) {
		t.Fatalf("want the failed commit's error, got %v", err)
	}

	ids, err := collect(t, newTestConsumer(t, addr), 60-first, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 60-first {
		t.Fatalf("only the first batch of %d fixes was committed, so %d must be read again; read %d", first, 60-first, len(ids))
	}
}
