package api

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/tables"
)

// Restore fills live from ClickHouse: the alerts still open (or severe and unhandled) and their
// handling, the violations of the last 30 days, and the officers' recent positions.
func (s *Store) Restore(ctx context.Context, l *Live) error {
	ctx, cancel := context.WithTimeout(ctx, s.restoreTimeout)
	defer cancel()
	now := l.now()
	since := now.Add(-violationHistory)
	at := tables.Alerts
	n := 0
	err := s.each(ctx, "restore the violations of the last 30 days",
		"SELECT "+at.List("id", "rule", "vehicle_id")+", min("+at.Col("start_ms")+") FROM "+at.In(s.db)+
			" WHERE "+at.Col("start_time")+" >= ? GROUP BY "+at.List("id", "rule", "vehicle_id"), []any{since},
		func(rows driver.Rows) error {
			var id, rule, plate string
			var start int64
			if err := rows.Scan(&id, &rule, &plate, &start); err != nil {
				return err
			}
			l.restoreViolation(plate, id, rule, time.UnixMilli(start))
			n++
			return nil
		})
	if err != nil {
		return err
	}
	// the newest version of every alert that may still be open
	open := 0
	r := newAlertRow()
	err = s.each(ctx, "restore the open alerts",
		"SELECT "+latestAlertList+" FROM (SELECT "+latestAlertsSelect+" FROM "+at.In(s.db)+" WHERE "+at.Col("start_time")+" >= ?"+latestAlertsGroupBy+")"+
			" WHERE "+latest("status")+" = ? OR ("+latest("severity")+" = ? AND "+latest("end_ms")+" >= ?)",
		[]any{since, string(detectors.StatusOpen), string(detectors.SeveritySevere), now.Add(-l.cfg.OpenSevereFor).UnixMilli()},
		func(rows driver.Rows) error {
			if err := rows.Scan(r.dest...); err != nil {
				return err
			}
			l.restoreAlert(r.alert())
			open++
			return nil
		})
	if err != nil {
		return err
	}
	// officers seen recently
	op := tables.OfficerPositions
	byTime := func(col string) string { return "argMax(" + op.Col(col) + ", " + op.Col("ts_ms") + ")" }
	err = s.each(ctx, "restore the officers' positions",
		"SELECT "+op.Col("officer_id")+", "+byTime("lat")+", "+byTime("lon")+", "+byTime("available")+", max("+op.Col("ts_ms")+")"+
			" FROM "+op.In(s.db)+" WHERE "+op.Col("ts")+" >= ? GROUP BY "+op.Col("officer_id"), []any{now.Add(-l.cfg.Dispatch.OfficerStale)},
		func(rows driver.Rows) error {
			var o OfficerPosition
			var avail uint8
			if err := rows.Scan(&o.OfficerID, &o.Lat, &o.Lon, &avail, &o.TimeMs); err != nil {
				return err
			}
			o.Available = avail == 1
			l.restoreOfficer(o)
			return nil
		})
	if err != nil {
		return err
	}
	l.replanAlerts()
	// what people did with them
	ac := tables.AlertActions
	err = s.each(ctx, "restore the alert actions",
		"SELECT "+ac.List("alert_id", "action", "actor", "role", "officer_id", "reason", "at_ms")+" FROM "+ac.In(s.db)+
			" WHERE "+ac.Col("at")+" >= ? ORDER BY "+ac.Col("at_ms"), []any{since},
		func(rows driver.Rows) error {
			var id string
			var a Action
			if err := rows.Scan(&id, &a.Action, &a.Actor, &a.Role, &a.OfficerID, &a.Reason, &a.AtMs); err != nil {
				return err
			}
			l.restoreAction(id, a)
			return nil
		})
	if err != nil {
		return err
	}
	// when each restored alert was first published, and whether it was announced overdue: the
	// deadline keeps counting from its first publication, and an alert announced overdue before
	// the restart is not announced again
	af := tables.AlertFeed
	ids := l.restoredIDs()
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 1000)]
		ids = ids[len(chunk):]
		var c conditions
		c.in(af.Col("alert_id"), chunk)
		args := append([]any{ChangeOverdue}, c.args...)
		err = s.each(ctx, "restore when the open alerts were published",
			"SELECT "+af.Col("alert_id")+", min("+af.Col("seq")+"), max("+af.Col("change")+" = ?) FROM "+af.In(s.db)+
				" WHERE "+c.parts[0]+" GROUP BY "+af.Col("alert_id"), args,
			func(rows driver.Rows) error {
				var id string
				var first uint64
				var overdue uint8
				if err := rows.Scan(&id, &first, &overdue); err != nil {
					return err
				}
				l.restoreFeed(id, int64(first/1000), overdue == 1) // seq: wall-clock microseconds
				return nil
			})
		if err != nil {
			return err
		}
		// the escalation steps already taken: not taken (nor notified) again
		steps := map[string][]EscalationStep{}
		err = s.each(ctx, "restore the escalation steps of the open alerts",
			"SELECT "+af.Col("alert_id")+", "+af.Col("item")+" FROM "+af.In(s.db)+" WHERE "+af.Col("change")+" = ? AND "+c.parts[0]+
				" ORDER BY "+af.Col("seq")+" LIMIT ?", append(append([]any{ChangeRenotified}, c.args...), maxEscalationLevels*4*len(chunk)),
			func(rows driver.Rows) error {
				var id, raw string
				if err := rows.Scan(&id, &raw); err != nil {
					return err
				}
				var it FeedItem
				if err := json.Unmarshal([]byte(raw), &it); err != nil {
					return fmt.Errorf("journaled escalation step of alert %s is not valid JSON: %w", id, err)
				}
				if step, ok := lastStep(&it.Alert); ok {
					steps[id] = append(steps[id], step)
				}
				return nil
			})
		if err != nil {
			return err
		}
		for id, st := range steps {
			l.restoreEscalation(id, st)
		}
	}
	s.log.Info("API state restored from ClickHouse", "violations_30d", n, "open_alerts", open)
	return nil
}

// each runs query q and calls row on each row; what says what the query is for, in errors.
func (s *Store) each(ctx context.Context, what, q string, args []any, row func(driver.Rows) error) error {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("cannot %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return fmt.Errorf("cannot %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cannot %s: %w", what, err)
	}
	return nil
}
