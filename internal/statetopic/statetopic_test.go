package statetopic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestPartition(t *testing.T) {
	f := func(input int32, partitions, want int) {
		t.Helper()
		if got := Partition(input, partitions); got != want {
			t.Errorf("Partition(%d, %d) = %d, want %d", input, partitions, got, want)
		}
	}
	f(0, 3, 0)
	f(2, 3, 2)
	f(4, 3, 1) // input partitions beyond the state topic's wrap around
	f(5, 6, 5)
	f(7, 1, 0)
	f(3, 0, 0) // a topic not known yet: the first partition
	f(3, -1, 0)
}

// produce writes values to one partition of topic, in order.
func produce(t *testing.T, broker, topic string, partition int, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var msgs []kafka.Message
	for _, v := range values {
		msgs = append(msgs, kafka.Message{Key: []byte(v[:2]), Value: []byte(v)})
	}
	if _, err := conn.WriteMessages(msgs...); err != nil {
		t.Fatal(err)
	}
}

// Read reads the state partitions of the input partitions given, each from its first record to
// its last, or every partition; a topic that does not exist holds nothing; an error of f stops
// the read and says where.
func TestRead(t *testing.T) {
	const topic = "muck.state"
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	produce(t, broker, topic, 0, "v0@0", "v3@0", "v0@1")
	produce(t, broker, topic, 1, "v1@0", "v1@1")
	// partition 2 holds nothing

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := func(topic string, inputs []int32) ([]string, int, error) {
		var got []string
		n, err := Read(ctx, []string{broker}, topic, nil, inputs, func(k, v []byte) error {
			if string(k) != string(v[:2]) {
				return fmt.Errorf("key %q for value %q", k, v)
			}
			got = append(got, string(v))
			return nil
		})
		return got, n, err
	}
	tests := []struct {
		inputs []int32
		want   []string
	}{
		{[]int32{0}, []string{"v0@0", "v3@0", "v0@1"}},
		{[]int32{3}, []string{"v0@0", "v3@0", "v0@1"}}, // input 3 shares state partition 0
		{[]int32{1, 4}, []string{"v1@0", "v1@1"}},      // both on state partition 1, read once
		{[]int32{2}, nil},
		{[]int32{}, nil},
		{nil, []string{"v0@0", "v3@0", "v0@1", "v1@0", "v1@1"}},
	}
	for _, tt := range tests {
		got, n, err := read(topic, tt.inputs)
		if err != nil || n != len(tt.want) || !slices.Equal(got, tt.want) {
			t.Errorf("inputs %v: read %d: %v (%v), want %v", tt.inputs, n, got, err, tt.want)
		}
	}

	if got, n, err := read("no.such.topic", nil); err != nil || n != 0 || len(got) != 0 {
		t.Errorf("a missing state topic: %d records %v, %v", n, got, err)
	}

	stop := errors.New("no more")
	n, err := Read(ctx, []string{broker}, topic, nil, []int32{0}, func(_, v []byte) error {
		if string(v) == "v3@0" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("f failing at the second record: read %d, %v", n, err)
	}
}
