package ingest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/segmentio/kafka-go"
)

// Partition number i of every topic goes to one member, whatever order the broker lists the
// partitions in, every partition is assigned exactly once, and the members get even shares.
func TestCoPartitioned(t *testing.T) {
	topics := []string{"muck.gps", "muck.events", "muck.officers"}
	for _, tc := range []struct{ members, partitions int }{{1, 4}, {2, 4}, {3, 4}, {4, 4}, {5, 4}, {3, 12}, {7, 48}} {
		t.Run(fmt.Sprintf("%d members %d partitions", tc.members, tc.partitions), func(t *testing.T) {
			var members []kafka.GroupMember
			for range tc.members {
				members = append(members, kafka.GroupMember{ID: fmt.Sprintf("m-%x", rand.Uint64()), Topics: topics})
			}
			var parts []kafka.Partition
			for _, topic := range topics {
				for id := range tc.partitions {
					parts = append(parts, kafka.Partition{Topic: topic, ID: id})
				}
			}
			rand.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
			got := coPartitioned{}.AssignGroups(members, parts)
			owner := map[string]map[int]string{} // topic → partition → member
			for member, byTopic := range got {
				for topic, ids := range byTopic {
					if owner[topic] == nil {
						owner[topic] = map[int]string{}
					}
					for _, id := range ids {
						if prev, ok := owner[topic][id]; ok {
							t.Fatalf("%s/%d assigned to %s and %s", topic, id, prev, member)
						}
						owner[topic][id] = member
					}
				}
			}
			shares := map[string]int{}
			for id := range tc.partitions {
				m := owner[topics[0]][id]
				if m == "" {
					t.Fatalf("%s/%d not assigned", topics[0], id)
				}
				for _, topic := range topics[1:] {
					if owner[topic][id] != m {
						t.Errorf("partition %d: %s to %s, %s to %s", id, topics[0], m, topic, owner[topic][id])
					}
				}
				shares[m]++
			}
			lo, hi := tc.partitions, 0
			for _, n := range shares {
				lo, hi = min(lo, n), max(hi, n)
			}
			if want := min(tc.members, tc.partitions); len(shares) != want || hi-lo > 1 {
				t.Errorf("shares %v: want %d members within one partition of each other", shares, want)
			}
		})
	}
}
