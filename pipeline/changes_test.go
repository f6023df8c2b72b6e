package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/sink"
)

// writeLog keeps what the stages wrote, in order: ClickHouse's writes ("records N" and
// "changes N") and the state topic's ("state").
type writeLog struct {
	mu      sync.Mutex
	entries []string
	changes map[string]bool // the alert ids of the changes written
	wrote   chan string
}

func (l *writeLog) add(e string) {
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
	l.wrote <- e
}

// Write implements History: a write of records and one of alert changes are logged apart (the
// stages write them side by side).
func (l *writeLog) Write(_ context.Context, b *sink.Batch) error {
	if len(b.Changes) > 0 {
		l.mu.Lock()
		for _, c := range b.Changes {
			l.changes[c.Alert.ID] = true
		}
		l.mu.Unlock()
		l.add(fmt.Sprintf("changes %d", len(b.Changes)))
	}
	if n := len(b.Fixes); n > 0 {
		l.add(fmt.Sprintf("records %d", n))
	}
	return nil
}

type logFeed struct{ l *writeLog }

func (f logFeed) Write(context.Context, []detectors.Change, []record.Reject) error { return nil }
func (f logFeed) WriteMisrouted(context.Context, []record.Misrouted) error         { return nil }
func (f logFeed) WriteState(context.Context, [][]byte, [][]byte, []int32) error {
	f.l.add("state")
	return nil
}

// TestAlertChangesWaitForCheckpoints: the alert changes are not inserted with every write's
// records (each insert makes ClickHouse parts; see writeChangesEvery). Those of a batch without
// checkpoints are written up to writeChangesEvery later, alone if nothing else comes; those before
// a batch with checkpoints are all written before its checkpoints are produced.
func TestAlertChangesWaitForCheckpoints(t *testing.T) {
	log := &writeLog{changes: map[string]bool{}, wrote: make(chan string, 64)}
	c, p := runStages(t, time.Hour, log, logFeed{log})
	engine, ctx := p.engine, t.Context()

	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return t0 }
	p.checkpointed = t0 // the next checkpoints an hour away
	origin := c.Proj.Forward(c.Origin)
	shard := record.Shard{Topic: "muck.gps", Partition: 0}
	// a plate the city does not know, on the move: its fixes open an unlicensed alert
	unknown := func(plate string) *ingest.Batch {
		b := &ingest.Batch{}
		for i := range 3 {
			ll := c.Proj.Inverse([2]float64{origin[0] + 55*float64(i), origin[1]})
			b.Fixes = append(b.Fixes, record.Fix{VehicleID: plate, Time: t0.Add(time.Duration(i) * 10 * time.Second), Lat: ll[1], Lon: ll[0],
				SpeedKmh: 20, HasSpeed: true, Src: record.Source{Shard: shard, Offset: int64(i)}})
		}
		return b
	}
	next := func(what string) string {
		t.Helper()
		select {
		case e := <-log.wrote:
			return e
		case <-time.After(30 * time.Second):
			t.Fatalf("nothing written within 30 s, waiting for %s", what)
			return ""
		}
	}
	opened := func() []string {
		var ids []string
		for _, ch := range engine.Changes() {
			if ch.Kind == detectors.ChangeOpened {
				ids = append(ids, ch.Alert.ID)
			}
		}
		return ids
	}

	// 1. A batch without checkpoints: its records at once, its changes on their own a second on.
	if err := p.Handle(ctx, unknown("粤Z00001")); err != nil {
		t.Fatal(err)
	}
	first := opened()
	if len(first) == 0 {
		t.Fatal("the unknown plate's fix opened no alert")
	}
	if e := next("the first batch's records"); e != "records 3" {
		t.Fatalf("first written: %q, want the batch's records alone (its changes wait)", e)
	}
	if e := next("the first batch's changes"); !strings.HasPrefix(e, "changes ") {
		t.Fatalf("then written: %q, want the waiting changes", e)
	}

	// 2. A batch without checkpoints, then one with: every change is in ClickHouse before the
	// checkpoints are produced.
	if err := p.Handle(ctx, unknown("粤Z00002")); err != nil {
		t.Fatal(err)
	}
	second := opened()
	if err := p.Checkpoint(ctx, &ingest.Batch{}); err != nil {
		t.Fatal(err)
	}
	var changesWritten bool
	for e := next("the checkpoint"); e != "state"; e = next("the checkpoint") {
		changesWritten = changesWritten || strings.HasPrefix(e, "changes ")
	}
	if !changesWritten {
		t.Fatal("checkpoints produced before the changes they follow from were written")
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, id := range append(first, second...) {
		if !log.changes[id] {
			t.Errorf("alert %s opened but its change never written", id)
		}
	}
}
