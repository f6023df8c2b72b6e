package sink_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/sink"
)

func ExampleEncodeChange() {
	start := time.Date(2026, 5, 17, 8, 30, 15, 0, time.UTC)
	msg := sink.EncodeChange(detectors.Change{
		Kind: detectors.ChangeOpened,
		Alert: detectors.Alert{
			ID: "6a209cee9a40757afdd70bce", Rule: detectors.RuleSpeeding,
			Severity: detectors.SeverityWarning, Phase: detectors.PhaseIn, Status: detectors.StatusOpen,
			VehicleID: "粤B12345", District: "福田区", Start: start, Lat: 22.5431, Lon: 114.0579,
			Value: 58, Limit: 40, Evidence: "58 km/h for 30 s where the limit is 40 km/h", Version: 1, Updated: start,
		},
	})
	fmt.Println(string(msg))
	// Output:
	// {"change":"opened","alert_id":"6a209cee9a40757afdd70bce","rule":"speeding","severity":"warning","action":"notify_grid_staff","phase":"in_event","status":"open","vehicle_id":"粤B12345","company":"","permit_id":"","place":"","district":"福田区","start_ms":1779006615000,"end_ms":0,"lat":22.5431,"lon":114.0579,"value":58,"limit":40,"evidence":"58 km/h for 30 s where the limit is 40 km/h","version":1,"updated_ms":1779006615000}
}

// The sink in a pipeline: migrate at start, then write each batch and commit its offsets only
// after Write returned nil.
func ExampleClickHouse_Write() {
	ctx := context.Background()
	cfg := sink.ClickHouseConfig{Addr: []string{"127.0.0.1:9000"}}
	ch, err := sink.OpenClickHouse(ctx, cfg, slog.Default(), prometheus.NewRegistry())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ch.Close()
	if err := ch.Migrate(ctx); err != nil {
		fmt.Println(err)
		return
	}
	var b sink.Batch
	b.Fixes = append(b.Fixes, record.Fix{FixID: "粤B12345-1779006615000", VehicleID: "粤B12345",
		Time: time.UnixMilli(1779006615000), Lat: 22.5431, Lon: 114.0579})
	if err := ch.Write(ctx, &b); err != nil {
		fmt.Println(err) // keep the offsets uncommitted; the batch is written again after a restart
		return
	}
	b.Reset() // commit the offsets, then reuse b for the next batch
}
