package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/sim"
	"github.com/muckwatch/muckwatch/sink"
)

// newFleet returns the bench's fleet of c's vehicles: one in violatorEvery speeding.
func newFleet(c *city.City, seed uint64) (*sim.Fleet, error) {
	return sim.NewFleet(c, sim.FleetOptions{Seed: seed, At: time.Now(), SpeederEvery: violatorEvery, FastKmh: fastKmh})
}

// traffic is the records of one produce call: the fixes' keys, their values in one shared
// buffer, and their partitions.
type traffic struct {
	keys, values [][]byte
	parts        []int32
	ends         []int
	buf          []byte
}

func (m *traffic) reset() {
	m.keys, m.values, m.parts, m.ends, m.buf = m.keys[:0], m.values[:0], m.parts[:0], m.ends[:0], m.buf[:0]
}

func (m *traffic) len() int { return len(m.keys) }

// add adds vehicle i's fix of device time t (Unix ms), to go to partition part.
func (m *traffic) add(f *sim.Fleet, i int, t int64, part int32) {
	m.buf = f.AppendFix(m.buf, i, t)
	m.ends = append(m.ends, len(m.buf))
	m.keys, m.parts = append(m.keys, f.Key(i)), append(m.parts, part)
}

// produce produces the records with w, their values pointed into the buffer now that it has
// stopped growing.
func (m *traffic) produce(ctx context.Context, w *sink.PartitionProducer) error {
	m.values = m.values[:0]
	start := 0
	for _, end := range m.ends {
		m.values = append(m.values, m.buf[start:end:end])
		start = end
	}
	return w.Write(ctx, m.keys, m.values, m.parts)
}

// newProducer is the bench's producer: the partitions chosen once per vehicle (kafka-go's Hash
// of the plate, as terminal gateways using Sarama's partitioner do) and the records produced
// straight from their buffer (sink.PartitionProducer). It shares the 2 cores with the pipeline
// (the live traffic from the terminals' process), so it should cost as little as it can:
// kafka.Writer looked the topic up and copied every record for each write (a tenth of the
// bench's CPU in the live window when it ran in the pipeline's process).
// Its connections are closed with the returned transport's CloseIdleConnections.
func newProducer(addr, topic string) (*sink.PartitionProducer, *kafka.Transport) {
	t := &kafka.Transport{}
	return sink.NewPartitionProducer(&kafka.Client{Addr: kafka.TCP(addr), Transport: t}, topic, kafka.RequireAll), t
}

// partitionsOf returns each vehicle's partition of n.
func partitionsOf(f *sim.Fleet, n int) []int32 {
	parts := make([]int, n)
	for p := range parts {
		parts[p] = p
	}
	var h kafka.Hash
	out := make([]int32, f.Len())
	for i := range out {
		out[i] = int32(h.Balance(kafka.Message{Key: f.Key(i)}, parts...))
	}
	return out
}

// deviceStart returns when the backlog's device time starts, given that it spans span and
// must end a minute before now: at the local time of day at (HH:MM, in loc) on the latest weekday
// that allows, so that the city's restricted-zone hours (which vary over the day and the week)
// weigh the same on every run; at "now", as late as allowed. It is at most 6 days before now
// (the decoder rejects fixes over a week old).
func deviceStart(now time.Time, span time.Duration, at string, loc *time.Location) (time.Time, error) {
	latest := now.Add(-span - time.Minute).Truncate(time.Second)
	if at == "now" {
		return latest, nil
	}
	tod, err := time.Parse("15:04", at)
	if err != nil {
		return time.Time{}, fmt.Errorf("the backlog's start must be a time of day HH:MM or now, got %q", at)
	}
	l := latest.In(loc)
	d := time.Date(l.Year(), l.Month(), l.Day(), tod.Hour(), tod.Minute(), 0, 0, loc)
	for d.After(latest) || d.Weekday() == time.Saturday || d.Weekday() == time.Sunday {
		d = d.AddDate(0, 0, -1)
	}
	if now.Sub(d) > 6*24*time.Hour {
		return time.Time{}, fmt.Errorf("a backlog of %s starting at %s on a weekday would start %s before now; the decoder rejects fixes older than a week",
			span, at, now.Sub(d).Round(time.Minute))
	}
	return d, nil
}

// preload produces fleet f's n fixes, each vehicle's to its partition in parts: round after
// round, every vehicle once per interval, spread over the interval, from the device time
// deviceStart gives for at in loc. It returns the device time the backlog ends at.
func preload(ctx context.Context, f *sim.Fleet, parts []int32, loc *time.Location, addr, topic string, n int, interval time.Duration, at string, r *Report) (time.Time, error) {
	v := f.Len()
	rounds := (n + v - 1) / v
	simStart, err := deviceStart(time.Now(), time.Duration(rounds)*interval, at, loc)
	if err != nil {
		return time.Time{}, err
	}
	r.DeviceStart = simStart.In(loc).Format("Mon 2006-01-02 15:04:05 MST")
	f.SetOrigin(simStart)
	const chunk = 20_000
	w, conns := newProducer(addr, topic)
	defer conns.CloseIdleConnections()
	var m traffic
	began := time.Now()
	for k := 0; k < n; {
		m.reset()
		for ; k < n && m.len() < chunk; k++ {
			round, i := k/v, k%v
			t := f.Next(i, simStart.Add(time.Duration(round)*interval+time.Duration(i)*interval/time.Duration(v)).UnixMilli())
			m.add(f, i, t, parts[i])
		}
		if err := m.produce(ctx, w); err != nil {
			return time.Time{}, fmt.Errorf("cannot preload the backlog (%d of %d fixes produced): %w", k-m.len(), n, err)
		}
	}
	r.PreloadSeconds = time.Since(began).Seconds()
	r.PreloadRate = float64(n) / r.PreloadSeconds
	return simStart.Add(time.Duration(rounds) * interval), nil
}
