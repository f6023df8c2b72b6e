package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"
)

// encodeBatch encodes recs as one record batch v2 with kafka-go's own encoder (an implementation
// independent of batchReader's), compressed with c, its base offset set to base.
func encodeBatch(t testing.TB, base int64, c compress.Compression, recs []wireRecord) []byte {
	t.Helper()
	var rs []protocol.Record
	for _, r := range recs {
		pr := protocol.Record{Offset: r.Offset, Time: time.UnixMilli(r.TimeMs)}
		if r.Key != nil {
			pr.Key = protocol.NewBytes(r.Key)
		}
		if r.Value != nil {
			pr.Value = protocol.NewBytes(r.Value)
		}
		if len(r.Key) == 3 { // some records with headers, which are skipped
			pr.Headers = []protocol.Header{{Key: "trace", Value: []byte("abc")}}
		}
		rs = append(rs, pr)
	}
	set := protocol.RecordSet{Version: 2, Attributes: protocol.Attributes(c), Records: protocol.NewRecordReader(rs...)}
	var buf bytes.Buffer
	if _, err := set.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()[4:]                        // the set's size prefix
	binary.BigEndian.PutUint64(b, uint64(base)) // not under the CRC
	return b
}

func sampleRecords(base int64, n int) []wireRecord {
	var recs []wireRecord
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC).UnixMilli()
	for i := range n {
		r := wireRecord{Offset: base + int64(i), TimeMs: t0 + int64(i)*137,
			Key: []byte(fmt.Sprintf("粤B%05d", i)), Value: []byte(fmt.Sprintf(`{"vehicle_id":"粤B%05d","ts":%d}`, i, t0))}
		switch i % 7 {
		case 3:
			r.Key = nil // null key
		case 5:
			r.Value = []byte{} // empty, not null
		case 6:
			r.Key = []byte("abc") // with headers
		}
		recs = append(recs, r)
	}
	return recs
}

func readAll(set []byte) ([]wireRecord, int64, error) {
	var br batchReader
	br.reset(set)
	var out []wireRecord
	for {
		var r wireRecord
		ok, err := br.record(&r)
		if err != nil || !ok {
			return out, br.next, err
		}
		r.Key, r.Value = bytes.Clone(r.Key), bytes.Clone(r.Value)
		out = append(out, r)
	}
}

func sameRecords(t *testing.T, got, want []wireRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || g.TimeMs != w.TimeMs || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
			(g.Key == nil) != (w.Key == nil) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("record %d = {%d %d %q %q}, want {%d %d %q %q}", i, g.Offset, g.TimeMs, g.Key, g.Value, w.Offset, w.TimeMs, w.Key, w.Value)
		}
	}
}

// TestBatchReader reads record sets as kafka-go encodes them: every compression codec, null and
// empty keys and values, headers, several batches, one cut off at the end of the set, control
// batches skipped with their offsets passed.
func TestBatchReader(t *testing.T) {
	for _, c := range []compress.Compression{0, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd} {
		t.Run(fmt.Sprint("codec=", c), func(t *testing.T) {
			a, b := sampleRecords(100, 50), sampleRecords(150, 20)
			set := append(encodeBatch(t, 100, c, a), encodeBatch(t, 150, c, b)...)
			got, next, err := readAll(set)
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, got, append(a, b...))
			if next != 170 {
				t.Errorf("next = %d, want 170", next)
			}
			// cut off inside the second batch: the first one only
			got, next, err = readAll(set[:len(set)-5])
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, got, a)
			if next != 150 {
				t.Errorf("cut off: next = %d, want 150", next)
			}
		})
	}
	t.Run("control batch", func(t *testing.T) {
		ctl := encodeBatch(t, 10, 0, sampleRecords(10, 1))
		setAttrs(ctl, 0x20)
		data := sampleRecords(11, 3)
		got, next, err := readAll(append(ctl, encodeBatch(t, 11, 0, data)...))
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, got, data)
		if next != 14 {
			t.Errorf("next = %d, want 14", next)
		}
		got, next, err = readAll(ctl)
		if err != nil || len(got) != 0 || next != 11 {
			t.Errorf("a set of a control batch only: %d records, next %d, %v; want none, 11", len(got), next, err)
		}
	})
	t.Run("log append time", func(t *testing.T) {
		recs := sampleRecords(0, 4)
		b := encodeBatch(t, 0, 0, recs)
		setAttrs(b, 0x08)
		got, _, err := readAll(b)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got {
			if r.TimeMs != recs[3].TimeMs { // the batch's max timestamp
				t.Errorf("record %d: time %d, want the batch's %d", i, r.TimeMs, recs[3].TimeMs)
			}
		}
	})
}

