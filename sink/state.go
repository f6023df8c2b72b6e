package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadState reads the state topic from its first to its last offset, partition by partition, and
// hands every record to f, oldest first (so the newest checkpoint of a vehicle comes last). It
// reads the state partitions of the input partitions given (see StatePartition), or all of them
// when inputs is nil. It returns how many records it read. A topic that does not exist yet holds
// nothing.
func ReadState(ctx context.Context, brokers []string, topic string, dialer *kafka.Dialer, inputs []int32, f func(key, value []byte) error) (int, error) {
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
			want[StatePartition(p, len(parts))] = true
		}
		parts = slices.DeleteFunc(parts, func(p kafka.Partition) bool { return !want[p.ID] })
	}
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
