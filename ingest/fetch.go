package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/internal/backoff"
	"github.com/muckwatch/muckwatch/record"
)

// fetchQueue is how many chunks wait in the hand-off to batching.
const fetchQueue = 32

// maxFetchBytes bounds one fetch of one partition (the broker still sends a record larger than
// that whole): a response is held until its records are decoded, so this is the memory a fetcher
// holds, and 1 MiB is 5,000 fixes, a round trip well spent.
const maxFetchBytes = 1 << 20

// fetcher reads one partition from its start offset until its context is cancelled, decodes its
// records into chunks (taken from spare) and sends them to chunks, retrying failed fetches (a
// broker restart, a lost connection) with back-off. Each partition has its own decoder, so
// decoding runs beside judging, and its own connection, so that a fetch waiting at the broker for
// new records (fetch_max_wait) does not hold another partition's back. Its fetches go through
// kafka-go's Transport (the leader, the connection, TLS and SASL) but read their response in
// place (wire.go): kafka-go's Client.Fetch decoded every record into a record and two page
// references, and kafka.Reader before it allocated every record's key and value and handed each
// over a channel from a goroutine of its own.
type fetcher struct {
	c       *Consumer
	tp      TopicPartition
	client  *kafka.Client // for the start offsets; its Transport for the fetches
	req     *fetchRequest // req.offset is the next record to read
	fetch0  fetchRequest  // what every fetch of the partition asks, offset aside
	batches batchReader
	dec     *record.Decoder
	// the contract's partitioner and how many partitions the topic has (0: not checked)
	part      *partitioner
	of        int
	misrouted prometheus.Counter
	warned    bool               // a misrouted record of this partition has been logged
	records   prometheus.Counter // the partition's topic's records read
	chunks    chan<- *chunk
	spare     *sync.Pool
	// a chunk is sent on once it holds maxRecords records or maxBytes bytes
	maxRecords, maxBytes int

	m   kafka.Message // the record at hand; its Key and Value are the response's memory
	rec wireRecord
	ch  *chunk // the chunk being filled, nil when none is
	// the keys of the records looked up ahead (record.Decoder.Warm), and how many of those
	// records are still to be read
	keys   [][]byte
	warmed int
	warm   uint32 // what the lookups read
}

// warmAhead is how many records' vehicles the decoder looks up together before decoding them:
// enough for their cache misses to overlap, few enough for what they bring in to stay in the
// cache until the records are decoded.
const warmAhead = 16

// fetch reads partition p, one of the of partitions of the generation, into chunks until ctx is
// cancelled (see fetcher).
func (c *Consumer) fetch(ctx context.Context, p assignedPartition, of int, chunks chan<- *chunk, spare *sync.Pool) {
	transport, err := c.cfg.Security.Transport()
	if err != nil {
		c.log.Error("cannot connect to Kafka to fetch a partition", "topic", p.Topic, "partition", p.Partition, "err", err)
		return
	}
	defer transport.CloseIdleConnections()
	f := &fetcher{
		c:      c,
		tp:     p.TopicPartition,
		client: &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: transport},
		fetch0: fetchRequest{topic: p.Topic, partition: p.Partition, minBytes: 1, maxWait: c.cfg.FetchMaxWait,
			maxBytes: int32(max(64<<10, min(maxFetchBytes, c.cfg.FetchMaxBytes/of)))},
		dec:        record.NewDecoder(c.cfg.Decode, c.normalize),
		records:    c.metrics.records(p.Topic),
		chunks:     chunks,
		spare:      spare,
		maxRecords: min(chunkRecords, c.cfg.BatchMaxRecords),
		maxBytes:   max(1, c.cfg.BatchMaxBytes/chunkBytesShare),
		m:          kafka.Message{Topic: p.Topic, Partition: int(p.Partition)},
	}
	f.req = f.newRequest(p.offset)
	f.dec.NumberPlates(c.plates)
	if p.of > 0 {
		if f.part, err = newPartitioner(c.cfg.Partitioner); err != nil { // validated with the config
			c.log.Error("cannot check the partitioning of the input", "err", err)
		}
		f.of, f.misrouted = p.of, c.metrics.misrouted.WithLabelValues(p.Topic, c.cfg.Partitioner)
	}
	f.run(ctx)
}

