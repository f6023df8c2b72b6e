package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol"
)

// A fetcher's Fetch goes through kafka-go's Transport, which finds the partition's leader and
// holds the connection (its TLS, its SASL session, its reconnections), but it reads the
// response itself: kafka-go decodes every fetched record into a Record with two page references
// and a record set per batch (315 MB of garbage over the bench's backlog of 2,000,000 fixes, and
// a tenth of the pipeline's CPU in its profile before the keys and values were even copied out).
// Here the response is read into one reused buffer and its records are read in place, their keys
// and values slices of it.

// fetchVersion is the Fetch version spoken: v4 (Kafka 0.11) is the first with the isolation
// level and record batches v2, and the oldest Kafka 4 still answers.
const fetchVersion = 4

// clientID names the consumer's fetches in the broker's logs and quotas.
const clientID = "muckwatch"

// Bounds on a response: Kafka sends a partition's first batch whole even when it is larger than
// the fetch's max bytes, up to the broker's message.max.bytes; the buffer is kept between fetches
// only up to keepResponseBytes.
const (
	maxResponseBytes  = 256 << 20
	keepResponseBytes = 4 << 20
)

// castagnoli is the CRC-32C table record batches v2 are checked with.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fetchRequest is one partition's Fetch, for kafka-go's Transport: its leader (Broker), its
// exchange on the connection (RawExchange) and, once answered, the response (res). A
// fetchRequest whose round trip failed may still be in use by the connection's goroutine: it
// is dropped, not reused.
type fetchRequest struct {
	topic     string
	partition int32
	offset    int64
	maxWait   time.Duration
	minBytes  int32
	maxBytes  int32

	id   int32  // the correlation id of the last exchange
	out  []byte // the request, encoded
	resp []byte // the response, as read
	res  fetchResponse
}

// fetchResponse is the partition's part of a Fetch response: its records are a slice of the
// request's response buffer, valid until the next fetch.
type fetchResponse struct {
	err           error // the partition's error, a kafka.Error
	highWatermark int64
	records       []byte // the record batches, as sent
}

var (
	_ protocol.Message       = (*fetchRequest)(nil)
	_ protocol.BrokerMessage = (*fetchRequest)(nil)
	_ protocol.RawExchanger  = (*fetchRequest)(nil)
	_ protocol.Message       = (*fetchResponse)(nil)
)

func (r *fetchRequest) ApiKey() protocol.ApiKey  { return protocol.Fetch }
func (r *fetchResponse) ApiKey() protocol.ApiKey { return protocol.Fetch }

// Broker implements protocol.BrokerMessage: the partition's leader, in the transport's
// metadata.
func (r *fetchRequest) Broker(c protocol.Cluster) (protocol.Broker, error) {
	t, ok := c.Topics[r.topic]
	if !ok {
		return protocol.Broker{}, fmt.Errorf("topic %s: %w", r.topic, kafka.UnknownTopicOrPartition)
	}
	p, ok := t.Partitions[r.partition]
	if !ok {
		return protocol.Broker{}, fmt.Errorf("partition %d of %s: %w", r.partition, r.topic, kafka.UnknownTopicOrPartition)
	}
	b, ok := c.Brokers[p.Leader]
	if !ok {
		return protocol.Broker{}, fmt.Errorf("partition %d of %s: %w", r.partition, r.topic, kafka.LeaderNotAvailable)
	}
	return b, nil
}

// Required implements protocol.RawExchanger: a fetch always reads its own response, on a
// broker that speaks fetchVersion.
func (r *fetchRequest) Required(map[protocol.ApiKey]int16) bool { return true }

// RawExchange implements protocol.RawExchanger: it writes the request on the connection, reads
// the response into r.resp and finds the partition's part of it. An error here ends the
// connection (kafka-go closes it), so only the exchange's own failures are errors; the
// partition's error is the response's.
func (r *fetchRequest) RawExchange(rw io.ReadWriter) (protocol.Message, error) {
	r.id++
	r.out = r.encode(r.out[:0])
	if _, err := rw.Write(r.out); err != nil {
		return nil, fmt.Errorf("cannot send a fetch of partition %d of %s: %w", r.partition, r.topic, err)
	}
	var head [8]byte // size, correlation id
	if _, err := io.ReadFull(rw, head[:]); err != nil {
		return nil, fmt.Errorf("cannot read the response to a fetch of partition %d of %s: %w", r.partition, r.topic, err)
	}
	size := int64(int32(binary.BigEndian.Uint32(head[:4])))
	if id := int32(binary.BigEndian.Uint32(head[4:])); id != r.id {
		return nil, fmt.Errorf("the broker answered request %d to fetch %d of partition %d of %s", id, r.id, r.partition, r.topic)
	}
	if size < 4 || size > maxResponseBytes {
		return nil, fmt.Errorf("a response of %d bytes to a fetch of partition %d of %s (at most %d)", size, r.partition, r.topic, maxResponseBytes)
	}
	n := int(size - 4)
	if cap(r.resp) < n {
		r.resp = make([]byte, n)
	}
	r.resp = r.resp[:n]
	if _, err := io.ReadFull(rw, r.resp); err != nil {
		return nil, fmt.Errorf("cannot read the response to a fetch of partition %d of %s: %w", r.partition, r.topic, err)
	}
	if err := r.res.parse(r.resp, r.topic, r.partition); err != nil {
		return nil, fmt.Errorf("the response to a fetch of partition %d of %s: %w", r.partition, r.topic, err)
	}
	return &r.res, nil
}

