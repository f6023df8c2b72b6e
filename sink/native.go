package sink

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// Appending a slice to a clickhouse-go column (column.Interface.Append) makes a null flag a row
// whether the column is Nullable or not, and throws it away: a byte a row and column, 17 for a
// position. At half the bench's rate that was a quarter of what the pipeline allocated, and its
// collections are the lookups' slowest moments. A column of a fixed-width number type reads its
// values instead in ClickHouse's native format (column.Interface.Decode, as from a server's
// block): the values' own memory, little-endian, copied once into the column, nothing made.

// littleEndian: the native format is little-endian, so a slice of numbers in memory is already
// in it on such a machine (the others append as before).
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// columnFeed appends built column buffers to an insert's columns (appendTo), the numbers through
// their native format. One goroutine uses it at a time; it is kept with its inserter's buffers.
type columnFeed struct {
	src byteReader    // what the column's Decode reads next
	r   *proto.Reader // over src
}

func newColumnFeed() *columnFeed {
	f := &columnFeed{}
	f.r = proto.NewReader(&f.src)
	return f
}

// appendTo appends values (a built column buffer's, colSpec.valuesOf) to col. After an error f
// may hold part of the values: drop it.
//
// Only an empty column (an insert's, reset) reads them natively: ch-go's decoding of a number
// column reads the whole column's memory from the reader, the rows already there too.
func (f *columnFeed) appendTo(col column.Interface, values any) error {
	raw, rows, ok := nativeBytes(values, col.Type())
	if !ok || col.Rows() != 0 {
		_, err := col.Append(values)
		return err
	}
	f.src.b = raw
	if err := col.Decode(f.r, rows); err != nil {
		return fmt.Errorf("cannot append %d rows: %w", rows, err)
	}
	if len(f.src.b) != 0 {
		return fmt.Errorf("%d bytes left after appending %d rows", len(f.src.b), rows)
	}
	return nil
}

// nativeBytes returns values' memory as the native format of a column of type t, and how many
// rows it holds, when values is a slice of t's own Go number type on a little-endian machine.
func nativeBytes(values any, t column.Type) ([]byte, int, bool) {
	if !littleEndian {
		return nil, 0, false
	}
	switch v := values.(type) {
	case []uint8:
		return v, len(v), t == "UInt8"
	case []uint32:
		return asBytes(v), len(v), t == "UInt32"
	case []int32:
		return asBytes(v), len(v), t == "Int32"
	case []int64:
		return asBytes(v), len(v), t == "Int64"
	case []float32:
		return asBytes(v), len(v), t == "Float32"
	case []float64:
		return asBytes(v), len(v), t == "Float64"
	}
	return nil, 0, false
}

// asBytes is s's memory.
func asBytes[E uint32 | int32 | int64 | float32 | float64](s []E) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}
