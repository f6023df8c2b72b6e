package detectors

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/record"
)

// The risk score follows a vehicle's live state and history: an unregistered truck starts
// medium; open severe alerts make it high; resolved alerts leave their history.
func TestRiskScore(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	fix := func(plate string, sec int, x, speed float64) {
		ll := c.Proj.Inverse([2]float64{x, 0})
		f := record.Fix{VehicleID: plate, Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: float32(speed), HasSpeed: true}
		eng.ProcessFix(&f)
	}
	f := func(plate string, wantLevel string, wantScore int, wantReason string) {
		t.Helper()
		r, ok := eng.Risk(plate)
		if !ok {
			t.Fatalf("no risk for %s", plate)
		}
		if r.Level != wantLevel || r.Score != wantScore || !strings.Contains(strings.Join(r.Reasons(), "; "), wantReason) {
			t.Errorf("%s: risk %d %s %v, want %d %s with %q", plate, r.Score, r.Level, r.Reasons(), wantScore, wantLevel, wantReason)
		}
	}
	fix("粤B00001", 0, 1000, 30)
	f("粤B00001", "low", 0, "")
	// one open severe alert of a registered, permitted truck is high on its own (35 + 4 would be
	// medium)
	fix("粤B00001", 10, 1200, 70)
	fix("粤B00001", 20, 1400, 70)
	f("粤B00001", "high", 60, "open severe speeding alert")
	if _, ok := eng.Risk("粤B99998"); ok {
		t.Error("a vehicle never seen has no risk")
	}
	fix("粤Z99999", 0, 1000, 0)
	f("粤Z99999", "medium", 35, "not a registered muck truck")
	// speeding far above the default limit: severe, and the unregistered truck is unlicensed (severe)
	fix("粤Z99999", 10, 1200, 70)
	fix("粤Z99999", 20, 1400, 70)
	f("粤Z99999", "high", 100, "open severe speeding alert")
	// back to a legal speed for a minute (clear_for): speeding resolves; unlicensed stays open;
	// both remain as history
	for sec := 30; sec <= 90; sec += 10 {
		fix("粤Z99999", sec, 1550+float64(sec-30)*8, 30)
	}
	f("粤Z99999", "high", 35+8+35, "2 violations in the last 30 days")
}

func TestUnseenRisk(t *testing.T) {
	f := func(registered bool, wantScore int, wantLevel string, wantReasons ...string) {
		t.Helper()
		r := UnseenRisk(registered)
		if r.Score != wantScore || r.Level != wantLevel || strings.Join(r.Reasons(), "; ") != strings.Join(wantReasons, "; ") || r.Factors == nil {
			t.Errorf("UnseenRisk(%v) = %+v, want %d %s %q", registered, r, wantScore, wantLevel, wantReasons)
		}
	}
	f(true, 0, "low")
	f(false, 35, "medium", "not a registered muck truck")
}

// TestRiskFactors: the factors are the reasons as data, in the reasons' order: a console words
// them in its user's language.
func TestRiskFactors(t *testing.T) {
	c, eng := loadTestEngine(t)
	start := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for sec := 0; sec <= 20; sec += 10 {
		ll := c.Proj.Inverse([2]float64{1000 + float64(sec)*20, 0})
		f := record.Fix{VehicleID: "粤Z99999", Time: start.Add(time.Duration(sec) * time.Second), Lat: ll[1], Lon: ll[0], SpeedKmh: 70, HasSpeed: true}
		eng.ProcessFix(&f)
	}
	r, ok := eng.Risk("粤Z99999")
	if !ok {
		t.Fatal("no risk for 粤Z99999")
	}
	var got []string
	for _, f := range r.Factors {
		got = append(got, fmt.Sprintf("%s %s %s %d", f.Kind, f.Severity, f.Rule, f.Count))
		if f.Kind == RiskOpenAlert && (f.SinceMs < start.UnixMilli() || f.SinceMs > start.Add(20*time.Second).UnixMilli()) {
			t.Errorf("%s alert open since %d, outside the fixes' 20 s from %d", f.Rule, f.SinceMs, start.UnixMilli())
		}
	}
	// the two alerts opened are also the vehicle's violations of the last 30 days
	want := []string{"open_alert severe speeding 0", "open_alert severe unlicensed 0", "violations   2", "unregistered   0"}
	if !slices.Equal(got, want) {
		t.Errorf("factors %q, want %q", got, want)
	}
	words := r.Reasons()
	if len(words) != len(r.Factors) || !strings.HasPrefix(words[0], "open severe speeding alert since 2026-11-23T02:00:") || words[3] != "not a registered muck truck" {
		t.Errorf("reasons %q", words)
	}
}

func TestRiskFactorWords(t *testing.T) {
	since := time.Date(2026, 12, 6, 17, 24, 32, 0, time.UTC).UnixMilli()
	cases := []struct {
		f    RiskFactor
		want string
	}{
		{RiskFactor{Kind: RiskOpenAlert, Rule: RuleRouteDeviation, Severity: SeveritySevere, SinceMs: since}, "open severe route_deviation alert since 2026-12-06T17:24:32Z"},
		{RiskFactor{Kind: RiskViolations, Count: 1}, "1 violation in the last 30 days"},
		{RiskFactor{Kind: RiskViolations, Count: 2}, "2 violations in the last 30 days"},
		{RiskFactor{Kind: RiskUnregistered}, "not a registered muck truck"},
		{RiskFactor{Kind: RiskNoPermit}, "no muck-transport permit valid now"},
	}
	for _, tc := range cases {
		if got := tc.f.Words(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
}

// TestRiskJSON: a Risk goes out with its factors as data and in words, and comes back (the
// shared view's live records) with the same factors; a risk without any has empty lists, not
// null.
func TestRiskJSON(t *testing.T) {
	in := Risk{Score: 78, Level: "high", Updated: time.UnixMilli(1_765_000_000_000).UTC(), Factors: []RiskFactor{
		{Kind: RiskOpenAlert, Rule: RuleSpeeding, Severity: SeveritySevere, SinceMs: 1_765_000_000_000},
		{Kind: RiskViolations, Count: 2},
	}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"score":78,"level":"high","reasons":["open severe speeding alert since 2025-12-06T05:46:40Z","2 violations in the last 30 days"],` +
		`"factors":[{"kind":"open_alert","rule":"speeding","severity":"severe","since_ms":1765000000000},{"kind":"violations","count":2}],"updated":"2025-12-06T05:46:40Z"}`
	if string(b) != want {
		t.Errorf("encoded\n%s\nwant\n%s", b, want)
	}
	var back Risk
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Score != in.Score || back.Level != in.Level || !back.Updated.Equal(in.Updated) || !slices.Equal(back.Factors, in.Factors) {
		t.Errorf("decoded %+v, want %+v", back, in)
	}
	b, err = json.Marshal(Risk{Level: "low"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"reasons":[],"factors":[]`) {
		t.Errorf("a risk without factors encodes as %s", b)
	}
	if err := json.Unmarshal([]byte(`{"score":"x"}`), &back); err == nil {
		t.Error("a score that is not a number decoded")
	}
}
