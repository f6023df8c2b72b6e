package sink

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
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
	query string // INSERT INTO db.table (col, …): ClickHouse 18.16 needs the explicit list
	cols  []colSpec[T]
	bufs  sync.Pool // of *[]any, one buffer per column
	// sent holds batches whose last send succeeded, to be sent again with their column buffers
	// reset rather than grown from nothing on every insert (nil: a table of few, possibly huge
	// rows, whose buffers are not kept).
	sent chan *sentBatch

	// failed: the last insert failed transiently, so the next one is a retry
	failed atomic.Bool

	rows, errors, retries prometheus.Counter
	batchRows, seconds    prometheus.Observer
}

// sentBatch is a clickhouse-go batch that was sent successfully, with its columns. Sent again, it
// starts a new INSERT on a connection from the pool (clickhouse-go's resetConnection).
//
// Batches are prepared with a context that is never cancelled: clickhouse-go's Send watches the
// batch's context to close its connection, and for a batch sent again that watch reads the
// connection field resetConnection writes (a data race on cancellation; the connection closed
// could be one the pool has since given to another insert). The caller's context is watched by
// send instead, which returns when it ends and leaves the insert to finish on its own.
type sentBatch struct {
	bt   driver.Batch
	cols []column.Interface
}

// keptBatches is how many sent batches an inserter keeps: a write inserts into each table once,
// but an insert its caller gave up on (send's abandoned) may still be under way beside the next.
const keptBatches = 2

// newInserter returns an inserter into table; reuse keeps sent batches' column buffers for the
// next insert (for tables whose inserts are alike in size).
func newInserter[T any](c *ClickHouse, table string, cols []colSpec[T], reuse bool) *inserter[T] {
	names := make([]string, len(cols))
	for i, cs := range cols {
		names[i] = cs.name
	}
	in := &inserter[T]{
		c:         c,
		table:     table,
		query:     "INSERT INTO " + c.cfg.Database + "." + table + " (" + strings.Join(names, ", ") + ")",
		cols:      cols,
		rows:      c.m.rows.WithLabelValues(table),
		errors:    c.m.errors.WithLabelValues(table),
		retries:   c.m.retries.WithLabelValues(table),
		batchRows: c.m.batchRows.WithLabelValues(table),
		seconds:   c.m.seconds.WithLabelValues(table),
	}
	if reuse {
		in.sent = make(chan *sentBatch, keptBatches)
	}
	return in
}

func (in *inserter[T]) getBufs() *[]any {
	if v, ok := in.bufs.Get().(*[]any); ok {
		return v
	}
	b := make([]any, len(in.cols))
	return &b
}

func (in *inserter[T]) putBufs(b *[]any) {
	for i, cs := range in.cols {
		cs.clear((*b)[i])
	}
	in.bufs.Put(b)
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
		(*bufs)[i] = cs.build(rows, now, (*bufs)[i])
	}
	start := time.Now()
	var err error
	if abandoned, err = in.send(ctx, *bufs); err != nil {
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

// send makes one attempt: it inserts bufs on a goroutine of its own (sendBatch) and waits for it
// or for ctx to end. abandoned reports that ctx ended first: the insert goes on until ClickHouse
// answers or the connection fails, and bufs are still its own (not to be reused).
func (in *inserter[T]) send(ctx context.Context, bufs []any) (abandoned bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- in.sendBatch(bufs) }()
	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// sendBatch prepares the insert (or takes a batch sent before, emptied), appends the columns,
// sends them and waits for the server's acknowledgement. A batch whose send failed is dropped:
// clickhouse-go released its connection, and the next attempt prepares a new one.
func (in *inserter[T]) sendBatch(bufs []any) error {
	var sb *sentBatch
	select {
	case sb = <-in.sent: // never ready when in.sent is nil
	default:
	}
	if sb == nil {
		bt, err := in.c.conn.PrepareBatch(context.Background(), in.query)
		if err != nil {
			return err
		}
		sb = &sentBatch{bt: bt, cols: bt.Columns()}
		if len(sb.cols) != len(bufs) {
			_ = bt.Abort()
			return fmt.Errorf("the insert into %s has %d columns, the table spec %d", in.table, len(sb.cols), len(bufs))
		}
	} else {
		for _, c := range sb.cols {
			c.Reset()
		}
	}
	for i, b := range bufs {
		if _, err := sb.cols[i].Append(in.cols[i].valuesOf(b)); err != nil {
			_ = sb.bt.Abort()
			return fmt.Errorf("column %s: %w", in.cols[i].name, err)
		}
	}
	if err := sb.bt.Send(); err != nil {
		return err
	}
	select {
	case in.sent <- sb: // never ready when in.sent is nil
	default:
	}
	return nil
}
