package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/muckwatch/muckwatch/internal/statetopic"
)

// Checkpoints go to the state partition of their input partition's number (modulo the state
// topic's partitions), and statetopic.Read of some input partitions reads just their state partitions,
// oldest record first, also when a write takes several produce requests; a state topic that
// does not exist holds nothing.
func TestStatePartitioning(t *testing.T) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(3, DefaultStateTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	o, err := NewKafkaOutput(KafkaOutputConfig{Brokers: []string{broker}}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys, values [][]byte
	var parts []int32
	for input := range int32(6) { // input partitions 0..5 over 3 state partitions
		for round := range 2 {
			keys = append(keys, fmt.Appendf(nil, "v%d", input))
			values = append(values, fmt.Appendf(nil, "v%d@%d", input, round))
			parts = append(parts, input)
		}
	}
	if err := o.WriteState(ctx, keys, values, parts); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		inputs []int32
		want   []string
	}{
		{[]int32{1}, []string{"v1@0", "v1@1", "v4@0", "v4@1"}}, // input 4 shares state partition 1
		{[]int32{0, 3}, []string{"v0@0", "v0@1", "v3@0", "v3@1"}},
		{nil, nil}, // all 12
	} {
		var got []string
		n, err := statetopic.Read(ctx, []string{broker}, DefaultStateTopic, nil, tc.inputs, func(_, v []byte) error {
			got = append(got, string(v))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == nil {
			if n != 12 {
				t.Errorf("all partitions: read %d records, want 12", n)
			}
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("inputs %v: read %v, want %v", tc.inputs, got, tc.want)
		}
	}
	// A write larger than one produce request holds keeps each partition's order.
	keys, values, parts = keys[:0], values[:0], parts[:0]
	for i := range 600 { // 600 × 5 KiB: several requests on state partition 2
		keys = append(keys, []byte("big"))
		values = append(values, append(fmt.Appendf(nil, "%04d", i), make([]byte, 5<<10)...))
		parts = append(parts, 5)
	}
	if err := o.WriteState(ctx, keys, values, parts); err != nil {
		t.Fatal(err)
	}
	next := 0
	if _, err := statetopic.Read(ctx, []string{broker}, DefaultStateTopic, nil, []int32{2}, func(k, v []byte) error {
		if string(k) == "big" {
			if got := string(v[:4]); got != fmt.Sprintf("%04d", next) {
				return fmt.Errorf("checkpoint %s read where %04d was due", got, next)
			}
			next++
		}
		return nil
	}); err != nil || next != 600 {
		t.Errorf("a 3 MB write: %d of 600 read back in order (%v)", next, err)
	}
	n, err := statetopic.Read(ctx, []string{broker}, "no.such.topic", nil, nil, func(_, _ []byte) error { return nil })
	if err != nil || n != 0 {
		t.Errorf("a missing state topic: %d records, %v", n, err)
	}
}
