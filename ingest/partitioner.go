package ingest

import (
	"fmt"

	"github.com/segmentio/kafka-go"
)

// The wire contract names how producers choose a record's partition from its key (the plate), so
// that a truck's fixes and its camera events share a partition number and meet in one detector
// engine. Producers differ: kafka-go's Hash and sarama use FNV-1a, Java clients and kafkajs
// murmur2, librdkafka (kcat) CRC32 by default ("consistent_random"). The consumer checks every
// keyed record's partition against the configured partitioner and counts those that are not where
// it puts them (muckwatch_ingest_misrouted_total): a producer with another partitioner splits a
// truck's state between instances.

// partitioner computes a key's partition under the contract's partitioner, for a topic of n
// partitions. It is used by one fetcher goroutine.
type partitioner struct {
	b   kafka.Balancer
	ids []int // 0..n-1, the partitions handed to the balancer
	msg kafka.Message
}

func newPartitioner(name string) (*partitioner, error) {
	var b kafka.Balancer
	switch name {
	case "fnv1a": // kafka-go's Hash: FNV-1a, as sarama
		b = &kafka.Hash{}
	case "murmur2": // Java clients, kafkajs, librdkafka's "murmur2"
		b = kafka.Murmur2Balancer{Consistent: true}
	case "crc32": // librdkafka's default ("consistent_random") for keyed records
		b = kafka.CRC32Balancer{Consistent: true}
	default:
		return nil, fmt.Errorf("kafka.partitioner must be fnv1a, murmur2 or crc32, got %q", name)
	}
	return &partitioner{b: b}, nil
}

// partition returns the partition of key in a topic of n partitions.
func (p *partitioner) partition(key []byte, n int) int {
	for len(p.ids) < n {
		p.ids = append(p.ids, len(p.ids))
	}
	p.msg.Key = key
	i := p.b.Balance(p.msg, p.ids[:n]...)
	p.msg.Key = nil
	return i
}
