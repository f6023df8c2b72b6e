package api

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/internal/chinsert"
	"github.com/muckwatch/muckwatch/tables"
)

// auditJournal writes the audit's rows (tables.APIAudit), a flush's records in one insert. Every
// vehicle lookup is audited, a command centre's squads a thousand a second: appended row by row
// into a batch prepared afresh, each row's nine values were boxed and the batch's columns grew
// from nothing at every flush, 1.5 KB a lookup. The insert's batch is now kept from flush to
// flush with its columns emptied (chinsert), and the rows are built in columns the journal keeps.
type auditJournal struct {
	ins *chinsert.Insert
	mu  sync.Mutex // one write at a time: cols are the write's
	// cols are the columns of the last write, emptied for the next (dropped when the last write
	// was abandoned, or larger than auditKeptRows).
	cols auditColumns
}

// auditColumns are the audit's columns in the order of tables.APIAudit.
type auditColumns struct {
	at                                       []time.Time
	atMs                                     []int64
	actor, role, method, path, plate, remote []string
	status                                   []uint16
}

// auditColumnNames are the names of auditColumns' columns in the order append writes them.
var auditColumnNames = []string{"at", "at_ms", "actor", "role", "method", "path", "plate", "status", "remote"}

// auditKeptRows: the batch and columns of a write of at most this many records are kept for the
// next. A flush a second at the bench's 1,000 lookups a second writes about a thousand; a larger
// write (records kept while ClickHouse was away) does not leave them sized for it.
const auditKeptRows = 8192

func newAuditJournal(conn driver.Conn, db string) *auditJournal {
	if !slices.Equal(tables.APIAudit.Names(), auditColumnNames) {
		panic(fmt.Sprintf("api: the audit writes columns %v, the table has %v", auditColumnNames, tables.APIAudit.Names()))
	}
	return &auditJournal{ins: chinsert.New(conn, tables.APIAudit.Insert(db), len(auditColumnNames), auditKeptRows)}
}

// write inserts recs in one attempt bounded by ctx.
func (j *auditJournal) write(ctx context.Context, recs []AuditRecord) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := &j.cols
	c.build(recs)
	abandoned, err := j.ins.Send(ctx, c.append)
	switch {
	case abandoned, len(recs) > auditKeptRows: // the insert still reads them; or too large to keep
		j.cols = auditColumns{}
	default:
		c.clear()
	}
	return err
}

func (c *auditColumns) build(recs []AuditRecord) {
	for i := range recs {
		r := &recs[i]
		c.at = append(c.at, r.At)
		c.atMs = append(c.atMs, r.At.UnixMilli())
		c.actor = append(c.actor, r.Actor)
		c.role = append(c.role, r.Role)
		c.method = append(c.method, r.Method)
		c.path = append(c.path, r.Path)
		c.plate = append(c.plate, r.Plate)
		c.status = append(c.status, uint16(r.Status))
		c.remote = append(c.remote, r.Remote)
	}
}

// append appends the columns to an insert's (clickhouse-go copies the values).
func (c *auditColumns) append(cols []column.Interface) error {
	for i, values := range []any{c.at, c.atMs, c.actor, c.role, c.method, c.path, c.plate, c.status, c.remote} {
		if _, err := cols[i].Append(values); err != nil {
			return fmt.Errorf("column %s: %w", auditColumnNames[i], err)
		}
	}
	return nil
}

// clear empties the columns, keeping their room, and drops what they point to.
func (c *auditColumns) clear() {
	for _, ss := range [][]string{c.actor, c.role, c.method, c.path, c.plate, c.remote} {
		clear(ss)
	}
	c.at, c.atMs, c.status = c.at[:0], c.atMs[:0], c.status[:0]
	c.actor, c.role, c.method, c.path, c.plate, c.remote = c.actor[:0], c.role[:0], c.method[:0], c.path[:0], c.plate[:0], c.remote[:0]
}