// TestBatchReaderPeekKeys: peekKeys gives the keys of the records record reads next, at most
// n and none past the batch being read (whose memory a compressed next batch reuses), without
// reading them; a malformed record ends what it gives, and record then says what is wrong.
func TestBatchReaderPeekKeys(t *testing.T) {
	for _, c := range []compress.Compression{0, compress.Lz4} {
		t.Run(fmt.Sprint("codec=", c), func(t *testing.T) {
			a, b := sampleRecords(100, 20), sampleRecords(120, 5)
			set := append(encodeBatch(t, 100, c, a), encodeBatch(t, 120, c, b)...)
			var br batchReader
			br.reset(set)
			if got := br.peekKeys(nil, 4); len(got) != 0 {
				t.Fatalf("before the first record: %d keys, want none (no batch begun)", len(got))
			}
			all := append(a, b...)
			for i := 0; ; i++ {
				var r wireRecord
				ok, err := br.record(&r)
				if err != nil || !ok {
					if i != len(all) {
						t.Fatalf("%d records read, want %d (%v)", i, len(all), err)
					}
					break
				}
				for _, n := range []int{0, 1, 6, 100} {
					got := br.peekKeys(nil, n)
					// what is left of this record's batch, at most n
					left := 19 - i
					if i >= len(a) {
						left = len(all) - 1 - i
					}
					want := all[i+1 : i+1+min(n, left)]
					if len(got) != len(want) {
						t.Fatalf("after record %d, peeking %d: %d keys, want %d", i, n, len(got), len(want))
					}
					for j := range want {
						if !bytes.Equal(got[j], want[j].Key) || (got[j] == nil) != (want[j].Key == nil) {
							t.Fatalf("after record %d: key %d is %q, want %q", i, j, got[j], want[j].Key)
						}
					}
				}
				if r.Offset != all[i].Offset {
					t.Fatalf("peeking moved the reader: record %d has offset %d, want %d", i, r.Offset, all[i].Offset)
				}
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		var br batchReader
		br.reset(encodeBatch(t, 0, 0, sampleRecords(0, 3)))
		var r wireRecord
		if ok, err := br.record(&r); !ok || err != nil {
			t.Fatal(ok, err)
		}
		br.recs = br.recs[:len(br.recs)-3] // the last record cut short
		if got := br.peekKeys(nil, 5); len(got) != 1 {
			t.Fatalf("%d keys, want the one whole record's", len(got))
		}
		_, _ = br.record(&r)
		if _, err := br.record(&r); err == nil {
			t.Fatal("the record cut short was read")
		}
	})
}

// setAttrs sets a batch's attributes and its CRC again.
func setAttrs(b []byte, attrs uint16) {
	binary.BigEndian.PutUint16(b[21:], attrs)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
}

// TestBatchReaderRefuses: what is not a good batch v2 is an error that says where, not records.
func TestBatchReaderRefuses(t *testing.T) {
	good := encodeBatch(t, 40, 0, sampleRecords(40, 5))
	tests := []struct {
		name string
		mut  func(b []byte) []byte
		want string
	}{
		{"a flipped bit", func(b []byte) []byte { b[70] ^= 1; return b }, "fails its CRC check"},
		{"message format v1", func(b []byte) []byte { b[16] = 1; return b }, "message format v1"},
		{"a length below the header", func(b []byte) []byte { binary.BigEndian.PutUint32(b[8:], 20); return b }, "has a length of 20"},
		{"an unknown codec", func(b []byte) []byte { setAttrs(b, 6); return b }, "codec 6"},
		{"more records than it holds", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[57:], 6)
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
			return b
		}, "bad length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(tt.mut(slices.Clone(good)))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) || !bytes.Contains([]byte(err.Error()), []byte("offset 40")) {
				t.Fatalf("err = %v, want one saying %q at offset 40", err, tt.want)
			}
		})
	}
}

