package ingest

import (
	"slices"
	"strings"

	"github.com/segmentio/kafka-go"
)

// coPartitioned assigns the input partitions so that partition number i of every topic goes to
// the same instance: a vehicle's fixes and camera events (both keyed by plate, so on the same
// partition number) meet in one detector engine, and its state moves as a whole. Partition
// numbers are split into contiguous ranges over the members sorted by id, as Kafka's range
// assignor does, but by number rather than by position in the metadata (kafka-go's
// RangeGroupBalancer takes partitions in the order the broker lists them, which need not be the
// same for every topic).
type coPartitioned struct{}

func (coPartitioned) ProtocolName() string { return "muckwatch-copartitioned" }

func (coPartitioned) UserData() ([]byte, error) { return nil, nil }

func (coPartitioned) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	byTopic := map[string][]int{}
	numbers := 0
	for _, p := range partitions {
		byTopic[p.Topic] = append(byTopic[p.Topic], p.ID)
		numbers = max(numbers, p.ID+1)
	}
	for topic, ids := range byTopic {
		slices.Sort(ids)
		var subscribed []string
		for _, m := range members {
			if slices.Contains(m.Topics, topic) {
				subscribed = append(subscribed, m.ID)
			}
		}
		if len(subscribed) == 0 {
			continue
		}
		slices.SortFunc(subscribed, strings.Compare)
		for _, id := range ids {
			member := subscribed[id*len(subscribed)/numbers]
			if out[member] == nil {
				out[member] = map[string][]int{}
			}
			out[member][topic] = append(out[member][topic], id)
		}
	}
	return out
}