// release lets go of a response buffer grown past keepResponseBytes (a huge record's).
func (r *fetchRequest) release() {
	if cap(r.resp) > keepResponseBytes {
		r.resp = nil
	}
	r.res = fetchResponse{}
}

// encode appends the request, size first, to b.
func (r *fetchRequest) encode(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, 0) // size, set below
	b = binary.BigEndian.AppendUint16(b, uint16(protocol.Fetch))
	b = binary.BigEndian.AppendUint16(b, fetchVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(r.id))
	b = appendString(b, clientID)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(r.maxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, uint32(r.minBytes))
	b = binary.BigEndian.AppendUint32(b, uint32(r.maxBytes))
	b = append(b, 0)                        // isolation level: read uncommitted, as kafka-go's Fetch did
	b = binary.BigEndian.AppendUint32(b, 1) // one topic
	b = appendString(b, r.topic)
	b = binary.BigEndian.AppendUint32(b, 1) // one partition
	b = binary.BigEndian.AppendUint32(b, uint32(r.partition))
	b = binary.BigEndian.AppendUint64(b, uint64(r.offset))
	b = binary.BigEndian.AppendUint32(b, uint32(r.maxBytes))
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// errShortResponse: a response ended inside a field.
var errShortResponse = errors.New("it ends inside a field")

// wireReader reads big-endian fields off a response; the first field that does not fit sets
// err and every read after it gives zero.
type wireReader struct {
	b   []byte
	err error
}

func (w *wireReader) take(n int) []byte {
	if w.err != nil || n < 0 || n > len(w.b) {
		w.err = errShortResponse
		return nil
	}
	s := w.b[:n:n]
	w.b = w.b[n:]
	return s
}

func (w *wireReader) int16() int16 {
	if s := w.take(2); s != nil {
		return int16(binary.BigEndian.Uint16(s))
	}
	return 0
}

func (w *wireReader) int32() int32 {
	if s := w.take(4); s != nil {
		return int32(binary.BigEndian.Uint32(s))
	}
	return 0
}

func (w *wireReader) int64() int64 {
	if s := w.take(8); s != nil {
		return int64(binary.BigEndian.Uint64(s))
	}
	return 0
}

// parse reads a Fetch v4 response body (after the correlation id) and keeps the part of
// partition p of topic.
func (res *fetchResponse) parse(body []byte, topic string, p int32) error {
	*res = fetchResponse{}
	w := wireReader{b: body}
	w.int32() // throttle time
	found := false
	for range max(0, w.int32()) {
		name := w.take(int(w.int16()))
		for range max(0, w.int32()) {
			part, code, hwm := w.int32(), w.int16(), w.int64()
			w.int64() // last stable offset
			if n := w.int32(); n > 0 {
				w.take(16 * int(n)) // aborted transactions: records read uncommitted
			}
			var records []byte
			if n := w.int32(); n > 0 {
				records = w.take(int(n))
			}
			if w.err == nil && part == p && string(name) == topic {
				found = true
				res.highWatermark, res.records = hwm, records
				if code != 0 {
					res.err = kafka.Error(code)
				}
			}
		}
	}
	switch {
	case w.err != nil:
		return w.err
	case !found:
		return errors.New("it does not have the partition")
	}
	return nil
}

// wireRecord is a record read in place from a fetch response: Key and Value are slices of the
// response (or of the decompressed batch), nil when null, valid until the next fetch.
type wireRecord struct {
	Offset int64
	TimeMs int64 // the record's timestamp, Unix milliseconds
	Key    []byte
	Value  []byte
}

// batchReader reads the records of a partition's record set: batches v2 (Kafka 0.11 and later,
// what Kafka has stored since), each checked against its CRC-32C and decompressed (gzip,
// snappy, lz4, zstd) into a reused buffer; control batches (transaction markers) are skipped.
// A batch cut off at the end of the set (the fetch's max bytes) ends it: the next fetch starts
// there.
type batchReader struct {
	rest  []byte // the batches not yet begun
	batch        // the batch at hand
	next  int64  // the offset after the last batch begun, control batches included
	plain bytes.Buffer
}

// batch is the records of a batch not yet read, and what they are read against.
type batch struct {
	recs          []byte // its records not yet read
	left          int32  // how many
	base, firstTs int64
	maxTs         int64
	logAppendTime bool
}

func (br *batchReader) reset(set []byte) {
	br.rest, br.recs, br.left, br.next = set, nil, 0, -1
	if br.plain.Cap() > keepResponseBytes {
		br.plain = bytes.Buffer{}
	}
}

