package sim

import "testing"

// BenchmarkFleetAppendFix is the bench producer's cost of a fix: where the vehicle is, its
// noise, and its JSON.
func BenchmarkFleetAppendFix(b *testing.B) {
	f := newTestFleet(b, loadSample(b))
	buf := make([]byte, 0, 512)
	ts := f.Origin().UnixMilli()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i = (i + 1) % f.Len()
		ts++
		buf = f.AppendFix(buf[:0], i, ts)
	}
	b.SetBytes(int64(len(buf)))
}
