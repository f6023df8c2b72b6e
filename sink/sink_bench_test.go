package sink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

func BenchmarkEncodeChange(b *testing.B) {
	c := goldenChange()
	b.SetBytes(int64(len(EncodeChange(c))))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = c.AppendJSON(buf[:0])
	}
}

// BenchmarkEncodeChangeNew is EncodeChange as KafkaOutput calls it: a new slice per message.
func BenchmarkEncodeChangeNew(b *testing.B) {
	c := goldenChange()
	b.ReportAllocs()
	for b.Loop() {
		_ = EncodeChange(c)
	}
}

// benchFixes returns n fixes of 500 trucks, like a few seconds of a city's terminals.
func benchFixes(n, round int) []record.Fix {
	fixes := make([]record.Fix, n)
	for i := range fixes {
		v := fmt.Sprintf("粤B%05d", i%500)
		t := base.Add(time.Duration(round*n+i) * 20 * time.Millisecond)
		fixes[i] = record.Fix{
			FixID: fmt.Sprintf("%s-%d", v, t.UnixMilli()), VehicleID: v, Time: t,
			Lat: 22.5 + float64(i%1000)*1e-4, Lon: 114 + float64(i%777)*1e-4, SpeedKmh: float32(i % 60), HasSpeed: true,
			Heading: float32(i % 360), HasHeading: true, ACC: true, Alarm: uint32(i % 3),
			Src: record.Source{Shard: record.Shard{Topic: "muck.fixes", Partition: int32(i % 12)}, Offset: int64(round*n + i)},
		}
	}
	return fixes
}

// fixWireBytes is roughly what one fix takes in ClickHouse's native format.
func fixWireBytes(f *record.Fix) int {
	const fixed = 4 + 8 + 8 + 8 + 4 + 1 + 4 + 1 + 1 + 1 + 4 + 4 + 8 + 4 // ts … ingested_at
	return fixed + 3 + len(f.FixID) + len(f.VehicleID) + len(f.Src.Topic)
}

func BenchmarkWritePositions(b *testing.B) {
	const rows = 10_000
	c := openTestDB(b, nil, nil)
	ctx := context.Background()
	batches := make([]*Batch, 8)
	size := 0
	for i := range batches {
		batches[i] = &Batch{Fixes: benchFixes(rows, i)}
	}
	for i := range batches[0].Fixes {
		size += fixWireBytes(&batches[0].Fixes[i])
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := c.Write(ctx, batches[i%len(batches)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i*rows)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkBuildPositionColumns is the client-side part of a positions insert: turning 10k
// fixes into column buffers, the fixes with their event_id or sent without one (their ids then
// derived into the fix_id column's arena).
func BenchmarkBuildPositionColumns(b *testing.B) {
	for _, derived := range []bool{false, true} {
		name := "event_id"
		if derived {
			name = "derived_id"
		}
		b.Run(name, func(b *testing.B) {
			fixes := benchFixes(10_000, 0)
			if derived {
				for i := range fixes {
					fixes[i].FixID = ""
				}
			}
			cols := positionColumns()
			bufs := make([]any, len(cols))
			b.ReportAllocs()
			for b.Loop() {
				for i, cs := range cols {
					bufs[i] = cs.build(fixes, 1, bufs[i])
				}
			}
		})
	}
}

func BenchmarkWriteChanges(b *testing.B) {
	c := openTestDB(b, nil, nil)
	ctx := context.Background()
	changes := make([]detectors.Change, 100)
	for i := range changes {
		changes[i] = testAlert(fmt.Sprintf("a-%d", i), uint64(i%3+1), detectors.ChangeOpened)
	}
	batch := &Batch{Changes: changes}
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteState produces a write's checkpoints (5,000 vehicles of 200 B over 4 input
// partitions) to an embedded broker over TCP and waits for the acknowledgements.
func BenchmarkWriteState(b *testing.B) {
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(4, DefaultStateTopic))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	o, err := NewKafkaOutput(KafkaOutputConfig{Brokers: c.ListenAddrs()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	const n = 5000
	keys, values, parts := make([][]byte, n), make([][]byte, n), make([]int32, n)
	for i := range n {
		keys[i], values[i], parts[i] = fmt.Appendf(nil, "粤B%05d", i), make([]byte, 200), int32(i%4)
	}
	ctx := context.Background()
	b.SetBytes(n * 200)
	b.ReportAllocs()
	for b.Loop() {
		if err := o.WriteState(ctx, keys, values, parts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/checkpoint")
}
