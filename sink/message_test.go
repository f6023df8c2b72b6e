package sink

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func goldenChange() detectors.Change {
	c := testAlert("569d95e0eb3e293365f0f63d", 3, detectors.ChangeResolved) // detectors.AlertID(speeding, 粤B12345, base)
	c.Alert.Severity = detectors.SeveritySevere
	c.Alert.Evidence = "车速 62.5 km/h 超过 \"深南大道\" 限速 40 km/h, 持续 35 s"
	return c
}

func TestEncodeChangeGolden(t *testing.T) {
	got := append(EncodeChange(goldenChange()), '\n')
	path := filepath.Join("testdata", "alert_change.golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./sink -run Golden -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("EncodeChange changed the muck.alerts contract (run with -update if on purpose):\n got %s\nwant %s", got, want)
	}
}

func TestEncodeReject(t *testing.T) {
	f := func(value []byte, wantValue string) {
		t.Helper()
		r := record.Reject{
			Src:    record.Source{Shard: record.Shard{Topic: "muck.fixes", Partition: 2}, Offset: 42},
			Key:    []byte("粤B12345"),
			Value:  value,
			Reason: record.ReasonOutOfRange, Detail: `field "lat": 123.4 is out of range [-90, 90]`,
			Received: time.UnixMilli(1779006615123),
		}
		var m map[string]any
		if err := json.Unmarshal(EncodeReject(r), &m); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"topic": "muck.fixes", "partition": 2.0, "offset": 42.0, "reason": "out_of_range",
			"detail": r.Detail, "key": "粤B12345", "value_b64": base64.StdEncoding.EncodeToString(value),
			"received_ms": 1779006615123.0, "value_bytes": float64(len(value)),
		}
		if wantValue != "" {
			want["value"] = wantValue
		}
		if !mapsEqual(m, want) {
			t.Errorf("EncodeReject(%q)\n got %v\nwant %v", value, m, want)
		}
	}
	f([]byte(`{"lat":123.4}`), `{"lat":123.4}`)
	f([]byte{'{', 0xff, '}'}, "") // not UTF-8: only value_b64

	// a huge record: the dead letter carries its first 64 KiB and says so
	big := []byte(`{"pad":"` + strings.Repeat("x", 900<<10) + `"}`)
	var m DeadLetterMessage
	if err := json.Unmarshal(EncodeReject(record.Reject{Value: big, Reason: record.ReasonTooLarge}), &m); err != nil {
		t.Fatal(err)
	}
	if !m.Truncated || m.ValueBytes != len(big) || len(m.Value) != MaxDeadLetterValue || len(EncodeReject(record.Reject{Value: big})) > 4*MaxDeadLetterValue {
		t.Errorf("huge record: truncated %v, value_bytes %d, value %d bytes", m.Truncated, m.ValueBytes, len(m.Value))
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
