package record

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

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

// BenchmarkDecodeFixFleet decodes the fixes of a fleet in turn, as a consumer does: the table of
// plates is larger than the caches, unlike with one plate decoded again and again. In the
// pipeline the detectors' reads of the fleet's state come between two records and push the table
// out of the caches: "between reads" reads 8 random cache lines of 128 MB after each record (the
// figure to compare is the difference from "reads alone").
const warmAhead = 16

func BenchmarkDecodeFixFleet(b *testing.B) {
	const fleet = 100_000
	// the records one after another in one buffer, as fetched, the plates in a random order
	plates := rand.New(rand.NewPCG(1, 2)).Perm(fleet)
	var buf []byte
	ends := make([]int, fleet)
	for i, p := range plates {
		buf = fmt.Appendf(buf, `{"vehicle_id":"粤B%05d","ts":1795420800000,"lat":22.5431,"lon":114.0579,"speed_kmh":35.5,"heading":90,"acc":true,"lifted":false,"alarm":0}`, p)
		ends[i] = len(buf)
	}
	in := make([][]byte, fleet)
	for i := range in {
		in[i] = buf[ends[i]-len(buf[:ends[0]]) : ends[i]]
	}
	d := NewDecoder(DecodeConfig{}, nil)
	d.NumberPlates(NewPlateNumbers())
	var f Fix
	for _, v := range in { // every plate known, as in steady state
		if err := d.DecodeFix(v, ref, &f); err != nil {
			b.Fatal(err)
		}
	}
	state := make([]uint64, 16<<20) // 128 MB
	rng := rand.New(rand.NewPCG(3, 4))
	var sum uint64
	reads := func() {
		for range 8 {
			sum += state[rng.IntN(len(state))]
		}
	}
	keys := make([][]byte, fleet)
	for i := range keys {
		keys[i] = in[i][15:24]
	}
	var warmed uint32
	for _, bc := range []struct {
		name                 string
		decode, others, warm bool
	}{
		{"alone", true, false, false},
		{"between reads", true, true, false},
		{"between reads, warmed", true, true, true},
		{"reads alone", false, true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if bc.warm && i%warmAhead == 0 {
					warmed += d.Warm(keys[i:min(i+warmAhead, fleet)])
				}
				if bc.decode {
					if err := d.DecodeFix(in[i], ref, &f); err != nil {
						b.Fatal(err)
					}
					if err := d.CheckKey(in[i][15:24], f.VehicleID); err != nil {
						b.Fatal(err)
					}
				}
				if bc.others {
					reads()
				}
				if i++; i == fleet {
					i = 0
				}
			}
		})
	}
	if sum == 1 || warmed == 1 {
		b.Log(sum, warmed) // keeps the reads
	}
}
