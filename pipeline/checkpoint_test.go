package pipeline

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/internal/statetopic"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/sink"
)

// nopHistory stores nothing: ClickHouse for a test of the stages alone.
type nopHistory struct{}

func (nopHistory) Write(context.Context, *sink.Batch) error { return nil }

// stateFeed keeps the keys of each checkpoint write, in order, and tells each on wrote.
type stateFeed struct {
	mu     sync.Mutex
	writes [][]string
	wrote  chan []string
}

func (f *stateFeed) Write(context.Context, []detectors.Change, []record.Reject) error { return nil }
func (f *stateFeed) WriteMisrouted(context.Context, []record.Misrouted) error         { return nil }
func (f *stateFeed) WriteState(_ context.Context, keys, _ [][]byte, _ []int32) error {
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = string(k)
	}
	f.mu.Lock()
	f.writes = append(f.writes, ks)
	f.mu.Unlock()
	f.wrote <- ks
	return nil
}

// runCheckpointingStages returns the sample city and the pipeline's stages over it, running (until
// the test ends) with the checkpoint interval given, ClickHouse's writes dropped and the
// checkpoints' keys sent on feed.wrote, write by write.
func runCheckpointingStages(t *testing.T, interval time.Duration) (*city.City, *stages, *stateFeed) {
	t.Helper()
	feed := &stateFeed{wrote: make(chan []string, 64)}
	c, p := runStages(t, interval, nopHistory{}, feed)
	return c, p, feed
}

