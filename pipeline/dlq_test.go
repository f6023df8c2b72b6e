package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestDeadLetters sends a battery of malformed records between valid ones: every valid record
// lands, every malformed one is in the DLQ (ClickHouse and muck.dlq) with its reason, and the
// pipeline keeps going.
func TestDeadLetters(t *testing.T) {
	env := startEnv(t, nil)
	ctx := context.Background()
	now := time.Now().UnixMilli()
	ts := func(d time.Duration) int64 { return now + d.Milliseconds() }
	gps, events := env.cfg.Kafka.Topics.GPS, env.cfg.Kafka.Topics.Events
	bad := []struct {
		topic, value, reason string
	}{
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":22.5`, "malformed_json"},
		{gps, `not json at all`, "malformed_json"},
		{gps, `{"vehicle_id":"粤B10001","ts":"yesterday","lat":22.5,"lon":114.0}`, "malformed_json"},
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":1e999,"lon":114.0}`, "invalid_number"},
		{gps, `{"ts":` + fmt.Sprint(ts(0)) + `,"lat":22.5,"lon":114.0}`, "missing_field"},
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":95.5,"lon":114.0}`, "out_of_range"},
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":0,"lon":0}`, "out_of_range"},
		{gps, `{"vehicle_id":"粤B10001","ts":4102444800000,"lat":22.5,"lon":114.0}`, "future_timestamp"},
		{gps, `{"vehicle_id":"粤B10001","ts":0,"lat":22.5,"lon":114.0}`, "stale_timestamp"},
		{gps, `{"vehicle_id":"粤B\u0001","ts":` + fmt.Sprint(ts(0)) + `,"lat":22.5,"lon":114.0}`, "invalid_id"},
		{gps, "{\"vehicle_id\":\"\xff\xfe\",\"ts\":" + fmt.Sprint(ts(0)) + `,"lat":22.5,"lon":114.0}`, "invalid_id"},
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":22.5,"lon":114.0,"pad":"` + strings.Repeat("x", 70<<10) + `"}`, "too_large"},
		{events, `{"event_id":"e-bad-1","vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"kind":"teleport","source":"cam-1"}`, "unknown_kind"},
		{events, `{"event_id":"e-bad-2","vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"kind":"weigh","source":"ws-1"}`, "missing_field"},
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":NaN,"lon":114.0}`, "malformed_json"},
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":22.5,"lon":-Infinity}`, "malformed_json"},
		// about the largest record a broker with the default message.max.bytes (1 MB) accepts
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":22.5,"lon":114.0,"pad":"` + strings.Repeat("y", 900<<10) + `"}`, "too_large"},
		{gps, `{"vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"lat":22.5,"lon":400}`, "out_of_range"},
		{events, `{"event_id":"e-bad-3","vehicle_id":"粤B10001","ts":` + fmt.Sprint(ts(0)) + `,"kind":"spillage","source":"c","confidence":2}`, "out_of_range"},
	}
	w := &kafka.Writer{Addr: kafka.TCP(env.broker), Balancer: &kafka.Hash{}, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll, BatchBytes: 8 << 20}
	defer w.Close()
	var msgs []kafka.Message
	valid := 0
	addValid := func(i int) {
		plate := fmt.Sprintf("粤B1%04d", i%7)
		msgs = append(msgs, kafka.Message{Topic: gps, Key: []byte(plate), Value: []byte(fmt.Sprintf(
			`{"vehicle_id":"%s","ts":%d,"lat":22.55,"lon":114.05,"speed_kmh":20,"event_id":"dlq-valid-%d"}`, plate, ts(time.Duration(i)*time.Second-time.Hour), i))})
		valid++
	}
	for i, b := range bad {
		addValid(2 * i)
		msgs = append(msgs, kafka.Message{Topic: b.topic, Key: []byte("粤B10001"), Value: []byte(b.value)})
		addValid(2*i + 1)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	env.waitFor("valid fixes and rejects in ClickHouse", 2*time.Minute, func() bool {
		return env.count("SELECT count() FROM positions") >= uint64(valid) && env.count("SELECT count() FROM rejects") >= uint64(len(bad))
	})
	if n := env.count("SELECT count() FROM positions"); n != uint64(valid) {
		t.Errorf("positions: %d rows, %d valid fixes sent", n, valid)
	}
	rows, err := env.conn.Query(ctx, "SELECT reason, detail, value FROM rejects ORDER BY topic, kafka_partition, kafka_offset")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var reason, detail, value string
		if err := rows.Scan(&reason, &detail, &value); err != nil {
			t.Fatal(err)
		}
		if detail == "" || value == "" {
			t.Errorf("reject %s has no detail or lost its original bytes", reason)
		}
		got[reason+"|"+value]++
	}
	rows.Close()
	for _, b := range bad {
		if got[b.reason+"|"+b.value] != 1 {
			t.Errorf("want exactly one %s reject of %.60q, reasons stored: %v", b.reason, b.value, keys(got))
		}
	}

	// The DLQ topic has them too, with the reason in a header and in the JSON.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{env.broker}, GroupID: "dlq-check", Topic: env.cfg.Outputs.DLQTopic,
		StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i := 0; i < len(bad); i++ {
		fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := r.FetchMessage(fctx)
		cancel()
		if err != nil {
			t.Fatalf("DLQ record %d of %d: %v", i+1, len(bad), err)
		}
		var dl struct {
			Reason, Detail, Topic string
			Offset                int64
		}
		if err := json.Unmarshal(m.Value, &dl); err != nil || dl.Reason == "" || dl.Detail == "" || dl.Topic == "" {
			t.Errorf("DLQ record %q is not a complete dead letter: %v", m.Value, err)
		}
		header := ""
		for _, h := range m.Headers {
			if h.Key == "muckwatch-reason" {
				header = string(h.Value)
			}
		}
		if header != dl.Reason {
			t.Errorf("DLQ header reason %q, body reason %q", header, dl.Reason)
		}
	}

	// The pipeline goes on after all that.
	msgs = msgs[:0]
	before := valid
	for i := 100; i < 110; i++ {
		addValid(i)
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	env.waitFor("fixes sent after the bad ones", time.Minute, func() bool {
		return env.count("SELECT count() FROM positions") == uint64(valid)
	})
	t.Logf("%d valid fixes stored, %d malformed records dead-lettered, %d more fixes after them", before, len(bad), valid-before)
}

func keys(m map[string]int) []string {
	var out []string
	for k := range m {
		r, _, _ := strings.Cut(k, "|")
		out = append(out, r)
	}
	return out
}
