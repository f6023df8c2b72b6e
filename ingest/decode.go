package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/record"
)

// chunk is a run of consecutive records of one partition, decoded by the partition's fetcher:
// decoding runs beside judging, and batches are filled a chunk at a time, not a record at a time.
type chunk struct {
	b       Batch // its decoded records; never handed downstream itself
	mark    partitionMark
	bytes   int       // keys and values
	fetched time.Time // when the fetch response holding its records arrived
}

// A chunk holds at most chunkRecords records (fewer when batches are smaller) and about
// batch_max_bytes/chunkBytesShare bytes, all from one fetch response: it is handed over when full
// or when the response's records are all decoded, never waiting for the next fetch.
const (
	chunkRecords    = 256
	chunkBytesShare = 16
)

func (ch *chunk) reset() {
	ch.b.Reset()
	ch.mark, ch.bytes, ch.fetched = partitionMark{}, 0, time.Time{}
}

// flight is one batch, from being filled until it is done and committed, with where it ends in
// each partition it read (not its messages: those are garbage once decoded).
type flight struct {
	b       Batch
	records int
	bytes   int // of its records' keys and values
	marks   []partitionMark
	handed  time.Time
}

// partitionMark is where a batch ends in one partition.
type partitionMark struct {
	tp   TopicPartition
	next int64 // the offset after the batch's last message of the partition: what to commit
	hwm  int64 // the partition's high watermark when that message was fetched (0: unknown)
}

// add appends a chunk's records to the flight's batch and moves its marks on.
func (f *flight) add(ch *chunk) {
	b := &f.b
	b.Fixes = append(b.Fixes, ch.b.Fixes...)
	b.Events = append(b.Events, ch.b.Events...)
	b.Officers = append(b.Officers, ch.b.Officers...)
	b.Rejects = append(b.Rejects, ch.b.Rejects...)
	b.Misrouted = append(b.Misrouted, ch.b.Misrouted...)
	f.records += ch.b.Len()
	f.bytes += ch.bytes
	for j := range f.marks {
		if pm := &f.marks[j]; pm.tp == ch.mark.tp {
			if ch.mark.next > pm.next {
				*pm = ch.mark
			}
			return
		}
	}
	f.marks = append(f.marks, ch.mark)
}

// decode decodes m with dec into b, or adds it to b's rejects. m's key and value are the fetch
// response's memory, copied when kept (a reject's).
func (c *Consumer) decode(dec *record.Decoder, m *kafka.Message, b *Batch) {
	ref := m.Time
	if ref.IsZero() {
		ref = c.now()
	}
	src := record.Source{Shard: record.Shard{Topic: m.Topic, Partition: int32(m.Partition)}, Offset: m.Offset, Behind: max(0, m.HighWaterMark-m.Offset-1)}
	var err error
	switch m.Topic {
	case c.cfg.Topics.GPS, c.rekeyedGPS:
		b.Fixes = append(b.Fixes, record.Fix{})
		f := &b.Fixes[len(b.Fixes)-1]
		if err = dec.DecodeFix(m.Value, ref, f); err == nil {
			err = dec.CheckKey(m.Key, f.VehicleID) // record.Decoder.CheckKey: why a mismatch is rejected
		}
		if err != nil {
			b.Fixes = b.Fixes[:len(b.Fixes)-1]
		} else {
			f.Src = src
		}
	case c.cfg.Topics.Events, c.rekeyedEvents:
		b.Events = append(b.Events, record.Event{})
		e := &b.Events[len(b.Events)-1]
		if err = dec.DecodeEvent(m.Value, ref, e); err == nil {
			err = dec.CheckKey(m.Key, e.VehicleID)
		}
		if err != nil {
			b.Events = b.Events[:len(b.Events)-1]
		} else {
			e.Src = src
		}
	case c.cfg.Topics.Officers:
		b.Officers = append(b.Officers, record.OfficerPosition{})
		o := &b.Officers[len(b.Officers)-1]
		if err = dec.DecodeOfficer(m.Value, ref, o); err != nil {
			b.Officers = b.Officers[:len(b.Officers)-1]
		} else {
			o.Src = src
		}
	default:
		err = &record.RejectError{Reason: record.ReasonUnknownTopic, Detail: fmt.Sprintf("topic %q is not one of the configured input topics", m.Topic)}
	}
	if err != nil {
		r := record.Reject{Src: src, Key: bytes.Clone(m.Key), Value: bytes.Clone(m.Value), Reason: record.ReasonOf(err), Detail: err.Error(), Received: c.now()}
		var re *record.RejectError
		if errors.As(err, &re) {
			r.Detail = re.Detail
		}
		b.Rejects = append(b.Rejects, r)
		c.metrics.rejects.WithLabelValues(m.Topic, string(r.Reason)).Inc()
	}
}
