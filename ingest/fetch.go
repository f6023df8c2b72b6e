package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/record"
)

// fetchQueue is how many chunks wait in the hand-off to batching.
const fetchQueue = 32

// maxFetchBytes bounds one fetch of one partition (the broker still sends a record larger than
// that whole): a response is held until its records are decoded, so this is the memory a fetcher
// holds, and 1 MiB is 5,000 fixes, a round trip well spent.
const maxFetchBytes = 1 << 20

// fetch reads one partition from offset until ctx is cancelled, decodes its records into chunks
// (taken from spare) and sends them to chunks, retrying failed fetches (a broker restart, a lost
// connection) with back-off. Each partition has its own decoder, so decoding runs beside judging,
// and its own connection, so that a fetch waiting at the broker for new records (fetch_max_wait)
// does not hold another partition's back. It fetches with kafka-go's Client: a response's
// records are read from its buffers into two reused ones, where kafka.Reader allocated every
// record's key and value and handed each over a channel from a goroutine of its own (a sixth of
// the pipeline's CPU with the garbage it made).
func (c *Consumer) fetch(ctx context.Context, p assignedPartition, of int, chunks chan<- *chunk, spare *sync.Pool) {
	tp := TopicPartition{p.Topic, p.Partition}
	transport, err := c.cfg.Security.Transport()
	if err != nil {
		c.log.Error("cannot connect to Kafka to fetch a partition", "topic", p.Topic, "partition", p.Partition, "err", err)
		return
	}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: transport}
	req := kafka.FetchRequest{Topic: p.Topic, Partition: int(p.Partition), Offset: p.offset, MinBytes: 1,
		MaxBytes: int64(max(64<<10, min(maxFetchBytes, c.cfg.FetchMaxBytes/of))), MaxWait: c.cfg.FetchMaxWait}
	dec := record.NewDecoder(c.cfg.Decode, c.normalize)
	dec.NumberPlates(c.plates)
	maxRecords := min(chunkRecords, c.cfg.BatchMaxRecords)
	maxBytes := max(1, c.cfg.BatchMaxBytes/chunkBytesShare)
	records := c.metrics.records(p.Topic)
	m := kafka.Message{Topic: p.Topic, Partition: int(p.Partition)} // the record at hand; its Key is reused
	var buf []byte                                                  // for the values of the records that can be accepted
	var ch *chunk
	// send hands the chunk at hand to batching.
	send := func() bool {
		records.Add(float64(ch.b.Len()))
		select {
		case chunks <- ch:
			ch = nil
			return true
		case <-ctx.Done():
			return false
		}
	}
	backoff := time.Second
	err = nil // the fetch that failed, waited out before the next
	for {
		if err != nil {
			c.metrics.fetchErrors.Inc()
			c.log.Warn("cannot fetch from Kafka; retrying", "topic", p.Topic, "partition", p.Partition, "offset", req.Offset, "retry_in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
		if req.Offset < 0 { // kafka.FirstOffset or LastOffset: found once, not at every fetch
			if req.Offset, err = startOffset(ctx, client, tp, req.Offset); err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
		}
		var res *kafka.FetchResponse
		if res, err = client.Fetch(ctx, &req); err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if res.Error != nil {
			if errors.Is(res.Error, kafka.OffsetOutOfRange) {
				// Retention deleted the records before they were read, or the topic was made
				// anew: the partition is read from its first record left.
				c.log.Error("the offset to read from is no longer in Kafka (records deleted before they were read, or the topic recreated); reading from the first record left",
					"topic", p.Topic, "partition", p.Partition, "offset", req.Offset)
				req.Offset = kafka.FirstOffset
				continue
			}
			err = fmt.Errorf("fetch from offset %d: %w", req.Offset, res.Error)
			continue
		}
		backoff = time.Second
		fetched := c.now()
		for {
			rec, rerr := res.Records.ReadRecord()
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					err = fmt.Errorf("a record after offset %d: %w", req.Offset, rerr)
				}
				break
			}
			if rec.Offset < req.Offset { // a compressed batch begins before the offset asked for
				closeBytes(rec)
				continue
			}
			m.Offset, m.HighWaterMark, m.Time = rec.Offset, res.HighWatermark, rec.Time
			m.Key, rerr = readBytes(m.Key, rec.Key)
			// A value too large to be accepted is read into memory of its own, which its
			// dead-letter record then keeps: no copy of it, and no buffer grown to its size.
			tooLarge := rec.Value != nil && rec.Value.Len() > c.cfg.Decode.MaxRecordBytes
			switch {
			case rerr != nil:
			case tooLarge:
				m.Value, rerr = readBytes(nil, rec.Value)
			default:
				m.Value, rerr = readBytes(buf, rec.Value)
				buf = m.Value
			}
			closeBytes(rec)
			if rerr != nil {
				err = fmt.Errorf("record at offset %d: %w", rec.Offset, rerr)
				break
			}
			if ch == nil {
				ch = spare.Get().(*chunk)
				ch.fetched, ch.mark.tp = fetched, tp
			}
			c.decode(dec, &m, &ch.b, tooLarge)
			ch.mark.next, ch.mark.hwm = m.Offset+1, m.HighWaterMark
			ch.bytes += len(m.Key) + len(m.Value)
			req.Offset = m.Offset + 1
			if (ch.b.Len() >= maxRecords || ch.bytes >= maxBytes) && !send() {
				return
			}
		}
		if ch != nil && !send() {
			return
		}
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

// readBytes reads b into dst's memory (grown when too small); a null b is an empty slice.
func readBytes(dst []byte, b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return dst[:0], nil
	}
	n := b.Len()
	dst = slices.Grow(dst[:0], n)[:n]
	if _, err := io.ReadFull(b, dst); err != nil {
		return dst[:0], err
	}
	return dst, nil
}

// closeBytes gives a record's buffers back to kafka-go.
func closeBytes(r *kafka.Record) {
	if r.Key != nil {
		r.Key.Close()
	}
	if r.Value != nil {
		r.Value.Close()
	}
}
