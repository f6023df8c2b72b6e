// Package statetopic owns the layout of the state topic, where the detectors' checkpoints are
// kept (compacted, keyed by vehicle, partitioned like the input): which of its partitions holds
// the checkpoints of the vehicles of an input partition (Partition), and reading them back (Read).
// sink's Kafka output writes the topic and the pipeline reads it to restore detector state when it
// takes partitions over; both follow this layout and neither needs the other.
package statetopic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// A checkpoint's key is its consumer group and its vehicle, "GROUP/PLATE" (a plate has no "/"):
// the state belongs to the group whose offsets it matches. Another group sharing the topic (a
// backfill with a group of its own, say) neither restores nor overwrites it. Keys of builds before
// this layout are the plate alone; they are taken as the restoring group's.

// AppendKey appends the key of vehicle's checkpoint for consumer group to dst.
func AppendKey(dst []byte, group, vehicle string) []byte {
	dst = append(dst, group...)
	dst = append(dst, '/')
	return append(dst, vehicle...)
}

// Owner returns the consumer group a checkpoint's key belongs to; legacy is true for a key of an
// earlier build, the plate alone, whose group is not known.
func Owner(key []byte) (group string, legacy bool) {
	i := bytes.LastIndexByte(key, '/')
	if i < 0 {
		return "", true
	}
	return string(key[:i]), false
}

// Partition is the state topic partition holding the checkpoints of the vehicles read from input
// partition p, when the state topic has n partitions.
func Partition(p int32, n int) int {
	if n <= 0 {
		return 0
	}
	return int(p) % n
}

// Read reads the state topic from its first to its last offset, partition by partition, and
// hands every record to f, oldest first (so the newest checkpoint of a vehicle comes last). It
// reads the state partitions of the input partitions given (see Partition), or all of them
// when inputs is nil. It returns how many records it read. A topic that does not exist yet holds
// nothing.
func Read(ctx context.Context, brokers []string, topic string, dialer *kafka.Dialer, inputs []int32, f func(key, value []byte) error) (int, error) {
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	var parts []kafka.Partition
	var err error
	for _, b := range brokers {
		if parts, err = dialer.LookupPartitions(ctx, "tcp", b, topic); err == nil {
			break
		}
	}
	if err != nil {
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return 0, nil
		}
		return 0, fmt.Errorf("cannot list the partitions of the state topic %s: %w", topic, err)
	}
	if inputs != nil {
		want := map[int]bool{}
		for _, p := range inputs {
			want[Partition(p, len(parts))] = true
		}
		parts = slices.DeleteFunc(parts, func(p kafka.Partition) bool { return !want[p.ID] })
	}
	// in partition order, whatever order the metadata lists them in
	slices.SortFunc(parts, func(a, b kafka.Partition) int { return a.ID - b.ID })
	n := 0
	for _, p := range parts {
		k, err := readPartition(ctx, p.Leader, topic, p.ID, dialer, f)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readPartition reads one partition of the state topic from its first to its last offset over one
// connection to its leader.
func readPartition(ctx context.Context, leader kafka.Broker, topic string, partition int, dialer *kafka.Dialer, f func(key, value []byte) error) (int, error) {
	addr := net.JoinHostPort(leader.Host, strconv.Itoa(leader.Port))
	conn, err := dialer.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		return 0, fmt.Errorf("cannot connect to the leader of %s/%d at %s: %w", topic, partition, addr, err)
	}
	defer conn.Close()
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return 0, fmt.Errorf("cannot read the offsets of %s/%d: %w", topic, partition, err)
	}
	if _, err := conn.Seek(first, kafka.SeekAbsolute); err != nil {
		return 0, fmt.Errorf("cannot seek %s/%d to %d: %w", topic, partition, first, err)
	}
	n := 0
	for off := first; off < last; {
		if d, ok := ctx.Deadline(); ok {
			_ = conn.SetReadDeadline(d)
		} else {
			_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		}
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		read := 0
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			read++
			n++
			off = m.Offset + 1
			if err := f(m.Key, m.Value); err != nil {
				batch.Close()
				return n, fmt.Errorf("%s/%d offset %d: %w", topic, partition, m.Offset, err)
			}
		}
		if err := batch.Close(); err != nil {
			return n, fmt.Errorf("cannot read %s/%d at offset %d: %w", topic, partition, off, err)
		}
		if read == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
	return n, nil
}
