package api

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/tables"
)

// Store is the API's access to ClickHouse: history for the analysts, the records the API keeps
// (actions, audit, feed journal), and the state it restores on start. Every query is
// parameterised, names its tables and columns through package tables, and is bounded by a
// timeout; the database name is a validated identifier.
type Store struct {
	conn driver.Conn
	db   string
	log  *slog.Logger
	// timeout bounds each query and insert; restoreTimeout each of Restore's queries.
	timeout, restoreTimeout time.Duration

	mu    sync.Mutex
	audit []AuditRecord
	// auditSpare is the queue a flush wrote, emptied: the next flush's queue
	auditSpare []AuditRecord
	// auditFlushing is how many records a flush is writing (they come back to audit if it fails).
	auditFlushing int
	// auditMax bounds the audit records waiting to be written: beyond it the API refuses the
	// requests it would audit (AuditRoom), so that none is served unaudited. No record is dropped.
	auditMax int

	journal  *feedJournal
	auditLog *auditJournal
}

// NewStore returns a store over conn in database db.
func NewStore(conn driver.Conn, db string, log *slog.Logger) *Store {
	return &Store{conn: conn, db: db, log: log, auditMax: 100_000, timeout: 30 * time.Second, restoreTimeout: 2 * time.Minute,
		journal: newFeedJournal(conn, db), auditLog: newAuditJournal(conn, db)}
}

// bounded returns ctx bounded by the store's query timeout.
func (s *Store) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// AuditRecord is one vehicle lookup.
type AuditRecord struct {
	At     time.Time
	Actor  string
	Role   string
	Method string
	Path   string
	Plate  string
	Status int
	Remote string
}

// AuditRoom reports whether the audit queue has room for another record; a request that would be
// audited is refused when it has not. A few requests admitted together may take the queue past
// auditMax by as many: Audit never drops a record.
func (s *Store) AuditRoom() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.audit)+s.auditFlushing < s.auditMax
}

// AuditQueued is the number of audit records not yet written.
func (s *Store) AuditQueued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.audit) + s.auditFlushing
}

// Audit queues a record for the audit log.
func (s *Store) Audit(r AuditRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = append(s.audit, r)
}

// FlushAudit writes the queued audit records. On failure they stay queued for the next flush.
func (s *Store) FlushAudit(ctx context.Context) error {
	s.mu.Lock()
	recs := s.audit
	if len(recs) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.audit, s.auditSpare = s.auditSpare, nil
	s.auditFlushing = len(recs)
	s.mu.Unlock()
	bctx, cancel := s.bounded(ctx)
	err := s.auditLog.write(bctx, recs)
	cancel()
	if err != nil {
		err = fmt.Errorf("cannot insert %d records into %s: %w", len(recs), tables.APIAudit.Name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auditFlushing = 0
	switch {
	case err != nil:
		s.audit = append(recs, s.audit...)
	case cap(recs) <= auditKeptRows: // written: its room serves the flush after next
		clear(recs)
		s.auditSpare = recs[:0]
	}
	return err
}

// insert inserts the rows fill appends into every column of t, in t's order.
func (s *Store) insert(ctx context.Context, t *tables.Table, fill func(driver.Batch) error) error {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	b, err := s.conn.PrepareBatch(ctx, t.Insert(s.db))
	if err != nil {
		return fmt.Errorf("cannot prepare an insert into %s: %w", t.Name, err)
	}
	if err := fill(b); err != nil {
		_ = b.Abort()
		return fmt.Errorf("cannot fill an insert into %s: %w", t.Name, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert into %s: %w", t.Name, err)
	}
	return nil
}

// WriteAction records a lifecycle action.
func (s *Store) WriteAction(ctx context.Context, alertID, state string, a Action) error {
	at := time.UnixMilli(a.AtMs)
	return s.insert(ctx, tables.AlertActions, func(b driver.Batch) error {
		return b.Append(alertID, a.Action, state, a.Actor, a.Role, a.OfficerID, a.Reason, at, a.AtMs) // in the order of tables.AlertActions
	})
}

// WriteFeed journals feed items.
func (s *Store) WriteFeed(ctx context.Context, items []FeedItem) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	if err := s.journal.write(ctx, items, time.Now()); err != nil {
		return fmt.Errorf("cannot insert %d items into %s: %w", len(items), tables.AlertFeed.Name, err)
	}
	return nil
}

// FeedSince reads journaled feed items after seq, oldest first.
func (s *Store) FeedSince(ctx context.Context, seq uint64, limit int) ([]FeedItem, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	t := tables.AlertFeed
	rows, err := s.conn.Query(ctx, "SELECT "+t.Col("item")+" FROM "+t.In(s.db)+" WHERE "+t.Col("seq")+" > ? AND "+t.Col("change")+" != ? ORDER BY "+t.Col("seq")+" LIMIT ?",
		seq, EventDigest, limit)
	if err != nil {
		return nil, fmt.Errorf("cannot read the alert feed journal: %w", err)
	}
	defer rows.Close()
	var out []FeedItem
	var last uint64
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("cannot read the alert feed journal: %w", err)
		}
		var it FeedItem
		if err := json.Unmarshal([]byte(raw), &it); err != nil {
			return nil, fmt.Errorf("alert feed journal item after seq %d is not valid JSON: %w", last, err)
		}
		if it.Seq == last { // not yet merged by ReplacingMergeTree
			continue
		}
		last = it.Seq
		out = append(out, it)
	}
	return out, rows.Err()
}

