package record

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"
)

// ref is the arrival time the testdata's timestamps are judged against.
var ref = time.UnixMilli(1795420800000).UTC()

func normalizeForTest(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

type fixture struct {
	line    int
	verdict string
	json    string
}

func readFixtures(t testing.TB, name string) []fixture {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		verdict, js, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("testdata/%s:%d: no tab", name, n)
		}
		out = append(out, fixture{n, verdict, js})
	}
	return out
}

func checkVerdict(t *testing.T, name string, fx fixture, err error) {
	t.Helper()
	switch {
	case fx.verdict == "ok" && err != nil:
		t.Errorf("testdata/%s:%d: want ok, got %v", name, fx.line, err)
	case fx.verdict != "ok" && err == nil:
		t.Errorf("testdata/%s:%d: want %s, got ok", name, fx.line, fx.verdict)
	case fx.verdict != "ok":
		var re *RejectError
		if !errors.As(err, &re) {
			t.Errorf("testdata/%s:%d: error %v is not a RejectError", name, fx.line, err)
		} else if string(re.Reason) != fx.verdict {
			t.Errorf("testdata/%s:%d: want reason %s, got %s (%s)", name, fx.line, fx.verdict, re.Reason, re.Detail)
		} else if re.Detail == "" {
			t.Errorf("testdata/%s:%d: reject has no detail", name, fx.line)
		}
	}
}

func TestDecodeFixFixtures(t *testing.T) {
	d := NewDecoder(DecodeConfig{}, normalizeForTest)
	for _, fx := range readFixtures(t, "fixes.txt") {
		var f Fix
		checkVerdict(t, "fixes.txt", fx, d.DecodeFix([]byte(fx.json), ref, &f))
	}
}

func TestDecodeEventFixtures(t *testing.T) {
	d := NewDecoder(DecodeConfig{}, normalizeForTest)
	for _, fx := range readFixtures(t, "events.txt") {
		var e Event
		checkVerdict(t, "events.txt", fx, d.DecodeEvent([]byte(fx.json), ref, &e))
	}
}

func TestDecodeOfficerFixtures(t *testing.T) {
	d := NewDecoder(DecodeConfig{}, normalizeForTest)
	for _, fx := range readFixtures(t, "officers.txt") {
		var o OfficerPosition
		checkVerdict(t, "officers.txt", fx, d.DecodeOfficer([]byte(fx.json), ref, &o))
	}
}

func TestDecodeFixValues(t *testing.T) {
	d := NewDecoder(DecodeConfig{}, normalizeForTest)
	// id: the fix's id, its event_id or the one derived from plate and device time (left
	// underived in FixID by the decoder).
	f := func(in string, want Fix, id string) {
		t.Helper()
		var got Fix
		if err := d.DecodeFix([]byte(in), ref, &got); err != nil {
			t.Fatalf("DecodeFix(%s): %v", in, err)
		}
		if got != want {
			t.Fatalf("DecodeFix(%s):\n got %+v\nwant %+v", in, got, want)
		}
		if got.ID() != id || string(got.AppendID([]byte("x"))) != "x"+id {
			t.Fatalf("DecodeFix(%s): id %q, appended %q, want %q", in, got.ID(), got.AppendID([]byte("x")), id)
		}
	}
	f(`{"vehicle_id":"粤b 12345","ts":1795420800123,"lat":22.5431,"lon":114.0579,"speed_kmh":35.5,"heading":90,"acc":true,"lifted":true,"alarm":4}`,
		Fix{VehicleID: "粤B12345", Time: time.UnixMilli(1795420800123).UTC(), Lat: 22.5431, Lon: 114.0579,
			SpeedKmh: 35.5, HasSpeed: true, Heading: 90, HasHeading: true, ACC: true, Lifted: true, Alarm: 4}, "粤B12345@1795420800123")
	f(`{"event_id":"g-1","vehicle_id":"粤B1","ts":1795420800000,"lat":-1,"lon":1,"lat":2}`,
		Fix{FixID: "g-1", VehicleID: "粤B1", Time: ref, Lat: 2, Lon: 1}, "g-1")
	f(`{"vehicle_id":"A\"\\\/","ts":1795420800000,"lat":1,"lon":1}`,
		Fix{VehicleID: "A\"\\/", Time: ref, Lat: 1, Lon: 1}, "A\"\\/@1795420800000")
}

