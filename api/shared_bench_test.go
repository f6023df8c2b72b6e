package api

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// The live records a shared view's instances write (one per vehicle touched per batch) and read
// (each instance reads every one): JSON both ways.
func BenchmarkLiveRecord(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "live", "vehicle.json"))
	if err != nil {
		b.Fatal(err)
	}
	r, err := DecodeLiveRecord(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := json.Marshal(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode+apply", func(b *testing.B) {
		l, _ := testLive()
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			r, err := DecodeLiveRecord(raw)
			if err != nil {
				b.Fatal(err)
			}
			l.ApplyLive(r)
		}
	})
}
