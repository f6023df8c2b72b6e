package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// newBroker starts an in-process Kafka broker on a TCP port of 127.0.0.1.
func newBroker(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(4, DefaultAlertsTopic, DefaultDLQTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// readAll reads n records of topic from every partition, from the start.
func readAll(t *testing.T, broker, topic string, n int) []kafka.Message {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{broker},
		Topic:       topic,
		GroupID:     "sink-test-" + topic,
		StartOffset: kafka.FirstOffset,
		MaxWait:     50 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var msgs []kafka.Message
	for len(msgs) < n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %d of %d records of %s: %v", len(msgs), n, topic, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func TestKafkaOutput(t *testing.T) {
	broker := newBroker(t)
	reg := prometheus.NewRegistry()
	o, err := NewKafkaOutput(KafkaOutputConfig{Brokers: []string{broker}}, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := o.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	var changes []detectors.Change
	for v := uint64(1); v <= 3; v++ {
		kind := detectors.ChangeUpdated
		switch v {
		case 1:
			kind = detectors.ChangeOpened
		case 3:
			kind = detectors.ChangeResolved
		}
		changes = append(changes, testAlert("a-1", v, kind))
	}
	other := testAlert("a-2", 1, detectors.ChangeOpened)
	other.Alert.VehicleID = "粤BD7788"
	changes = append(changes, other)
	rejects := testBatch().Rejects
	rejects = append(rejects, record.Reject{
		Src: record.Source{Shard: record.Shard{Topic: "muck.events", Partition: 1}, Offset: 9}, Value: []byte(`{"kind":"teleport"}`),
		Reason: record.ReasonUnknownKind, Detail: `field "kind": "teleport" is not an event kind`, Received: base,
	})
	if err := o.Write(ctx, changes[:2], nil); err != nil {
		t.Fatal(err)
	}
	if err := o.Write(ctx, changes[2:], rejects); err != nil {
		t.Fatal(err)
	}
	if err := o.Write(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}

	alerts := readAll(t, broker, DefaultAlertsTopic, len(changes))
	lastVersion := map[string]uint64{}
	partitionOf := map[string]int{}
	for _, m := range alerts {
		var got detectors.Change
		if err := json.Unmarshal(m.Value, &got); err != nil {
			t.Fatalf("alert record %s is not JSON: %v", m.Value, err)
		}
		am := &got.Alert
		if string(m.Key) != am.VehicleID {
			t.Errorf("alert record key %q, vehicle %q", m.Key, am.VehicleID)
		}
		want := changes[0]
		for _, c := range changes {
			if c.Alert.ID == am.ID && c.Alert.Version == am.Version {
				want = c
			}
		}
		if !bytes.Equal(m.Value, EncodeChange(want)) || am.Evidence != want.Alert.Evidence || !am.Updated.Equal(want.Alert.Updated) {
			t.Errorf("alert record\n got %s\nwant %s", m.Value, EncodeChange(want))
		}
		// one vehicle's changes are in one partition, in order
		if p, ok := partitionOf[am.VehicleID]; ok && p != m.Partition {
			t.Errorf("vehicle %s in partitions %d and %d", am.VehicleID, p, m.Partition)
		}
		partitionOf[am.VehicleID] = m.Partition
		if am.Version <= lastVersion[am.ID] {
			t.Errorf("alert %s: version %d after %d", am.ID, am.Version, lastVersion[am.ID])
		}
		lastVersion[am.ID] = am.Version
	}
	if lastVersion["a-1"] != 3 || lastVersion["a-2"] != 1 {
		t.Errorf("last versions = %v", lastVersion)
	}

	dlq := readAll(t, broker, DefaultDLQTopic, len(rejects))
	for _, m := range dlq {
		var dm DeadLetterMessage
		if err := json.Unmarshal(m.Value, &dm); err != nil {
			t.Fatalf("dead letter %s is not JSON: %v", m.Value, err)
		}
		var r record.Reject
		for _, x := range rejects {
			if x.Src == (record.Source{Shard: record.Shard{Topic: dm.Topic, Partition: dm.Partition}, Offset: dm.Offset}) {
				r = x
			}
		}
		if dm != NewDeadLetterMessage(r) {
			t.Errorf("dead letter\n got %+v\nwant %+v", dm, NewDeadLetterMessage(r))
		}
		if string(m.Key) != string(r.Key) {
			t.Errorf("dead letter key %q, want %q", m.Key, r.Key)
		}
		if len(m.Headers) != 1 || m.Headers[0].Key != ReasonHeader || string(m.Headers[0].Value) != string(r.Reason) {
			t.Errorf("dead letter headers %v, want %s: %s", m.Headers, ReasonHeader, r.Reason)
		}
	}
	if got := metricValue(t, o.m.produced.WithLabelValues(DefaultAlertsTopic)); got != float64(len(changes)) {
		t.Errorf("produced alerts = %v, want %d", got, len(changes))
	}
	if got := metricValue(t, o.m.produced.WithLabelValues(DefaultDLQTopic)); got != float64(len(rejects)) {
		t.Errorf("produced dead letters = %v, want %d", got, len(rejects))
	}
}

func TestKafkaOutputBrokerDown(t *testing.T) {
	c, err := kfake.NewCluster(kfake.Ports(0))
	if err != nil {
		t.Fatal(err)
	}
	broker := c.ListenAddrs()[0]
	c.Close()
	o, err := NewKafkaOutput(KafkaOutputConfig{Brokers: []string{broker}}, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = o.Write(ctx, []detectors.Change{testAlert("a", 1, detectors.ChangeOpened)}, testBatch().Rejects)
	if err == nil || !strings.Contains(err.Error(), "cannot produce") {
		t.Fatalf("Write to a stopped broker = %v", err)
	}
	if got := metricValue(t, o.m.errors.WithLabelValues(DefaultAlertsTopic)); got != 1 {
		t.Errorf("produce errors for alerts = %v, want 1", got)
	}
}