// newRequest returns a fetch from offset; a request whose round trip failed is not reused (the
// connection's goroutine may still be reading into it).
func (f *fetcher) newRequest(offset int64) *fetchRequest {
	r := f.fetch0
	r.offset = offset
	return &r
}

// fetchSlack is how long a fetch may take beyond the wait it asks the broker for before it is
// given up (and retried).
const fetchSlack = 30 * time.Second

// misplaced reports (and counts) m when the contract's partitioner puts its key on another
// partition, want: its producer partitions differently, and the truck's records on the two
// partitions would be judged by different instances. With kafka.rekey it is re-keyed; else it is
// judged here. Unkeyed records, and topics not checked (f.part nil), are never misplaced.
func (f *fetcher) misplaced(m *kafka.Message) (want int, ok bool) {
	if f.part == nil || len(m.Key) == 0 {
		return 0, false
	}
	want = f.part.partition(m.Key, f.of)
	if want == m.Partition {
		return want, false
	}
	f.misrouted.Inc()
	if !f.warned {
		f.warned = true
		f.c.log.Warn("a record is not on the partition the contract's partitioner gives its key: its producer partitions differently (see kafka.partitioner)",
			"topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "key", string(m.Key), "partitioner", f.c.cfg.Partitioner, "expected_partition", want, "rekey", f.c.cfg.Rekey)
	}
	return want, true
}

// run fetches until ctx is cancelled, waiting out each failed fetch before the next: 1s, doubling
// up to 30s, and from 1s again once the broker answers.
func (f *fetcher) run(ctx context.Context) {
	b := backoff.New(backoff.Policy{Min: time.Second, Max: 30 * time.Second})
	for {
		answered, err := f.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		if answered {
			b.Reset()
		}
		if err == nil {
			continue
		}
		wait := b.Next()
		f.c.metrics.fetchErrors.Inc()
		f.c.log.Warn("cannot fetch from Kafka; retrying", "topic", f.tp.Topic, "partition", f.tp.Partition, "offset", f.req.offset, "retry_in", wait, "err", err)
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// fetch makes one fetch and sends on the chunks of the records it read; answered reports that
// the broker answered with records (or none yet). An offset no longer in Kafka is not an error:
// the next fetch is from the first record left.
func (f *fetcher) fetch(ctx context.Context) (answered bool, err error) {
	if f.req.offset < 0 { // kafka.FirstOffset or LastOffset: found once, not at every fetch
		if f.req.offset, err = startOffset(ctx, f.client, f.tp, f.req.offset); err != nil {
			return false, err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, f.fetch0.maxWait+fetchSlack)
	m, err := f.client.Transport.RoundTrip(rctx, f.client.Addr, f.req)
	cancel()
	if err != nil {
		f.req = f.newRequest(f.req.offset)
		return false, fmt.Errorf("fetch from offset %d: %w", f.req.offset, err)
	}
	res, ok := m.(*fetchResponse)
	if !ok { // cannot happen: the request answers with its own response
		f.req = f.newRequest(f.req.offset)
		return false, fmt.Errorf("fetch from offset %d: an answer of type %T", f.req.offset, m)
	}
	defer f.req.release()
	if res.err != nil {
		if errors.Is(res.err, kafka.OffsetOutOfRange) {
			// Retention deleted the records before they were read, or the topic was made anew:
			// the partition is read from its first record left.
			f.c.log.Error("the offset to read from is no longer in Kafka (records deleted before they were read, or the topic recreated); reading from the first record left",
				"topic", f.tp.Topic, "partition", f.tp.Partition, "offset", f.req.offset)
			f.req.offset = kafka.FirstOffset
			return false, nil
		}
		return false, fmt.Errorf("fetch from offset %d: %w", f.req.offset, res.err)
	}
	stopped, err := f.read(ctx, res)
	if !stopped && f.ch != nil {
		f.send(ctx)
	}
	return true, err
}

// read decodes the records of a fetch response into chunks, sending each on once full; stopped
// reports that ctx ended while a chunk waited to be sent.
func (f *fetcher) read(ctx context.Context, res *fetchResponse) (stopped bool, err error) {
	fetched := f.c.now()
	m, rec := &f.m, &f.rec
	br := &f.batches
	br.reset(res.records)
	defer func() {
		// past the records read: a control batch (a transaction marker) holds no record
		if err == nil && br.next > f.req.offset {
			f.req.offset = br.next
		}
	}()
	for {
		ok, err := br.record(rec)
		if err != nil {
			return false, fmt.Errorf("a record after offset %d: %w", f.req.offset, err)
		}
		if !ok {
			if len(res.records) > 0 && br.next < 0 { // not one whole batch in the response
				return false, fmt.Errorf("from offset %d: the partition's next record batch is larger than a fetch's %d bytes", f.req.offset, f.fetch0.maxBytes)
			}
			return false, nil
		}
		if rec.Offset < f.req.offset { // a compressed batch begins before the offset asked for
			continue
		}
		if f.warmed--; f.warmed <= 0 {
			// this record's vehicle and the next ones' of its batch looked up together
			f.keys = br.peekKeys(append(f.keys[:0], rec.Key), warmAhead-1)
			f.warm += f.dec.Warm(f.keys)
			f.warmed = len(f.keys)
			clear(f.keys)
		}
		m.Offset, m.HighWaterMark, m.Time = rec.Offset, res.highWatermark, time.UnixMilli(rec.TimeMs)
		m.Key, m.Value = rec.Key, rec.Value
		ch := f.ch
		if ch == nil {
			ch = f.spare.Get().(*chunk)
			ch.fetched, ch.mark.tp = fetched, f.tp
			f.ch = ch
		}
		if want, ok := f.misplaced(m); ok && f.c.cfg.Rekey {
			ch.b.Misrouted = append(ch.b.Misrouted, record.Misrouted{
				Src: record.Source{Shard: record.Shard{Topic: m.Topic, Partition: int32(m.Partition)}, Offset: m.Offset},
				Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value), Partition: int32(want)})
		} else {
			f.c.decode(f.dec, m, &ch.b) // the response's memory: copied when kept
		}
		ch.mark.next, ch.mark.hwm = m.Offset+1, m.HighWaterMark
		ch.bytes += len(m.Key) + len(m.Value)
		f.req.offset = m.Offset + 1
		if (ch.b.Len() >= f.maxRecords || ch.bytes >= f.maxBytes) && !f.send(ctx) {
			return true, nil
		}
	}
}

// send hands the chunk at hand to batching; false: ctx ended first.
func (f *fetcher) send(ctx context.Context) bool {
	f.records.Add(float64(f.ch.b.Len()))
	select {
	case f.chunks <- f.ch:
		f.ch = nil
		return true
	case <-ctx.Done():
		return false
	}
}

// startOffset returns the offset at (kafka.FirstOffset or LastOffset) stands for in partition tp.
func startOffset(ctx context.Context, client *kafka.Client, tp TopicPartition, at int64) (int64, error) {
	r, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		tp.Topic: {{Partition: int(tp.Partition), Timestamp: at}}}})
	if err != nil {
		return at, fmt.Errorf("cannot look up where to start reading: %w", err)
	}
	for _, o := range r.Topics[tp.Topic] {
		switch {
		case o.Partition != int(tp.Partition):
		case o.Error != nil:
			return at, fmt.Errorf("cannot look up where to start reading: %w", o.Error)
		case at == kafka.FirstOffset:
			return o.FirstOffset, nil
		default:
			return o.LastOffset, nil
		}
	}
	return at, errors.New("cannot look up where to start reading: the broker did not answer for the partition")
}