// WriteDigest journals a scheduled digest, as a row of the feed journal with change "digest" and
// no alert (never served on the feed): the instances of a group read it to send each digest once
// (LastDigestDue).
func (s *Store) WriteDigest(ctx context.Context, d Digest) error {
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("cannot encode the digest of %s: %w", d.Date, err)
	}
	return s.insert(ctx, tables.AlertFeed, func(bt driver.Batch) error {
		return bt.Append(d.Seq, EventDigest, "", "", "", "", "", string(b), time.Now()) // in the order of tables.AlertFeed
	})
}

// LastDigestDue reads when the last journaled scheduled digest was due (Unix time); any is false
// when none was ever journaled.
func (s *Store) LastDigestDue(ctx context.Context) (last time.Time, found bool, err error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	t := tables.AlertFeed
	rows, err := s.conn.Query(ctx, "SELECT "+t.Col("item")+" FROM "+t.In(s.db)+" WHERE "+t.Col("change")+" = ? AND "+t.Col("alert_id")+" = '' ORDER BY "+t.Col("seq")+" DESC LIMIT 1", EventDigest)
	if err != nil {
		return last, false, fmt.Errorf("cannot read the last journaled digest: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return last, false, fmt.Errorf("cannot read the last journaled digest: %w", err)
		}
		var d Digest
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return last, false, fmt.Errorf("the last journaled digest is not valid JSON: %w", err)
		}
		last, found = time.UnixMilli(cmp.Or(d.DueMs, d.MadeMs)), true
	}
	return last, found, rows.Err()
}

// LastPosition reads a vehicle's newest stored fix.
func (s *Store) LastPosition(ctx context.Context, plate string) (VehiclePosition, bool, error) {
	ctx, cancel := s.bounded(ctx)
	defer cancel()
	t := tables.Positions
	var p VehiclePosition
	err := s.conn.QueryRow(ctx, "SELECT "+t.List("lat", "lon", "speed_kmh", "ts_ms")+" FROM "+t.In(s.db)+
		" WHERE "+t.Col("vehicle_id")+" = ? ORDER BY "+t.Col("ts")+" DESC, "+t.Col("ts_ms")+" DESC LIMIT 1", plate).
		Scan(&p.Lat, &p.Lon, &p.SpeedKmh, &p.TimeMs)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return p, false, nil
		}
		return p, false, fmt.Errorf("cannot read the last position of %s: %w", plate, err)
	}
	p.Plate = plate
	return p, true, nil
}
