package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ReadDetections reads every alert stored in database db, as the scorer needs it.
func ReadDetections(ctx context.Context, conn driver.Conn, db string) ([]Detection, error) {
	rows, err := conn.Query(ctx, `
		SELECT rule, vehicle_id, place, start_ms, end_ms, opened_ms
		FROM (SELECT id, any(rule) AS rule, any(vehicle_id) AS vehicle_id, any(place) AS place,
		             min(start_ms) AS start_ms, argMax(end_ms, version) AS end_ms
		      FROM `+db+`.alerts GROUP BY id) AS a
		ANY LEFT JOIN (SELECT alert_id AS id, min(changed_ms) AS opened_ms FROM `+db+`.alert_changes
		               WHERE kind = 'opened' GROUP BY alert_id) AS o USING (id)`)
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
