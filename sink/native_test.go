package sink

import (
	"bytes"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// encoded is col's block encoding, what goes to the server.
func encoded(col column.Interface) []byte {
	var b proto.Buffer
	col.Encode(&b)
	return b.Buf
}

func newColumn(t testing.TB, typ column.Type) column.Interface {
	t.Helper()
	col, err := typ.Column("c", &column.ServerContext{Timezone: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return col
}

// appendBoth appends each of batches to a column of typ by columnFeed and to another by
// clickhouse-go's Append, and fails unless both hold the same rows, encoded alike.
func appendBoth(t testing.TB, typ column.Type, batches ...any) {
	t.Helper()
	feed, byFeed, byAppend := newColumnFeed(), newColumn(t, typ), newColumn(t, typ)
	for _, values := range batches {
		if err := feed.appendTo(byFeed, values); err != nil {
			t.Fatalf("%s: columnFeed: %v", typ, err)
		}
		if _, err := byAppend.Append(values); err != nil {
			t.Fatalf("%s: Append: %v", typ, err)
		}
	}
	if byFeed.Rows() != byAppend.Rows() {
		t.Fatalf("%s: %d rows through the feed, %d through Append", typ, byFeed.Rows(), byAppend.Rows())
	}
	if got, want := encoded(byFeed), encoded(byAppend); !bytes.Equal(got, want) {
		t.Fatalf("%s: the feed's column encodes as % x, Append's as % x", typ, got, want)
	}
}

// A column appended through its native format holds what clickhouse-go's Append puts in it, for
// every number type it takes that way, and so does one appended to again (through Append: the
// native decoding reads a whole column); other columns go through Append.
func TestColumnFeedAppendsAsAppend(t *testing.T) {
	cases := []struct {
		typ     column.Type
		batches []any
	}{
		{"UInt8", []any{[]uint8{0, 1, 255}, []uint8{}, []uint8{7}}},
		{"UInt32", []any{[]uint32{0, 1, math.MaxUint32, 1 << 31}, []uint32{42}}},
		{"Int32", []any{[]int32{math.MinInt32, -1, 0, math.MaxInt32}, []int32{3}}},
		{"Int64", []any{[]int64{math.MinInt64, -1, 0, math.MaxInt64, 1764547200123}, []int64{}}},
		{"Float32", []any{[]float32{0, float32(math.Copysign(0, -1)), 22.5, float32(math.Inf(-1)), float32(math.NaN()), math.MaxFloat32}}},
		{"Float64", []any{[]float64{22.543123, 114.057868, math.Inf(1), math.NaN(), math.SmallestNonzeroFloat64}, []float64{-0.5}}},
		// not taken natively: the Go type is not the column's own
		{"DateTime", []any{[]int64{0, 1764547200}}},
		{"UInt64", []any{[]uint64{1, math.MaxUint64}}},
		{"String", []any{[]string{"粤B12345", "", "muck.gps"}}},
	}
	for _, tc := range cases {
		t.Run(string(tc.typ), func(t *testing.T) { appendBoth(t, tc.typ, tc.batches...) })
	}
	if _, _, ok := nativeBytes([]int64{1}, "DateTime"); ok {
		t.Error("[]int64 taken natively into a DateTime column (UInt32 on the wire)")
	}
	if _, _, ok := nativeBytes([]float64{1}, "Float64"); !ok && littleEndian {
		t.Error("[]float64 into a Float64 column not taken natively")
	}
}

// Once the column has held as many rows, appending through the feed makes nothing; Append made a
// null flag a row.
func TestColumnFeedAllocatesNothing(t *testing.T) {
	if !littleEndian {
		t.Skip("the feed appends through Append on a big-endian machine")
	}
	if raceEnabled { // make test runs it again without the race detector
		t.Skip("under the race detector ch-go's decoding makes the slice it appends (append(s, make(...)...)); an optimised build does not")
	}
	feed, col := newColumnFeed(), newColumn(t, "Float64")
	values := make([]float64, 4096)
	for i := range values {
		values[i] = float64(i) / 7
	}
	var built any = values // as an inserter's buffers hold them
	allocs := testing.AllocsPerRun(20, func() {
		col.Reset()
		if err := feed.appendTo(col, built); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("appending 4,096 rows through the feed made %.1f allocations, want none", allocs)
	}
}

func FuzzColumnFeed(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, uint8(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0xf8, 0x7f}, uint8(5))
	f.Fuzz(func(t *testing.T, raw []byte, kind uint8) {
		cut := func(size int) int { return len(raw) / size * size }
		switch kind % 6 {
		case 0:
			appendBoth(t, "UInt8", bytes.Clone(raw), raw[:len(raw)/2])
		case 1:
			appendBoth(t, "UInt32", fromBytes[uint32](raw[:cut(4)]))
		case 2:
			appendBoth(t, "Int32", fromBytes[int32](raw[:cut(4)]))
		case 3:
			appendBoth(t, "Int64", fromBytes[int64](raw[:cut(8)]))
		case 4:
			appendBoth(t, "Float32", fromBytes[float32](raw[:cut(4)]))
		case 5:
			appendBoth(t, "Float64", fromBytes[float64](raw[:cut(8)]), fromBytes[float64](raw[:cut(8)/2/8*8]))
		}
	})
}

// fromBytes reads raw as a slice of E, in a copy of its own.
func fromBytes[E uint32 | int32 | int64 | float32 | float64](raw []byte) []E {
	var zero E
	size := int(unsafe.Sizeof(zero))
	out := make([]E, len(raw)/size)
	copy(asBytes(out), raw)
	return out
}
