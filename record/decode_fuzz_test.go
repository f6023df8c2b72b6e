package record

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"unicode/utf8"
)

func seedFuzz(f *testing.F, names ...string) {
	for _, name := range names {
		for _, fx := range readFixtures(f, name) {
			f.Add([]byte(fx.json))
		}
	}
}

func knownReason(r Reason) bool {
	for _, k := range AllReasons() {
		if k == r {
			return true
		}
	}
	return false
}

func checkRejectErr(t *testing.T, err error) {
	var re *RejectError
	if !errors.As(err, &re) {
		t.Fatalf("error is not a RejectError: %v", err)
	}
	if !knownReason(re.Reason) || re.Detail == "" {
		t.Fatalf("reject with unknown reason or no detail: %+v", re)
	}
}

func FuzzDecodeFix(f *testing.F) {
	seedFuzz(f, "fixes.txt")
	d := NewDecoder(DecodeConfig{}, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		var fix Fix
		err := d.DecodeFix(in, ref, &fix)
		if err != nil {
			checkRejectErr(t, err)
			return
		}
		// An accepted record is valid JSON, and its values are in range.
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		if fix.VehicleID == "" || !utf8.ValidString(fix.VehicleID) || fix.ID() == "" {
			t.Fatalf("accepted bad ids: %+v", fix)
		}
		if math.Abs(fix.Lat) > 90 || math.Abs(fix.Lon) > 180 || math.IsNaN(fix.Lat) || math.IsNaN(fix.Lon) {
			t.Fatalf("accepted bad position: %+v", fix)
		}
		if fix.SpeedKmh < 0 || fix.Heading < 0 || fix.Heading > 360 {
			t.Fatalf("accepted bad speed or heading: %+v", fix)
		}
		// encoding/json agrees on the vehicle id.
		var m struct {
			VehicleID string `json:"vehicle_id"`
		}
		if err := json.Unmarshal(in, &m); err == nil && m.VehicleID != fix.VehicleID {
			t.Fatalf("vehicle_id %q, encoding/json says %q", fix.VehicleID, m.VehicleID)
		}
	})
}

func FuzzDecodeEvent(f *testing.F) {
	seedFuzz(f, "events.txt")
	d := NewDecoder(DecodeConfig{}, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		var e Event
		err := d.DecodeEvent(in, ref, &e)
		if err != nil {
			checkRejectErr(t, err)
			return
		}
		if !json.Valid(in) || e.Kind == KindUnknown || e.EventID == "" || e.Confidence < 0 || e.Confidence > 1 {
			t.Fatalf("accepted bad event %+v from %q", e, in)
		}
	})
}

func FuzzDecodeOfficer(f *testing.F) {
	seedFuzz(f, "officers.txt")
	d := NewDecoder(DecodeConfig{}, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		var o OfficerPosition
		err := d.DecodeOfficer(in, ref, &o)
		if err != nil {
			checkRejectErr(t, err)
			return
		}
		if !json.Valid(in) || o.OfficerID == "" {
			t.Fatalf("accepted bad officer position %+v from %q", o, in)
		}
	})
}
