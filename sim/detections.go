package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/muckwatch/muckwatch/tables"
)

// ReadDetections reads every alert stored in database db, as the scorer needs it.
func ReadDetections(ctx context.Context, conn driver.Conn, db string) ([]Detection, error) {
	a, c := tables.Alerts, tables.AlertChanges
	// every alert once (its first start, its newest end), with when its opened change was written
	rows, err := conn.Query(ctx, "SELECT rule, vehicle_id, place, start_ms, end_ms, opened_ms"+
		" FROM (SELECT "+a.Col("id")+", any("+a.Col("rule")+") AS rule, any("+a.Col("vehicle_id")+") AS vehicle_id, any("+a.Col("place")+") AS place,"+
		" min("+a.Col("start_ms")+") AS start_ms, argMax("+a.Col("end_ms")+", "+a.Version+") AS end_ms FROM "+a.In(db)+" GROUP BY "+a.Col("id")+") AS a"+
		" ANY LEFT JOIN (SELECT "+c.Col("alert_id")+" AS id, min("+c.Col("changed_ms")+") AS opened_ms FROM "+c.In(db)+
		" WHERE "+c.Col("kind")+" = ? GROUP BY "+c.Col("alert_id")+") AS o USING (id)", "opened") // detectors.ChangeOpened (sim cannot import detectors: its tests import sim)
	if err != nil {
		return nil, fmt.Errorf("cannot read the alerts: %w", err)
	}
	defer rows.Close()
	var dets []Detection
	for rows.Next() {
		var d Detection
		var start, end, opened int64
		if err := rows.Scan(&d.Rule, &d.VehicleID, &d.Place, &start, &end, &opened); err != nil {
			return nil, fmt.Errorf("cannot read an alert: %w", err)
		}
		d.Start, d.Opened = time.UnixMilli(start), time.UnixMilli(opened)
		if end > 0 {
			d.End = time.UnixMilli(end)
		}
		dets = append(dets, d)
	}
	return dets, rows.Err()
}
