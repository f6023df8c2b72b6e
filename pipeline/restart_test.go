package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestRestartContinuesEpisodes stops the pipeline while a truck is mid-episode and starts a new
// one on the same broker and database: the episode continues as the same alert (restored from the
// checkpoint topic) instead of opening a second one.
func TestRestartContinuesEpisodes(t *testing.T) {
	first := startEnv(t, nil)
	c := first.started.Engine.City()
	now := time.Now()
	var plate string
	for _, v := range c.Vehicles {
		if c.ActivePermit(v.Plate, now) != nil {
			plate = v.Plate
			break
		}
	}
	gps := first.cfg.Kafka.Topics.GPS
	start := now.Add(-20 * time.Minute)
	lat0, lon0 := 22.5700, 114.1300
	speeding := func(from, to int) []kafka.Message {
		var ms []kafka.Message
		for i := from; i < to; i++ {
			ms = append(ms, fixMsg(gps, plate, start.Add(time.Duration(i)*10*time.Second), lat0, lon0+float64(i)*0.0024, 90))
		}
		return ms
	}
	produce(t, first.broker, speeding(0, 4)...)
	first.waitFor("the speeding alert", 30*time.Second, func() bool {
		return first.count("SELECT count() FROM alert_changes WHERE rule = 'speeding' AND vehicle_id = ? AND kind = 'opened'", plate) == 1
	})
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	second := startEnv(t, func(cfg *Config) {
		cfg.Kafka.Brokers, cfg.Outputs.Brokers = first.cfg.Kafka.Brokers, first.cfg.Outputs.Brokers
		cfg.ClickHouse.Database = first.cfg.ClickHouse.Database
	})
	msgs := speeding(4, 8)
	for i := 8; i < 18; i++ { // back to a legal speed for over a minute
		msgs = append(msgs, fixMsg(gps, plate, start.Add(time.Duration(i)*10*time.Second), lat0, lon0+0.0192+float64(i-8)*0.0008, 30))
	}
	produce(t, first.broker, msgs...)
	second.waitFor("the fixes stored", 30*time.Second, func() bool {
		return second.count("SELECT count() FROM positions WHERE vehicle_id = ?", plate) >= 18
	})
	t.Logf("changes: %d", second.count("SELECT count() FROM alert_changes WHERE vehicle_id = ?", plate))
	// alert_changes and alerts are written side by side: wait for the snapshot table too, which is
	// what the assertions below read.
	second.waitFor("the speeding alert resolved", 30*time.Second, func() bool {
		return second.count("SELECT count() FROM alert_changes WHERE rule = 'speeding' AND vehicle_id = ? AND kind = 'resolved'", plate) >= 1 &&
			second.count("SELECT count() FROM alerts FINAL WHERE rule = 'speeding' AND vehicle_id = ? AND end_ms != 0", plate) >= 1
	})
	if n := second.count("SELECT uniqExact(alert_id) FROM alert_changes WHERE rule = 'speeding' AND vehicle_id = ?", plate); n != 1 {
		t.Errorf("the speeding episode gave %d alerts across the restart, want 1", n)
	}
	var startMs, endMs int64
	if err := second.conn.QueryRow(context.Background(), "SELECT min(start_ms), max(end_ms) FROM alerts FINAL WHERE rule = 'speeding' AND vehicle_id = ?", plate).Scan(&startMs, &endMs); err != nil {
		t.Fatal(err)
	}
	if startMs != start.UnixMilli() || endMs != start.Add(80*time.Second).UnixMilli() {
		t.Errorf("episode %s..%s, want %s..%s", time.UnixMilli(startMs), time.UnixMilli(endMs), start, start.Add(80*time.Second))
	}
}