// record reads the next record into rec; false once the set has no more.
func (br *batchReader) record(rec *wireRecord) (bool, error) {
	for br.left <= 0 {
		ok, err := br.begin()
		if !ok || err != nil {
			return false, err
		}
	}
	if err := br.batch.record(rec); err != nil {
		return false, err
	}
	return true, nil
}

// peekKeys appends to dst the keys of the next records of the batch being read, at most n,
// without reading them: record reads them, and says what is wrong with a malformed one, where
// peekKeys stops. The keys are the batch's memory, valid until the next batch is begun.
func (br *batchReader) peekKeys(dst [][]byte, n int) [][]byte {
	ahead := br.batch // read on a copy: the batch's memory is only read
	var rec wireRecord
	for range min(n, int(br.left)) {
		if ahead.record(&rec) != nil {
			break
		}
		dst = append(dst, rec.Key)
	}
	return dst
}

// record reads the batch's next record into rec; b.left > 0.
func (b *batch) record(rec *wireRecord) error {
	b.left--
	w := varReader{b: b.recs}
	n := w.varint()
	if w.bad || n < 0 || n > int64(len(w.b)) {
		return fmt.Errorf("a record of the batch at offset %d has a bad length", b.base)
	}
	r := varReader{b: w.b[:n]}
	b.recs = w.b[n:]
	r.take(1) // attributes (none defined)
	tsDelta := r.varint()
	offDelta := r.varint()
	rec.Key = r.bytes()
	rec.Value = r.bytes()
	if r.bad {
		return fmt.Errorf("a record of the batch at offset %d is malformed", b.base)
	}
	// headers: not read
	rec.Offset = b.base + offDelta
	rec.TimeMs = b.firstTs + tsDelta
	if b.logAppendTime {
		rec.TimeMs = b.maxTs
	}
	return nil
}

// begin begins the next batch; false once the set has no whole batch left.
func (br *batchReader) begin() (bool, error) {
	const head = 61 // base offset … record count
	if len(br.rest) < head {
		return false, nil
	}
	base := int64(binary.BigEndian.Uint64(br.rest))
	length := int64(int32(binary.BigEndian.Uint32(br.rest[8:])))
	if length < head-12 {
		return false, fmt.Errorf("the record batch at offset %d has a length of %d", base, length)
	}
	if 12+length > int64(len(br.rest)) {
		return false, nil // cut off by the fetch's max bytes
	}
	b := br.rest[:12+length]
	br.rest = br.rest[12+length:]
	if magic := b[16]; magic != 2 {
		return false, fmt.Errorf("the record batch at offset %d is in message format v%d; records are read in v2 (Kafka 0.11 and later)", base, magic)
	}
	if crc := binary.BigEndian.Uint32(b[17:]); crc32.Checksum(b[21:], castagnoli) != crc {
		return false, fmt.Errorf("the record batch at offset %d fails its CRC check", base)
	}
	attrs := binary.BigEndian.Uint16(b[21:])
	lastDelta := int64(int32(binary.BigEndian.Uint32(b[23:])))
	br.next = base + lastDelta + 1
	if attrs&0x20 != 0 { // a control batch: a transaction's commit or abort marker
		return true, nil
	}
	br.base, br.firstTs, br.maxTs = base, int64(binary.BigEndian.Uint64(b[27:])), int64(binary.BigEndian.Uint64(b[35:]))
	br.logAppendTime = attrs&0x08 != 0
	count := int32(binary.BigEndian.Uint32(b[57:]))
	recs := b[head:]
	if c := compress.Compression(attrs & 0x07); c != 0 {
		codec := c.Codec()
		if codec == nil {
			return false, fmt.Errorf("the record batch at offset %d is compressed with codec %d, which is not known", base, c)
		}
		rd := codec.NewReader(bytes.NewReader(recs))
		br.plain.Reset()
		_, err := br.plain.ReadFrom(io.LimitReader(rd, maxResponseBytes))
		rd.Close()
		if err != nil {
			return false, fmt.Errorf("cannot decompress the record batch at offset %d (%s): %w", base, c, err)
		}
		recs = br.plain.Bytes()
	}
	br.recs, br.left = recs, count
	return true, nil
}

// varReader reads the zig-zag varints and length-prefixed bytes of a record; the first that does
// not fit sets bad.
type varReader struct {
	b   []byte
	bad bool
}

func (v *varReader) varint() int64 {
	x, n := binary.Varint(v.b)
	if n <= 0 {
		v.bad = true
		return 0
	}
	v.b = v.b[n:]
	return x
}

func (v *varReader) take(n int) []byte {
	if n < 0 || n > len(v.b) {
		v.bad = true
		return nil
	}
	s := v.b[:n:n]
	v.b = v.b[n:]
	return s
}

// bytes reads a length-prefixed value: nil for a null one (length -1).
func (v *varReader) bytes() []byte {
	n := v.varint()
	if n < 0 {
		if n != -1 {
			v.bad = true
		}
		return nil
	}
	if n > int64(len(v.b)) {
		v.bad = true
		return nil
	}
	return v.take(int(n))
}
