package api

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/detectors"
)

// Store is the API's access to ClickHouse: history for the analysts, the records the API keeps
// (actions, audit, feed journal), and the state it restores on start. Every query is
// parameterised; the database name is a validated identifier.
type Store struct {
	conn driver.Conn
	db   string
	log  *slog.Logger

	mu    sync.Mutex
	audit []AuditRecord
	// auditMax bounds the audit records waiting to be written; beyond it they are dropped and
	// counted (ClickHouse down for long).
	auditMax int
}

// NewStore returns a store over conn in database db.
func NewStore(conn driver.Conn, db string, log *slog.Logger) *Store {
	return &Store{conn: conn, db: db, log: log, auditMax: 100_000}
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

// Audit queues a lookup for the audit log; false when the queue is full.
func (s *Store) Audit(r AuditRecord) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.audit) >= s.auditMax {
		return false
	}
	s.audit = append(s.audit, r)
	return true
}

// FlushAudit writes the queued audit records. On failure they stay queued for the next flush.
func (s *Store) FlushAudit(ctx context.Context) error {
	s.mu.Lock()
	recs := s.audit
	s.audit = nil
	s.mu.Unlock()
	if len(recs) == 0 {
		return nil
	}
	err := s.insert(ctx, "api_audit", "at, at_ms, actor, role, method, path, plate, status, remote", func(b driver.Batch) error {
		for _, r := range recs {
			if err := b.Append(r.At, r.At.UnixMilli(), r.Actor, r.Role, r.Method, r.Path, r.Plate, uint16(r.Status), r.Remote); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.mu.Lock()
		s.audit = append(recs, s.audit...)
		if len(s.audit) > s.auditMax {
			s.audit = s.audit[len(s.audit)-s.auditMax:]
		}
		s.mu.Unlock()
	}
	return err
}

func (s *Store) insert(ctx context.Context, table, columns string, fill func(driver.Batch) error) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.db+"."+table+" ("+columns+")")
	if err != nil {
		return fmt.Errorf("cannot prepare an insert into %s: %w", table, err)
	}
	if err := fill(b); err != nil {
		_ = b.Abort()
		return fmt.Errorf("cannot fill an insert into %s: %w", table, err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot insert into %s: %w", table, err)
	}
	return nil
}

// WriteAction records a lifecycle action.
func (s *Store) WriteAction(ctx context.Context, alertID, state string, a Action) error {
	at := time.UnixMilli(a.AtMs)
	return s.insert(ctx, "alert_actions", "alert_id, action, state, actor, role, officer_id, reason, at, at_ms", func(b driver.Batch) error {
		return b.Append(alertID, a.Action, state, a.Actor, a.Role, a.OfficerID, a.Reason, at, a.AtMs)
	})
}

// WriteFeed journals feed items.
func (s *Store) WriteFeed(ctx context.Context, items []FeedItem) error {
	now := time.Now()
	return s.insert(ctx, "alert_feed", "seq, change, alert_id, rule, severity, district, vehicle_id, item, written_at", func(b driver.Batch) error {
		for _, it := range items {
			a := &it.Alert
			if err := b.Append(it.Seq, it.Change, a.ID, string(a.Rule), string(a.Severity), a.District, a.VehicleID, string(encodeItem(it)), now); err != nil {
				return err
			}
		}
		return nil
	})
}

// FeedSince reads journaled feed items after seq, oldest first.
func (s *Store) FeedSince(ctx context.Context, seq uint64, limit int) ([]FeedItem, error) {
	rows, err := s.conn.Query(ctx, "SELECT item FROM "+s.db+".alert_feed WHERE seq > ? ORDER BY seq LIMIT ?", seq, limit)
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

// LastPosition reads a vehicle's newest stored fix.
func (s *Store) LastPosition(ctx context.Context, plate string) (VehiclePosition, bool, error) {
	var p VehiclePosition
	err := s.conn.QueryRow(ctx, "SELECT lat, lon, speed_kmh, ts_ms FROM "+s.db+".positions WHERE vehicle_id = ? ORDER BY ts DESC, ts_ms DESC LIMIT 1", plate).
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

// Restore fills live from ClickHouse: the alerts still open (or severe and unhandled) and their
// handling, the violations of the last 30 days, and the officers' recent positions.
func (s *Store) Restore(ctx context.Context, l *Live) error {
	now := l.now()
	since := now.Add(-violationHistory)
	rows, err := s.conn.Query(ctx, `
		SELECT id, rule, vehicle_id, min(start_ms)
		FROM `+s.db+`.alerts
		WHERE start_time >= ?
		GROUP BY id, rule, vehicle_id`, since)
	if err != nil {
		return fmt.Errorf("cannot restore the violations of the last 30 days: %w", err)
	}
	n := 0
	l.mu.Lock()
	for rows.Next() {
		var id, rule, plate string
		var start int64
		if err := rows.Scan(&id, &rule, &plate, &start); err != nil {
			l.mu.Unlock()
			rows.Close()
			return fmt.Errorf("cannot restore the violations of the last 30 days: %w", err)
		}
		l.addViolation(plate, id, rule, time.UnixMilli(start))
		n++
	}
	l.mu.Unlock()
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot restore the violations of the last 30 days: %w", err)
	}
	// the latest version of every alert that may still be open
	rows, err = s.conn.Query(ctx, `
		SELECT id, argMax(rule, version), argMax(severity, version), argMax(phase, version), argMax(status, version),
		       argMax(vehicle_id, version), argMax(company, version), argMax(permit_id, version), argMax(place, version),
		       argMax(district, version), min(start_ms), argMax(end_ms, version), argMax(lat, version), argMax(lon, version),
		       argMax(value, version), argMax(limit_value, version), argMax(evidence, version), max(version), argMax(updated_ms, version)
		FROM `+s.db+`.alerts
		WHERE start_time >= ?
		GROUP BY id
		HAVING argMax(status, version) = 'open' OR (argMax(severity, version) = 'severe' AND argMax(end_ms, version) >= ?)`,
		since, now.Add(-l.cfg.OpenSevereFor).UnixMilli())
	if err != nil {
		return fmt.Errorf("cannot restore the open alerts: %w", err)
	}
	open := 0
	l.mu.Lock()
	for rows.Next() {
		var a detectors.Alert
		var rule, severity, phase, status string
		var startMs, endMs, updatedMs int64
		if err := rows.Scan(&a.ID, &rule, &severity, &phase, &status, &a.VehicleID, &a.Company, &a.PermitID, &a.Place,
			&a.District, &startMs, &endMs, &a.Lat, &a.Lon, &a.Value, &a.Limit, &a.Evidence, &a.Version, &updatedMs); err != nil {
			l.mu.Unlock()
			rows.Close()
			return fmt.Errorf("cannot restore the open alerts: %w", err)
		}
		a.Rule, a.Severity, a.Phase, a.Status = detectors.Rule(rule), detectors.Severity(severity), detectors.Phase(phase), detectors.Status(status)
		a.Start, a.End, a.Updated = detectors.FromUnixMilli(startMs), detectors.FromUnixMilli(endMs), detectors.FromUnixMilli(updatedMs)
		v := &AlertView{Change: ChangeRestored, Alert: a, Supervision: Supervision{Handling: Handling{State: StateNew}, ReceivedMs: updatedMs}}
		l.putAlert(v)
		open++
	}
	l.mu.Unlock()
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot restore the open alerts: %w", err)
	}
	// officers seen recently
	rows, err = s.conn.Query(ctx, `
		SELECT officer_id, argMax(lat, ts_ms), argMax(lon, ts_ms), argMax(available, ts_ms), max(ts_ms)
		FROM `+s.db+`.officer_positions
		WHERE ts >= ?
		GROUP BY officer_id`, now.Add(-l.cfg.Dispatch.OfficerStale))
	if err != nil {
		return fmt.Errorf("cannot restore the officers' positions: %w", err)
	}
	l.mu.Lock()
	for rows.Next() {
		var o OfficerPosition
		var avail uint8
		if err := rows.Scan(&o.OfficerID, &o.Lat, &o.Lon, &avail, &o.TimeMs); err != nil {
			l.mu.Unlock()
			rows.Close()
			return fmt.Errorf("cannot restore the officers' positions: %w", err)
		}
		o.Available = avail == 1
		l.officers[o.OfficerID] = o
	}
	for _, v := range l.alerts {
		v.Dispatch = l.plan(v)
	}
	l.mu.Unlock()
	rows.Close()
	// what people did with them
	rows, err = s.conn.Query(ctx, `
		SELECT alert_id, action, actor, role, officer_id, reason, at_ms
		FROM `+s.db+`.alert_actions
		WHERE at >= ?
		ORDER BY at_ms`, since)
	if err != nil {
		return fmt.Errorf("cannot restore the alert actions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var a Action
		if err := rows.Scan(&id, &a.Action, &a.Actor, &a.Role, &a.OfficerID, &a.Reason, &a.AtMs); err != nil {
			return fmt.Errorf("cannot restore the alert actions: %w", err)
		}
		l.restoreAction(id, a)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot restore the alert actions: %w", err)
	}
	s.log.Info("API state restored from ClickHouse", "violations_30d", n, "open_alerts", open)
	return nil
}
