package sink

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

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

// colSpec is one column of a table: its name, and how to build the column's values from the
// rows, in a buffer that is reused from insert to insert.
type colSpec[T any] struct {
	name  string
	build func(rows []T, now int64, buf any) any // returns the buffer, built: a []E for E the column's Go type unless values is set
	// values returns what clickhouse-go appends from a built buffer (a []E); nil: the buffer
	// itself.
	values func(buf any) any
	clear  func(buf any) // drops references held by the buffer
}

// valuesOf returns the values of a buffer cs built.
func (cs *colSpec[T]) valuesOf(buf any) any {
	if cs.values == nil {
		return buf
	}
	return cs.values(buf)
}

// col is a column whose value is get(row).
func col[T, E any](name string, get func(r *T) E) colSpec[T] {
	return colSpec[T]{
		name: name,
		build: func(rows []T, _ int64, buf any) any {
			out, _ := buf.([]E)
			out = out[:0]
			for i := range rows {
				out = append(out, get(&rows[i]))
			}
			return out
		},
		clear: clearBuf[E],
	}
}

// nowCol is a column holding the time of the insert in Unix seconds (ingested_at).
func nowCol[T any](name string) colSpec[T] {
	return colSpec[T]{
		name: name,
		build: func(rows []T, now int64, buf any) any {
			out, _ := buf.([]int64)
			out = out[:0]
			for range rows {
				out = append(out, now)
			}
			return out
		},
		clear: clearBuf[int64],
	}
}

func clearBuf[E any](buf any) {
	b, _ := buf.([]E)
	clear(b)
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

// clampUnix returns t in Unix seconds within the range of ClickHouse's DateTime (UInt32): the
// zero time (an open alert's end) and anything before 1970 become 0.
func clampUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return min(max(t.Unix(), 0), 1<<32-1)
}

// unixMilli returns t in Unix milliseconds, and 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func positionColumns() []colSpec[record.Fix] {
	type r = record.Fix
	return []colSpec[r]{
		fixIDCol(),
		col("vehicle_id", func(f *r) string { return f.VehicleID }),
		col("ts", func(f *r) int64 { return clampUnix(f.Time) }),
		col("ts_ms", func(f *r) int64 { return unixMilli(f.Time) }),
		col("lat", func(f *r) float64 { return f.Lat }),
		col("lon", func(f *r) float64 { return f.Lon }),
		col("speed_kmh", func(f *r) float32 { return f.SpeedKmh }),
		col("has_speed", func(f *r) uint8 { return u8(f.HasSpeed) }),
		col("heading", func(f *r) float32 { return f.Heading }),
		col("has_heading", func(f *r) uint8 { return u8(f.HasHeading) }),
		col("acc", func(f *r) uint8 { return u8(f.ACC) }),
		col("lifted", func(f *r) uint8 { return u8(f.Lifted) }),
		col("alarm", func(f *r) uint32 { return f.Alarm }),
		col("topic", func(f *r) string { return f.Src.Topic }),
		col("kafka_partition", func(f *r) int32 { return f.Src.Partition }),
		col("kafka_offset", func(f *r) int64 { return f.Src.Offset }),
		nowCol[r]("ingested_at"),
	}
}

// fixIDs is the fix_id column's buffer. The id of a fix sent without event_id is derived here
// (record.Fix.AppendID) into an arena that every insert through the buffer reuses, rather than
// into a string of its own when the fix is decoded; ids point into the arena, and clickhouse-go
// copies them into its column when they are appended, before the arena is written again.
type fixIDs struct {
	arena []byte
	ids   []string
}

// maxDerivedIDExtra bounds what a derived id adds to its plate: '@' and a decimal int64.
const maxDerivedIDExtra = 1 + 20

func fixIDCol() colSpec[record.Fix] {
	return colSpec[record.Fix]{
		name: "fix_id",
		build: func(rows []record.Fix, _ int64, buf any) any {
			b, _ := buf.(*fixIDs)
			if b == nil {
				b = new(fixIDs)
			}
			// The arena gets room for every derived id first: it must not move once strings
			// point into it.
			need := 0
			for i := range rows {
				if rows[i].FixID == "" {
					need += len(rows[i].VehicleID) + maxDerivedIDExtra
				}
			}
			b.arena, b.ids = slices.Grow(b.arena[:0], need), b.ids[:0]
			for i := range rows {
				if id := rows[i].FixID; id != "" {
					b.ids = append(b.ids, id)
					continue
				}
				start := len(b.arena)
				b.arena = rows[i].AppendID(b.arena) // never empty: a plate, '@' and the time
				b.ids = append(b.ids, unsafe.String(&b.arena[start], len(b.arena)-start))
			}
			return b
		},
		values: func(buf any) any { return buf.(*fixIDs).ids },
		clear: func(buf any) {
			if b, ok := buf.(*fixIDs); ok {
				clear(b.ids)
			}
		},
	}
}

