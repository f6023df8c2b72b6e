package detectors

import (
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
		if r.Level != wantLevel || r.Score != wantScore || !strings.Contains(strings.Join(r.Reasons, "; "), wantReason) {
			t.Errorf("%s: risk %d %s %v, want %d %s with %q", plate, r.Score, r.Level, r.Reasons, wantScore, wantLevel, wantReason)
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
		if r.Score != wantScore || r.Level != wantLevel || strings.Join(r.Reasons, "; ") != strings.Join(wantReasons, "; ") || r.Reasons == nil {
			t.Errorf("UnseenRisk(%v) = %+v, want %d %s %q", registered, r, wantScore, wantLevel, wantReasons)
		}
	}
	f(true, 0, "low")
	f(false, 35, "medium", "not a registered muck truck")
}
