package sink

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// TestEncodeChangeMatchesEncodingJSON checks the hand-written encoder against encoding/json.
func TestEncodeChangeMatchesEncodingJSON(t *testing.T) {
	f := func(c detectors.Change) {
		t.Helper()
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(NewAlertMessage(c)); err != nil {
			t.Fatal(err)
		}
		got := append(EncodeChange(c), '\n')
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("EncodeChange\n got %s\nwant %s", got, want.Bytes())
		}
		var back AlertMessage
		if err := json.Unmarshal(got, &back); err != nil || utf8.ValidString(c.Alert.Evidence) && back != NewAlertMessage(c) {
			t.Errorf("EncodeChange does not decode back: %v\n%+v", err, back)
		}
	}
	f(goldenChange())
	f(testAlert("a", 1, detectors.ChangeOpened))
	f(detectors.Change{})
	c := testAlert("a\"\\\n\t\x00\x1f<>&\u2028\u2029\x7f", math.MaxUint64, detectors.ChangeUpdated)
	c.Alert.Evidence = "bad utf-8 \xff\xfe end \xe4\xb8"
	c.Alert.Lat, c.Alert.Lon, c.Alert.Value, c.Alert.Limit = 1e-7, -1e21, 123456789.125, -0.000001
	f(c)
}

func TestEncodeChangeNaN(t *testing.T) {
	c := testAlert("a", 1, detectors.ChangeOpened)
	c.Alert.Value, c.Alert.Limit = math.NaN(), math.Inf(1)
	var m map[string]any
	if err := json.Unmarshal(EncodeChange(c), &m); err != nil {
		t.Fatalf("EncodeChange with NaN is not JSON: %v", err)
	}
	if m["value"] != nil || m["limit"] != nil {
		t.Errorf("NaN and Inf encoded as %v and %v, want null", m["value"], m["limit"])
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "粤B12345", "a\"b\\c\n\x00", "\xff\xe4\xb8", "\u2028<&>", "\x7f\u00e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := append(appendJSONString(nil, s), '\n')
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want.Bytes())
		}
	})
}

func TestEncodeReject(t *testing.T) {
	f := func(value []byte, wantValue string) {
		t.Helper()
		r := record.Reject{
			Src:    record.Source{Topic: "muck.fixes", Partition: 2, Offset: 42},
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