func eventColumns() []colSpec[record.Event] {
	type r = record.Event
	return []colSpec[r]{
		col("event_id", func(e *r) string { return e.EventID }),
		col("vehicle_id", func(e *r) string { return e.VehicleID }),
		col("ts", func(e *r) int64 { return clampUnix(e.Time) }),
		col("ts_ms", func(e *r) int64 { return unixMilli(e.Time) }),
		col("kind", func(e *r) string { return e.Kind.String() }),
		col("source", func(e *r) string { return e.Source }),
		col("site_id", func(e *r) string { return e.SiteID }),
		col("lat", func(e *r) float64 { return e.Lat }),
		col("lon", func(e *r) float64 { return e.Lon }),
		col("has_pos", func(e *r) uint8 { return u8(e.HasPos) }),
		col("load_kg", func(e *r) float64 { return e.LoadKg }),
		col("has_load", func(e *r) uint8 { return u8(e.HasLoad) }),
		col("cover_closed", func(e *r) uint8 { return u8(e.CoverClosed) }),
		col("has_cover", func(e *r) uint8 { return u8(e.HasCover) }),
		col("confidence", func(e *r) float32 { return e.Confidence }),
		col("topic", func(e *r) string { return e.Src.Topic }),
		col("kafka_partition", func(e *r) int32 { return e.Src.Partition }),
		col("kafka_offset", func(e *r) int64 { return e.Src.Offset }),
		nowCol[r]("ingested_at"),
	}
}

func officerColumns() []colSpec[record.OfficerPosition] {
	type r = record.OfficerPosition
	return []colSpec[r]{
		col("officer_id", func(o *r) string { return o.OfficerID }),
		col("ts", func(o *r) int64 { return clampUnix(o.Time) }),
		col("ts_ms", func(o *r) int64 { return unixMilli(o.Time) }),
		col("lat", func(o *r) float64 { return o.Lat }),
		col("lon", func(o *r) float64 { return o.Lon }),
		col("available", func(o *r) uint8 { return u8(o.Available) }),
		col("topic", func(o *r) string { return o.Src.Topic }),
		col("kafka_partition", func(o *r) int32 { return o.Src.Partition }),
		col("kafka_offset", func(o *r) int64 { return o.Src.Offset }),
		nowCol[r]("ingested_at"),
	}
}

func rejectColumns() []colSpec[record.Reject] {
	type r = record.Reject
	return []colSpec[r]{
		col("topic", func(j *r) string { return j.Src.Topic }),
		col("kafka_partition", func(j *r) int32 { return j.Src.Partition }),
		col("kafka_offset", func(j *r) int64 { return j.Src.Offset }),
		col("reason", func(j *r) string { return string(j.Reason) }),
		col("detail", func(j *r) string { return j.Detail }),
		col("key", func(j *r) string { return string(j.Key) }),
		col("value", func(j *r) string { return string(j.Value) }),
		col("received_at", func(j *r) int64 { return clampUnix(j.Received) }),
		col("received_ms", func(j *r) int64 { return unixMilli(j.Received) }),
	}
}

// alertSnapshotColumns are the columns of the alert snapshot that alerts and alert_changes share.
func alertSnapshotColumns() []colSpec[detectors.Change] {
	type r = detectors.Change
	return []colSpec[r]{
		col("rule", func(c *r) string { return string(c.Alert.Rule) }),
		col("severity", func(c *r) string { return string(c.Alert.Severity) }),
		col("phase", func(c *r) string { return string(c.Alert.Phase) }),
		col("status", func(c *r) string { return string(c.Alert.Status) }),
		col("vehicle_id", func(c *r) string { return c.Alert.VehicleID }),
		col("company", func(c *r) string { return c.Alert.Company }),
		col("permit_id", func(c *r) string { return c.Alert.PermitID }),
		col("place", func(c *r) string { return c.Alert.Place }),
		col("district", func(c *r) string { return c.Alert.District }),
		col("start_time", func(c *r) int64 { return clampUnix(c.Alert.Start) }),
		col("start_ms", func(c *r) int64 { return unixMilli(c.Alert.Start) }),
		col("end_time", func(c *r) int64 { return clampUnix(c.Alert.End) }),
		col("end_ms", func(c *r) int64 { return unixMilli(c.Alert.End) }),
		col("lat", func(c *r) float64 { return c.Alert.Lat }),
		col("lon", func(c *r) float64 { return c.Alert.Lon }),
		col("value", func(c *r) float64 { return c.Alert.Value }),
		col("limit_value", func(c *r) float64 { return c.Alert.Limit }),
		col("evidence", func(c *r) string { return c.Alert.Evidence }),
	}
}

func alertColumns() []colSpec[detectors.Change] {
	type r = detectors.Change
	cols := []colSpec[r]{col("id", func(c *r) string { return c.Alert.ID })}
	cols = append(cols, alertSnapshotColumns()...)
	return append(cols,
		col("version", func(c *r) uint64 { return c.Alert.Version }),
		col("updated_at", func(c *r) int64 { return clampUnix(c.Alert.Updated) }),
		col("updated_ms", func(c *r) int64 { return unixMilli(c.Alert.Updated) }),
	)
}

func changeColumns() []colSpec[detectors.Change] {
	type r = detectors.Change
	cols := []colSpec[r]{
		col("alert_id", func(c *r) string { return c.Alert.ID }),
		col("version", func(c *r) uint64 { return c.Alert.Version }),
		col("kind", func(c *r) string { return string(c.Kind) }),
		col("changed_at", func(c *r) int64 { return clampUnix(c.Alert.Updated) }),
		col("changed_ms", func(c *r) int64 { return unixMilli(c.Alert.Updated) }),
	}
	return append(cols, alertSnapshotColumns()...)
}