// runStages returns the sample city and the pipeline's stages over it, writing to history and
// feed, running until the test ends with the checkpoint interval given.
func runStages(t *testing.T, interval time.Duration, history historyWriter, feed feedWriter) (*city.City, *stages) {
	t.Helper()
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	engine, err := detectors.NewEngine(detectors.Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newStages(StagesConfig{CheckpointInterval: interval}, engine, history, feed, slog.New(slog.DiscardHandler), nil)
	p.group = "g"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return c, p
}

// The detector state is checkpointed on an interval, not with every batch: a batch judged at t
// is covered by a checkpoint taken no later than t + checkpoint_interval (its offsets are
// committed with that checkpoint, so a crash reads at most that much input again, see
// ingest.TestConsumerHeldOffsets), checkpoints are no more frequent than the interval, every
// vehicle touched in between is in the next one, and the end of a generation forces one.
func TestCheckpointInterval(t *testing.T) {
	const interval = 2 * time.Second
	c, p, feed := runCheckpointingStages(t, interval)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	now := t0
	p.now = func() time.Time { return now }

	ll := c.Proj.Inverse(c.Proj.Forward(c.Origin))
	shard := record.Shard{Topic: "muck.gps", Partition: 0}
	batch := func(i int, plates ...string) *ingest.Batch {
		b := &ingest.Batch{}
		for _, plate := range plates {
			b.Fixes = append(b.Fixes, record.Fix{VehicleID: plate, Time: t0.Add(time.Duration(i) * time.Second), Lat: ll[1], Lon: ll[0],
				SpeedKmh: 20, HasSpeed: true, Src: record.Source{Shard: shard}})
		}
		return b
	}
	plates := []string{"粤B10001", "粤B10002", "粤B10003", "粤B10004", "粤B10005", "粤B10006", "粤B10007"}
	var (
		checkpoints []time.Time         // when each was taken
		want        = map[string]bool{} // every vehicle touched
		uncovered   []time.Time         // batches judged since the last checkpoint
	)
	took := func() {
		t.Helper()
		if p.checkpointed.Equal(now) && (len(checkpoints) == 0 || checkpoints[len(checkpoints)-1] != now) {
			checkpoints = append(checkpoints, now)
			for _, at := range uncovered {
				if now.Sub(at) > interval {
					t.Errorf("a batch judged at +%s was first covered by the checkpoint at +%s: more than %s", at.Sub(t0), now.Sub(t0), interval)
				}
			}
			uncovered = uncovered[:0]
		}
	}
	const step = 300 * time.Millisecond
	for i := range 40 {
		now = t0.Add(time.Duration(i) * step)
		plate := plates[i%len(plates)]
		uncovered = append(uncovered, now)
		want[plate] = true
		if err := p.Handle(ctx, batch(i, plate)); err != nil {
			t.Fatal(err)
		}
		took()
	}
	// the generation ends: a checkpoint at once, with the vehicles touched since the last one
	now = now.Add(step)
	last := "粤B19999"
	uncovered = append(uncovered, now)
	want[last] = true
	if err := p.Handle(ctx, batch(40, last)); err != nil {
		t.Fatal(err)
	}
	took()
	if err := p.Checkpoint(ctx, &ingest.Batch{}); err != nil {
		t.Fatal(err)
	}
	took()
	if len(uncovered) != 0 {
		t.Fatalf("%d batches not covered by a checkpoint after the generation's end", len(uncovered))
	}
	lastKey := string(statetopic.AppendKey(nil, "g", last))
	timeout := time.After(30 * time.Second)
wait:
	for {
		select {
		case ks := <-feed.wrote:
			if slices.Contains(ks, lastKey) {
				break wait
			}
		case <-timeout:
			t.Fatal("the last checkpoint was not written within 30 s")
		}
	}
	for i := 1; i < len(checkpoints)-1; i++ { // the last was forced
		if gap := checkpoints[i].Sub(checkpoints[i-1]); gap < interval {
			t.Errorf("checkpoints at +%s and +%s: closer than the interval %s", checkpoints[i-1].Sub(t0), checkpoints[i].Sub(t0), interval)
		}
	}
	batches := 41
	if n := len(checkpoints); n < batches*int(step)/int(interval) || n > batches*int(step)/int(interval)+2 {
		t.Errorf("%d checkpoints over %d batches %s apart, want one each %s", n, batches, step, interval)
	}
	feed.mu.Lock()
	defer feed.mu.Unlock()
	if len(feed.writes) > len(checkpoints) {
		t.Errorf("%d checkpoint writes for %d checkpoints: written with batches that carry none", len(feed.writes), len(checkpoints))
	}
	written := map[string]bool{}
	for _, ks := range feed.writes {
		for _, k := range ks {
			written[k] = true
		}
	}
	for plate := range want {
		if k := string(statetopic.AppendKey(nil, "g", plate)); !written[k] {
			t.Errorf("vehicle %s touched but never checkpointed", plate)
		}
	}
	if len(written) != len(want) {
		t.Errorf("checkpoints of %v, want those of %v", slices.Sorted(maps.Keys(written)), slices.Sorted(maps.Keys(want)))
	}
}

// TestCheckpointWhenIdle: once the input pauses (the consumer's idle tick), what was judged since
// the last checkpoint is checkpointed at once, not an interval later; a pause with nothing new
// takes no checkpoint.
func TestCheckpointWhenIdle(t *testing.T) {
	c, p, feed := runCheckpointingStages(t, time.Hour)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	now := t0
	p.now = func() time.Time { return now }

	ll := c.Proj.Inverse(c.Proj.Forward(c.Origin))
	fix := func(plate string, at time.Time) *ingest.Batch {
		return &ingest.Batch{Fixes: []record.Fix{{VehicleID: plate, Time: at, Lat: ll[1], Lon: ll[0], SpeedKmh: 20, HasSpeed: true,
			Src: record.Source{Shard: record.Shard{Topic: "muck.gps"}}}}}
	}
	// the first batch takes the first checkpoint (none was taken yet); the next ones wait for
	// the hour's interval
	for i, plate := range []string{"粤B10001", "粤B10002", "粤B10003"} {
		now = t0.Add(time.Duration(i) * time.Second)
		if err := p.Handle(ctx, fix(plate, now)); err != nil {
			t.Fatal(err)
		}
	}
	if !p.checkpointed.Equal(t0) {
		t.Fatalf("checkpointed at %s, want only the first batch's at %s", p.checkpointed, t0)
	}
	now = now.Add(time.Second)
	if err := p.Idle(ctx, &ingest.Batch{}); err != nil {
		t.Fatal(err)
	}
	if !p.checkpointed.Equal(now) {
		t.Fatalf("the first idle tick after two batches did not checkpoint (last at %s)", p.checkpointed)
	}
	// (the writer may write both checkpoints together)
	written := map[string]bool{}
	for _, want := range []string{"粤B10001", "粤B10002", "粤B10003"} {
		key := string(statetopic.AppendKey(nil, "g", want))
		for !written[key] {
			select {
			case ks := <-feed.wrote:
				for _, k := range ks {
					written[k] = true
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("%s was not checkpointed after the idle tick", want)
			}
		}
	}
	idled := now
	now = now.Add(time.Second)
	if err := p.Idle(ctx, &ingest.Batch{}); err != nil {
		t.Fatal(err)
	}
	if !p.checkpointed.Equal(idled) {
		t.Errorf("an idle tick with nothing judged since the last checkpoint took one at %s", p.checkpointed)
	}
}
