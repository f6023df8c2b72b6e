// Package chinsert sends muckwatch's INSERTs into ClickHouse through clickhouse-go, one attempt at
// a time, and keeps a batch that was sent, up to a number of rows, to be sent again: the next
// insert into the table appends into the columns the last one grew, emptied, instead of growing
// new ones from nothing. The sink's tables and the API's feed journal write through it.
package chinsert

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Insert is the INSERT of one table, with the batches it keeps. It is safe for concurrent use:
// each Send has a batch of its own.
type Insert struct {
	conn    driver.Conn
	query   string
	columns int
	// keepRows: a sent batch is kept when it held at most this many rows (0: never kept).
	keepRows int
	// kept holds batches whose last send succeeded; nil when keepRows is 0.
	kept chan *sentBatch
}

// sentBatch is a clickhouse-go batch that was sent successfully, with its columns. Sent again, it
// starts a new INSERT on a connection from the pool (clickhouse-go's resetConnection).
//
// Batches are prepared with a context that is never cancelled: clickhouse-go's Send watches the
// batch's context to close its connection, and for a batch sent again that watch reads the
// connection field resetConnection writes (a data race on cancellation; the connection closed
// could be one the pool has since given to another insert). The caller's context is watched by
// Send instead, which returns when it ends and leaves the insert to finish on its own.
type sentBatch struct {
	bt   driver.Batch
	cols []column.Interface
}

// keptBatches is how many sent batches an Insert keeps: its callers insert one at a time, but an
// insert a caller gave up on (Send's abandoned) may still be under way beside the next.
const keptBatches = 2

// New returns the Insert of query (INSERT INTO db.table (col, …), with as many columns as
// columns) through conn. A batch that was sent with at most keepRows rows is kept for the next
// Send; 0 keeps none (for a table whose inserts vary so much that the columns would stay sized
// for the largest).
func New(conn driver.Conn, query string, columns, keepRows int) *Insert {
	in := &Insert{conn: conn, query: query, columns: columns, keepRows: keepRows}
	if keepRows > 0 {
		in.kept = make(chan *sentBatch, keptBatches)
	}
	return in
}

// Send makes one attempt at the insert: on a goroutine of its own it takes a kept batch (or
// prepares one), lets fill append the rows to its columns, in the order of the query's column
// list, sends them and waits for the server's acknowledgement. Send returns with that, or when ctx
// ends first: then abandoned is true, and the insert goes on until ClickHouse answers or the
// connection fails, so whatever fill reads must be left alone from then on.
func (in *Insert) Send(ctx context.Context, fill func(cols []column.Interface) error) (abandoned bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- in.send(fill) }()
	select {
	case err := <-done:
		return false, err
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

// send is one attempt of Send. A batch whose send failed is dropped: clickhouse-go released its
// connection, and the next attempt prepares a new one.
func (in *Insert) send(fill func(cols []column.Interface) error) error {
	var sb *sentBatch
	select {
	case sb = <-in.kept: // never ready when in.kept is nil
	default:
	}
	if sb == nil {
		bt, err := in.conn.PrepareBatch(context.Background(), in.query)
		if err != nil {
			return err
		}
		sb = &sentBatch{bt: bt, cols: bt.Columns()}
		if len(sb.cols) != in.columns {
			_ = bt.Abort()
			return fmt.Errorf("the insert has %d columns, the table spec %d", len(sb.cols), in.columns)
		}
	} else {
		for _, c := range sb.cols {
			c.Reset()
		}
	}
	if err := fill(sb.cols); err != nil {
		_ = sb.bt.Abort()
		return err
	}
	rows := sb.bt.Rows()
	if err := sb.bt.Send(); err != nil {
		return err
	}
	if rows <= in.keepRows {
		select {
		case in.kept <- sb: // never ready when in.kept is nil
		default:
		}
	}
	return nil
}

// KeptRows returns, for each batch kept for the next Send, how many rows each of its columns
// holds (those of the insert it was last sent with). Call it between inserts: it takes each kept
// batch out and puts it back.
func (in *Insert) KeptRows() [][]int {
	var out [][]int
	for range len(in.kept) {
		sb := <-in.kept
		rows := make([]int, len(sb.cols))
		for i, c := range sb.cols {
			rows[i] = c.Rows()
		}
		out = append(out, rows)
		in.kept <- sb
	}
	return out
}
