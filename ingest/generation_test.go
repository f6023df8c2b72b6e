package ingest

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// A batch is started only while one is free and a full one fits in the records and bytes
// budgets; the most recently done is filled next, emptied.
func TestFlights(t *testing.T) {
	cfg := ConsumerConfig{BatchesInFlight: 3, BatchMaxRecords: 10, BatchMaxBytes: 100} // budgets: recordsInFlight × 10 records, 200 bytes
	type step struct {
		op            string // take, hand, done
		at            int    // the flight taken at step at (take: the flight is numbered by its step)
		records, size int    // hand: what the flight holds
		want          bool   // take: a flight is returned
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no more than BatchesInFlight", []step{
			{op: "take", want: true}, {op: "take", want: true}, {op: "take", want: true}, {op: "take", want: false},
			{op: "done", at: 1}, {op: "take", want: true},
		}},
		{"the bytes budget", []step{
			{op: "take", want: true}, {op: "hand", at: 0, size: 150}, {op: "take", want: false},
			{op: "done", at: 0}, {op: "take", want: true},
		}},
		{"the records budget", []step{
			{op: "take", want: true}, {op: "hand", at: 0, records: recordsInFlight*10 - 9}, {op: "take", want: false},
			{op: "done", at: 0}, {op: "take", want: true},
		}},
		{"a full batch that fits exactly", []step{
			{op: "take", want: true}, {op: "hand", at: 0, records: recordsInFlight*10 - 10, size: 100}, {op: "take", want: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlights(cfg)
			taken := map[int]*flight{}
			for i, s := range tt.steps {
				switch s.op {
				case "take":
					f := fs.take()
					if (f != nil) != s.want {
						t.Fatalf("step %d: take = %v, want a flight: %v", i, f, s.want)
					}
					taken[i] = f
				case "hand":
					f := taken[s.at]
					f.records, f.bytes = s.records, s.size
					fs.hand(f)
				case "done":
					fs.done(taken[s.at])
					select {
					case <-fs.freed:
					default:
						t.Fatalf("step %d: done did not signal freed", i)
					}
				}
			}
		})
	}

	// the most recently done is filled next, emptied
	fs := newFlights(cfg)
	a, b := fs.take(), fs.take()
	a.records, a.marks = 5, append(a.marks, partitionMark{next: 9})
	a.b.Fixes = append(a.b.Fixes, a.b.Fixes...)
	fs.hand(a)
	fs.done(b)
	fs.done(a)
	if f := fs.take(); f != a || f.records != 0 || len(f.marks) != 0 || f.b.Len() != 0 {
		t.Errorf("take after done(b), done(a) = %p with %d records, %d marks; want a (%p), emptied", f, f.records, len(f.marks), a)
	}
	if fs.records != 0 || fs.bytes != 0 {
		t.Errorf("nothing in flight, yet %d records and %d bytes counted", fs.records, fs.bytes)
	}
}

// idleHandler is a Handler that is also a Rebalancer and an Idler: it reports its calls.
type idleHandler struct {
	mu         sync.Mutex
	rebalances []Rebalance
	idles      chan struct{}
	fixes      chan int
}

func (h *idleHandler) Handle(_ context.Context, b *Batch) error {
	h.fixes <- len(b.Fixes)
	b.Done(nil)
	return nil
}

func (h *idleHandler) Idle(_ context.Context, b *Batch) error {
	if b.Len() != 0 {
		panic("an idle batch holds records")
	}
	select {
	case h.idles <- struct{}{}:
	default:
	}
	b.Done(nil)
	return nil
}

func (h *idleHandler) Rebalanced(_ context.Context, r Rebalance) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rebalances = append(h.rebalances, r)
	return nil
}

// A generation starts with the handler told which partitions are added (and which are read to
// their end already); while no record comes the handler gets idle ticks; records come through as
// batches; a stop returns nil once what was read is handled.
func TestConsumerRebalanceAndIdle(t *testing.T) {
	addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
	c, err := NewConsumer(ConsumerConfig{Brokers: []string{addr}, GroupID: "idle", BatchMaxWait: 20 * time.Millisecond},
		nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &idleHandler{idles: make(chan struct{}, 1), fixes: make(chan int, 64)}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, h) }()

	select {
	case <-h.idles:
	case <-ctx.Done():
		t.Fatal("no idle tick while no record came")
	}
	h.mu.Lock()
	if len(h.rebalances) != 1 {
		t.Fatalf("%d rebalances before the first idle tick, want 1", len(h.rebalances))
	}
	r := h.rebalances[0]
	h.mu.Unlock()
	var want []TopicPartition
	for _, topic := range []string{"muck.events", "muck.gps", "muck.officers"} {
		for p := range int32(2) {
			want = append(want, TopicPartition{topic, p})
		}
	}
	if !slices.Equal(r.Owned, want) || !slices.Equal(r.Added, want) || !slices.Equal(r.CaughtUp, want) || len(r.Revoked) != 0 {
		t.Errorf("first generation: %+v; want every partition owned, added and caught up", r)
	}

	produceFixes(t, addr, "muck.gps", 0, 20)
	for n := 0; n < 20; {
		select {
		case k := <-h.fixes:
			n += k
		case <-ctx.Done():
			t.Fatalf("%d of 20 fixes handed in", n)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("a stop: %v, want nil", err)
	}
}
