package pipeline

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/internal/statetopic"
)

// Trucks' fixes come from a gateway that partitions as the contract says (kafka-go's Hash,
// FNV-1a) and their camera events from one with kcat's default (CRC32), so a truck's events land
// on another partition number than its fixes. With kafka.rekey the misrouted events are re-keyed
// to the right partition of muck.events.rekeyed and judged with the truck's fixes, with 1 instance
// or 3: each truck's cover_open alert is placed where its last fix was (an event without a
// position is placed at its truck's last fix, which only the engine holding the fixes knows), and
// each truck has its checkpoint on one state partition. Without re-keying, with 3 instances, the
// events were judged by an engine that had never seen the truck, and its state was in two places.
func TestMixedPartitionersKeepTrucksWhole(t *testing.T) {
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	const partitions = 8
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	var fixes, events []kafka.Message
	lastAt := map[string][2]float64{} // plate → lat, lon of its last fix
	for i, v := range c.Vehicles[:8] {
		for s := 0; s <= 60; s += 10 {
			xy := c.Proj.Forward(c.Origin)
			xy[0] += float64(500*i) + float64(s)*5
			xy[1] -= 400
			ll := c.Proj.Inverse(xy)
			fixes = append(fixes, fixMsg("muck.gps", v.Plate, start.Add(time.Duration(s)*time.Second), ll[1], ll[0], 18))
			lastAt[v.Plate] = [2]float64{ll[1], ll[0]}
		}
		events = append(events, kafka.Message{Topic: "muck.events", Key: []byte(v.Plate), Value: fmt.Appendf(nil,
			`{"event_id":"cam-%d","vehicle_id":%q,"ts":%d,"kind":"cover_open","source":"cam-road-7"}`, i, v.Plate, start.Add(70*time.Second).UnixMilli())})
	}
	if misrouted(events, partitions) == 0 {
		t.Fatal("no truck's events land elsewhere than its fixes: the test shows nothing")
	}
	for _, instances := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d instances", instances), func(t *testing.T) {
			t.Parallel()
			g := startGroup(t, instances, partitions, func(cfg *Config) {
				cfg.Kafka.Partitioner, cfg.Kafka.Rekey = "fnv1a", true
			})
			g.waitBalanced(len(g.cfg.Kafka.InputTopics()), partitions)
			produce(t, g.broker, fixes...)
			g.waitFor("every fix stored", 2*time.Minute, func() bool {
				return g.count("SELECT uniqExact(fix_id) FROM positions") >= uint64(len(fixes))
			})
			produceWith(t, g.broker, kafka.CRC32Balancer{Consistent: true}, events...)
			g.waitFor("a cover_open alert for every truck", 2*time.Minute, func() bool {
				return g.count("SELECT uniqExact(vehicle_id) FROM alerts WHERE rule = 'cover_open'") >= uint64(len(events))
			})
			for plate, at := range g.alertPlaces("cover_open") {
				want := lastAt[plate]
				if at.n != 1 || math.Abs(at.lat-want[0]) > 1e-6 || math.Abs(at.lon-want[1]) > 1e-6 {
					t.Errorf("%s: %d cover_open alerts at %.6f,%.6f; want 1 at its last fix %.6f,%.6f", plate, at.n, at.lat, at.lon, want[0], want[1])
				}
			}
			// the checkpoints follow the alert changes they account for: each truck's are on one
			// state partition
			g.waitFor("every truck checkpointed after its event", time.Minute, func() bool {
				return len(checkpointPartitions(t, g)) >= len(events)
			})
			for plate, parts := range checkpointPartitions(t, g) {
				if len(parts) != 1 {
					t.Errorf("%s has checkpoints on state partitions %v, want one", plate, parts)
				}
			}
		})
	}
}

// alertPlace is where a vehicle's alerts of a rule were placed, and how many there are.
type alertPlace struct {
	lat, lon float64
	n        uint64
}

// alertPlaces reads, for every vehicle with alerts of rule in ClickHouse, where they were placed.
func (e *testEnv) alertPlaces(rule string) map[string]alertPlace {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(), "SELECT vehicle_id, any(lat), any(lon), uniqExact(id) FROM alerts WHERE rule = ? GROUP BY vehicle_id", rule)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]alertPlace{}
	for rows.Next() {
		var plate string
		var at alertPlace
		if err := rows.Scan(&plate, &at.lat, &at.lon, &at.n); err != nil {
			e.t.Fatal(err)
		}
		out[plate] = at
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// misrouted counts the messages kcat's default partitioner (CRC32) puts on another of
// partitions than the contract's FNV-1a does.
func misrouted(msgs []kafka.Message, partitions int) int {
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	n := 0
	for _, m := range msgs {
		if (&kafka.Hash{}).Balance(m, ids...) != (kafka.CRC32Balancer{Consistent: true}).Balance(m, ids...) {
			n++
		}
	}
	return n
}

// checkpointPartitions lists, for each vehicle with a checkpoint in the group's state topic, the
// state partitions holding one.
func checkpointPartitions(t *testing.T, g *testEnv) map[string][]int32 {
	out := map[string][]int32{}
	for p := range int32(8) {
		_, err := statetopic.Read(context.Background(), g.cfg.Outputs.Brokers, g.cfg.Outputs.StateTopic, nil, []int32{p}, func(k, _ []byte) error {
			group, _ := statetopic.Owner(k)
			plate := string(k[len(group)+1:])
			if !slices.Contains(out[plate], p) {
				out[plate] = append(out[plate], p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}
