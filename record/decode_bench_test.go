package record

import "testing"

func BenchmarkDecodeFix(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"event_id", `{"vehicle_id":"粤B12345","ts":1795420800000,"lat":22.5431,"lon":114.0579,"speed_kmh":35.5,"heading":90,"acc":true,"lifted":false,"alarm":0,"event_id":"gw-1-99"}`},
		// without event_id: its id is derived from the plate and device time when it is written
		// (Fix.ID), so decoding allocates nothing
		{"derived_id", `{"vehicle_id":"粤B12345","ts":1795420800000,"lat":22.5431,"lon":114.0579,"speed_kmh":35.5,"heading":90,"acc":true,"lifted":false,"alarm":0}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d := NewDecoder(DecodeConfig{}, nil)
			in := []byte(bc.in)
			var f Fix
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.DecodeFix(in, ref, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	d := NewDecoder(DecodeConfig{}, nil)
	in := []byte(`{"event_id":"ws-2-1","vehicle_id":"粤B12345","ts":1795420800000,"kind":"weigh","source":"ws-2","load_kg":41250,"lat":22.6,"lon":114.1}`)
	var e Event
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.DecodeEvent(in, ref, &e); err != nil {
			b.Fatal(err)
		}
	}
}
