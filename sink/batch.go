package sink

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/chinsert"
	"github.com/muckwatch/muckwatch/record"
)

// Batch is what one ClickHouse.Write stores. Reuse it: Reset empties it and keeps the capacity.
type Batch struct {
	Fixes    []record.Fix
	Events   []record.Event
	Officers []record.OfficerPosition
	Changes  []detectors.Change
	Rejects  []record.Reject
}

// Reset empties b, keeping its slices' capacity. It clears the elements so that the batch does
// not keep the last records' strings and byte slices alive.
func (b *Batch) Reset() {
	clear(b.Fixes)
	clear(b.Events)
	clear(b.Officers)
	clear(b.Changes)
	clear(b.Rejects)
	b.Fixes, b.Events, b.Officers, b.Changes, b.Rejects = b.Fixes[:0], b.Events[:0], b.Officers[:0], b.Changes[:0], b.Rejects[:0]
}

// Len returns the number of records in b.
func (b *Batch) Len() int {
	return len(b.Fixes) + len(b.Events) + len(b.Officers) + len(b.Changes) + len(b.Rejects)
}

// inserter inserts rows of type T into one table.
type inserter[T any] struct {
	c     *ClickHouse
	table string
	cols  []colSpec[T]
	// kept: column buffers of inserts done, for the next (a sync.Pool's would be dropped at every
	// other collection, and built again from nothing)
	kept chan *insertBufs
	// ins sends the inserts, keeping sent batches to be sent again with their column buffers
	// reset rather than grown from nothing on every insert (not for a table of few, possibly
	// huge rows, nor after an insert much larger than the table's usual ones).
	ins *chinsert.Insert

	// failed: the last insert failed transiently, so the next one is a retry
	failed atomic.Bool

	rows, errors, retries prometheus.Counter
	batchRows, seconds    prometheus.Observer
}

// newInserter returns an inserter into table. A sent batch of at most keepRows rows keeps its
// column buffers for the next insert (math.MaxInt: every one, for tables whose inserts are alike
// in size; 0: none).
func newInserter[T any](c *ClickHouse, table string, cols []colSpec[T], keepRows int) *inserter[T] {
	names := make([]string, len(cols))
	for i, cs := range cols {
		names[i] = cs.name
	}
	// ClickHouse 18.16 needs the explicit column list
	query := "INSERT INTO " + c.cfg.Database + "." + table + " (" + strings.Join(names, ", ") + ")"
	return &inserter[T]{
		c:         c,
		table:     table,
		cols:      cols,
		kept:      make(chan *insertBufs, keptInserts),
		ins:       chinsert.New(c.conn, query, len(cols), keepRows),
		rows:      c.m.rows.WithLabelValues(table),
		errors:    c.m.errors.WithLabelValues(table),
		retries:   c.m.retries.WithLabelValues(table),
		batchRows: c.m.batchRows.WithLabelValues(table),
		seconds:   c.m.seconds.WithLabelValues(table),
	}
}

// insertBufs is what one insert builds its columns in: a buffer a column, and the feed that
// appends them to clickhouse-go's columns.
type insertBufs struct {
	cols []any
	feed *columnFeed
}

// keptInserts is how many inserts' buffers an inserter keeps: one is sent at a time, and a second
// while an insert abandoned by its caller goes on.
const keptInserts = 2

func (in *inserter[T]) getBufs() *insertBufs {
	select {
	case b := <-in.kept:
		return b
	default:
		return &insertBufs{cols: make([]any, len(in.cols)), feed: newColumnFeed()}
	}
}

func (in *inserter[T]) putBufs(b *insertBufs) {
	for i, cs := range in.cols {
		cs.clear(b.cols[i])
	}
	select {
	case in.kept <- b:
	default:
	}
}

// insert inserts rows (nothing when empty) in one attempt and returns when ClickHouse
// acknowledged them, or with the error, saying the table and the row count.
//
// It does not retry, not even a transient failure: retrying is the pipeline's (pipeline's
// stages.retry), which keeps the batch's offsets uncommitted, counts the failure and holds back for
// as long as ClickHouse fails. Retrying here as well made two layers of back-off: an outage went
// unseen by the pipeline's metrics for the inserter's attempts, then the pipeline retried the
// whole write with the inserter's attempts again. An insert that follows a transient failure of
// the table's last one (the pipeline's retry) counts in muckwatch_clickhouse_retries_total.
func (in *inserter[T]) insert(ctx context.Context, rows []T, now int64) error {
	if len(rows) == 0 {
		return nil
	}
	if in.failed.Swap(false) {
		in.retries.Inc()
	}
	bufs := in.getBufs()
	abandoned := false
	defer func() {
		if !abandoned {
			in.putBufs(bufs)
		}
	}()
	for i, cs := range in.cols {
		bufs.cols[i] = cs.build(rows, now, bufs.cols[i])
	}
	start := time.Now()
	var err error
	if abandoned, err = in.send(ctx, bufs); err != nil {
		in.errors.Inc()
		if transient(err) {
			in.c.m.up.Set(0)
			in.failed.Store(true)
		}
		return fmt.Errorf("cannot insert %d rows into %s: %w", len(rows), in.table, err)
	}
	in.seconds.Observe(time.Since(start).Seconds())
	in.rows.Add(float64(len(rows)))
	in.batchRows.Observe(float64(len(rows)))
	in.c.m.up.Set(1)
	return nil
}

// send makes one attempt at inserting bufs (chinsert.Insert.Send). abandoned reports that ctx
// ended first: the insert goes on, and bufs are still its own (not to be reused).
func (in *inserter[T]) send(ctx context.Context, bufs *insertBufs) (abandoned bool, err error) {
	return in.ins.Send(ctx, func(cols []column.Interface) error {
		for i, b := range bufs.cols {
			if err := bufs.feed.appendTo(cols[i], in.cols[i].valuesOf(b)); err != nil {
				bufs.feed = newColumnFeed() // this one may hold the rest of the values
				return fmt.Errorf("column %s: %w", in.cols[i].name, err)
			}
		}
		return nil
	})
}