func TestDecodeEventValues(t *testing.T) {
	d := NewDecoder(DecodeConfig{}, nil)
	var e Event
	in := `{"event_id":"ws-2-1","vehicle_id":"粤B12345","ts":1795420800000,"kind":"weigh","source":"ws-2","site_id":"S1","load_kg":41250.5,"lat":22.6,"lon":114.1,"confidence":0.5,"cover_closed":true}`
	if err := d.DecodeEvent([]byte(in), ref, &e); err != nil {
		t.Fatal(err)
	}
	want := Event{EventID: "ws-2-1", VehicleID: "粤B12345", Time: ref, Kind: KindWeigh, Source: "ws-2", SiteID: "S1",
		Lat: 22.6, Lon: 114.1, HasPos: true, LoadKg: 41250.5, HasLoad: true, CoverClosed: true, HasCover: true, Confidence: 0.5}
	if e != want {
		t.Fatalf("got %+v\nwant %+v", e, want)
	}
}

func TestDecodeTooLarge(t *testing.T) {
	d := NewDecoder(DecodeConfig{MaxRecordBytes: 1024}, nil)
	big := `{"vehicle_id":"粤B12345","ts":1795420800000,"lat":22.5,"lon":114.0,"pad":"` + strings.Repeat("x", 2000) + `"}`
	var f Fix
	if err := d.DecodeFix([]byte(big), ref, &f); ReasonOf(err) != ReasonTooLarge {
		t.Fatalf("want too_large, got %v", err)
	}
}

func TestDecodeDoesNotKeepInput(t *testing.T) {
	d := NewDecoder(DecodeConfig{}, nil)
	buf := []byte(`{"vehicle_id":"粤B12345","ts":1795420800000,"lat":22.5,"lon":114.0,"event_id":"e\u0031"}`)
	var f Fix
	if err := d.DecodeFix(buf, ref, &f); err != nil {
		t.Fatal(err)
	}
	for i := range buf {
		buf[i] = 'z'
	}
	if f.VehicleID != "粤B12345" || f.FixID != "e1" {
		t.Fatalf("decoded strings changed with the input buffer: %+v", f)
	}
}

func TestParseEventKind(t *testing.T) {
	for k := KindGateEntry; k <= KindMuddyWheels; k++ {
		if got := ParseEventKind(k.String()); got != k {
			t.Errorf("ParseEventKind(%q) = %v", k.String(), got)
		}
	}
	if ParseEventKind("unknown") != KindUnknown || ParseEventKind("") != KindUnknown {
		t.Error("unknown names must parse to KindUnknown")
	}
}

// A record whose key names another vehicle than its body is rejected as key_mismatch; a key
// written differently for the same plate (normalised alike), or no key, is accepted.
func TestCheckKey(t *testing.T) {
	dec := NewDecoder(DecodeConfig{}, strings.ToUpper)
	f := func(key, body string, want Reason) {
		t.Helper()
		var fx Fix
		value := `{"vehicle_id":"` + body + `","ts":1767225600000,"lat":22.5,"lon":114.0}`
		if err := dec.DecodeFix([]byte(value), time.UnixMilli(1767225600000), &fx); err != nil {
			t.Fatalf("%s: %v", value, err)
		}
		err := dec.CheckKey([]byte(key), fx.VehicleID)
		if got := Reason(""); err != nil {
			got = ReasonOf(err)
			if got != want {
				t.Errorf("key %q, body %q: %v, want %q", key, body, err, want)
			}
		} else if want != "" {
			t.Errorf("key %q, body %q: accepted, want %q", key, body, want)
		}
	}
	f("粤B00001", "粤B00001", "")
	f("粤b00001", "粤B00001", "")
	f("", "粤B00004", "")
	f("粤B00001", "粤B00004", ReasonKeyMismatch)
	f("粤B00004", "粤B00001", ReasonKeyMismatch)
}
