package api

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/internal/chinsert"
	"github.com/muckwatch/muckwatch/tables"
)

// feedJournal writes the feed journal's rows (tables.AlertFeed), a flush's items in one insert.
// Every alert change is a feed item, so that under a city's morning of violations the journal
// takes thousands of rows a second: the insert's batch is kept from flush to flush with its
// columns emptied (chinsert), and the rows are built in columns the journal keeps too, the items'
// JSON a chunk at a time into one buffer.
type feedJournal struct {
	ins *chinsert.Insert
	mu  sync.Mutex // one write at a time: cols are the write's
	// cols are the columns of the last write, emptied for the next (dropped when the last write
	// was abandoned, or larger than journalKeptRows).
	cols journalColumns
}

// journalColumns are the journal's columns in the order of tables.AlertFeed.
type journalColumns struct {
	seq                                                        []uint64
	change, alertID, rule, severity, district, vehicleID, item []string
	writtenAt                                                  []time.Time
	// items is the JSON of a chunk of items (journalChunk), one after the other, and ends where
	// each ends; item's strings point into items.
	items []byte
	ends  []int
}

// journalColumnNames are the names of journalColumns' columns in the order append writes them.
var journalColumnNames = []string{"seq", "change", "alert_id", "rule", "severity", "district", "vehicle_id", "item", "written_at"}

// The indices of the item and written_at columns; the others come before them.
const (
	journalItem      = 7
	journalWrittenAt = 8
)

// journalKeptRows: the batch and columns of a write of at most this many items are kept for the
// next. In a bench run at --at 08:00 (14 % of the fleet in violation) the flushes, one a second,
// had 104 items at the median, 1,771 at the 90th percentile and 4,282 at most; a larger write (a
// backlog of items kept while ClickHouse was away) does not leave them sized for it.
const journalKeptRows = 4096

func newFeedJournal(conn driver.Conn, db string) *feedJournal {
	if !slices.Equal(tables.AlertFeed.Names(), journalColumnNames) {
		panic(fmt.Sprintf("api: the feed journal writes columns %v, the table has %v", journalColumnNames, tables.AlertFeed.Names()))
	}
	return &feedJournal{ins: chinsert.New(conn, tables.AlertFeed.Insert(db), len(journalColumnNames), journalKeptRows)}
}

// write inserts items, written at now, in one attempt bounded by ctx.
func (j *feedJournal) write(ctx context.Context, items []FeedItem, now time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	c := &j.cols
	c.build(items, now)
	abandoned, err := j.ins.Send(ctx, func(cols []column.Interface) error { return c.append(cols, items) })
	switch {
	case abandoned:
		j.cols = journalColumns{} // the insert still reads them
	case len(items) > journalKeptRows:
		j.cols = journalColumns{}
	default:
		c.clear()
	}
	return err
}

// build fills the columns with items, written at now, all but item's (append writes them).
func (c *journalColumns) build(items []FeedItem, now time.Time) {
	for i := range items {
		it := &items[i]
		a := &it.Alert
		c.seq = append(c.seq, it.Seq)
		c.change = append(c.change, it.Change)
		c.alertID = append(c.alertID, a.ID)
		c.rule = append(c.rule, string(a.Rule))
		c.severity = append(c.severity, string(a.Severity))
		c.district = append(c.district, a.District)
		c.vehicleID = append(c.vehicleID, a.VehicleID)
		c.writtenAt = append(c.writtenAt, now)
	}
}

// journalChunk is how many items' JSON append writes at a time: the buffer they are written in
// stays at a few hundred KB however many items a flush has.
const journalChunk = 256

// append appends the columns of items to an insert's (clickhouse-go copies the values).
func (c *journalColumns) append(cols []column.Interface, items []FeedItem) error {
	for i, values := range []any{c.seq, c.change, c.alertID, c.rule, c.severity, c.district, c.vehicleID} {
		if _, err := cols[i].Append(values); err != nil {
			return fmt.Errorf("column %s: %w", journalColumnNames[i], err)
		}
	}
	if _, err := cols[journalWrittenAt].Append(c.writtenAt); err != nil {
		return fmt.Errorf("column %s: %w", journalColumnNames[journalWrittenAt], err)
	}
	for len(items) > 0 {
		chunk := items[:min(len(items), journalChunk)]
		items = items[len(chunk):]
		c.items, c.ends, c.item = c.items[:0], c.ends[:0], c.item[:0]
		for i := range chunk {
			c.items = appendFeedItem(c.items, &chunk[i])
			c.ends = append(c.ends, len(c.items))
		}
		start := 0
		for _, end := range c.ends { // items no longer moves
			c.item = append(c.item, unsafe.String(&c.items[start], end-start)) // never empty: an object
			start = end
		}
		if _, err := cols[journalItem].Append(c.item); err != nil {
			return fmt.Errorf("column %s: %w", journalColumnNames[journalItem], err)
		}
	}
	return nil
}

// clear empties the columns, keeping their room, and drops what they point to.
func (c *journalColumns) clear() {
	for _, ss := range [][]string{c.change, c.alertID, c.rule, c.severity, c.district, c.vehicleID, c.item} {
		clear(ss)
	}
	c.seq, c.writtenAt, c.items, c.ends = c.seq[:0], c.writtenAt[:0], c.items[:0], c.ends[:0]
	c.change, c.alertID, c.rule, c.severity = c.change[:0], c.alertID[:0], c.rule[:0], c.severity[:0]
	c.district, c.vehicleID, c.item = c.district[:0], c.vehicleID[:0], c.item[:0]
}