// FuzzBatchReader: whatever the bytes, reading them ends, without a panic, and every record's
// key and value lie within them.
func FuzzBatchReader(f *testing.F) {
	f.Add(encodeBatch(f, 0, 0, sampleRecords(0, 3)))
	f.Add(encodeBatch(f, 7, compress.Snappy, sampleRecords(7, 3)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, set []byte) {
		var br batchReader
		br.reset(set)
		for range 100000 {
			var r wireRecord
			ok, err := br.record(&r)
			if err != nil || !ok {
				return
			}
		}
	})
}

// TestFetchResponseParse finds the partition's part of a Fetch v4 response, with its error.
func TestFetchResponseParse(t *testing.T) {
	set := encodeBatch(t, 0, 0, sampleRecords(0, 2))
	var b []byte
	b = binary.BigEndian.AppendUint32(b, 0) // throttle
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendString(b, "muck.gps")
	b = binary.BigEndian.AppendUint32(b, 2)
	for _, p := range []struct {
		id   int32
		code int16
		set  []byte
	}{{0, 0, nil}, {3, int16(kafka.OffsetOutOfRange), set}} {
		b = binary.BigEndian.AppendUint32(b, uint32(p.id))
		b = binary.BigEndian.AppendUint16(b, uint16(p.code))
		b = binary.BigEndian.AppendUint64(b, 99)
		b = binary.BigEndian.AppendUint64(b, 99)
		b = binary.BigEndian.AppendUint32(b, 1) // one aborted transaction
		b = append(b, make([]byte, 16)...)
		if p.set == nil {
			b = binary.BigEndian.AppendUint32(b, 0xffffffff)
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(len(p.set)))
			b = append(b, p.set...)
		}
	}
	var res fetchResponse
	if err := res.parse(b, "muck.gps", 3); err != nil {
		t.Fatal(err)
	}
	if res.err != kafka.OffsetOutOfRange || res.highWatermark != 99 || !bytes.Equal(res.records, set) {
		t.Errorf("partition 3: err %v, hwm %d, %d bytes of records", res.err, res.highWatermark, len(res.records))
	}
	if err := res.parse(b, "muck.gps", 1); err == nil {
		t.Error("partition 1, not in the response: no error")
	}
	if err := res.parse(b[:len(b)-3], "muck.gps", 3); err == nil {
		t.Error("a response cut short: no error")
	}
}

// TestConsumerReadsCompressedProducers: producers that compress (as Java clients often do) are
// read through the broker like the others, each codec, every record once.
func TestConsumerReadsCompressedProducers(t *testing.T) {
	addr := startBroker(t, "muck.gps", "muck.events", "muck.officers")
	codecs := []compress.Compression{compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd}
	for _, c := range codecs {
		w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: "muck.gps", Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, Compression: kafka.Compression(c)}
		now := time.Now().UnixMilli()
		var msgs []kafka.Message
		for j := range 50 {
			plate := fmt.Sprintf("粤B%05d", j%5)
			msgs = append(msgs, kafka.Message{Key: []byte(plate), Value: []byte(fmt.Sprintf(
				`{"vehicle_id":"%s","ts":%d,"lat":22.5,"lon":114.0,"event_id":"%s-%d"}`, plate, now-int64(1000*(50-j)), c, j))})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	ids, err := collect(t, newTestConsumer(t, addr), 200, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for _, c := range codecs {
		for j := range 50 {
			if id := fmt.Sprintf("%s-%d", c, j); !seen[id] {
				t.Fatalf("fix %s was not read (%d read)", id, len(ids))
			}
		}
	}
	if len(ids) != 200 {
		t.Errorf("%d fixes read, want 200", len(ids))
	}
}

// BenchmarkBatchReader: reading a fetch's worth of fixes (1 MiB) in place.
func BenchmarkBatchReader(b *testing.B) {
	recs := sampleRecords(0, 5000)
	set := encodeBatch(b, 0, 0, recs)
	b.SetBytes(int64(len(set)))
	b.ReportAllocs()
	var br batchReader
	for b.Loop() {
		br.reset(set)
		var r wireRecord
		for {
			ok, err := br.record(&r)
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
}
