package bench

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/watchdog"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/sim"
)

// TestTerminalsChild runs the bench's live traffic in a child process against the embedded
// broker, and checks what it says against what the broker holds: every fix it reports sent is
// on the topic, each decodes as a valid fix of one of the city's vehicles, after the device
// time it was told to start from, and its probes name fixes it produced in the window.
func TestTerminalsChild(t *testing.T) {
	watchdog.Start(t, 3*time.Minute, nil)
	dir := filepath.Join(t.TempDir(), "city")
	so := sim.DefaultSampleCityOptions()
	so.Vehicles = 60
	if err := sim.GenerateSampleCity(dir, so); err != nil {
		t.Fatal(err)
	}
	c, err := city.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	const partitions = 2
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: partitions, Topics: []string{"muck.gps"}})
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	simStart := t0.Add(30 * time.Minute).UnixMilli()
	window := 1500 * time.Millisecond
	term, err := startTerminals(ctx, testChild("terminals"), terminalsLoad{Broker: addr, Topic: "muck.gps", CityDir: dir, Seed: 3,
		Partitions: partitions, DeviceT0: t0.UnixMilli(), SimStart: simStart, Rate: 400, Window: window})
	if err != nil {
		t.Fatal(err)
	}
	if term.started.SimStartMs != simStart {
		t.Errorf("started at device time %d, want %d", term.started.SimStartMs, simStart)
	}
	var probes []probe
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for p := range term.probes {
			probes = append(probes, p)
		}
	}()
	var inWindow int64
	select {
	case inWindow = <-term.inWindow:
	case <-ctx.Done():
		t.Fatal("no count of the window's fixes")
	}
	if err := term.stop(); err != nil {
		t.Fatal(err)
	}
	<-collected
	if inWindow < 1 || term.sent < inWindow {
		t.Fatalf("%d fixes in the window, %d sent in all", inWindow, term.sent)
	}
	if len(probes) == 0 {
		t.Fatal("no probe fix reported")
	}
	windowEnd := time.Unix(0, term.started.WallStartNs).Add(window)

	// Everything it said it sent is on the topic, and is a fix the pipeline accepts.
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second}
	ends, err := topicEnds(ctx, client, "muck.gps", partitions)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ids := map[string]bool{}
	dec := record.NewDecoder(record.DecodeConfig{}, city.NormalizePlate)
	for p, end := range ends {
		total += end
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "muck.gps", Partition: p, MaxWait: 100 * time.Millisecond})
		for range end {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				t.Fatal(err)
			}
			var f record.Fix
			if err := dec.DecodeFix(m.Value, m.Time, &f); err != nil {
				t.Errorf("partition %d offset %d: %v (%s)", p, m.Offset, err, m.Value)
				continue
			}
			if c.Vehicle(f.VehicleID) == nil || string(m.Key) != f.VehicleID || f.Time.UnixMilli() < simStart {
				t.Errorf("partition %d offset %d: fix of %s (key %q) at %s, before the start %s or of no vehicle of the city",
					p, m.Offset, f.VehicleID, m.Key, f.Time, time.UnixMilli(simStart))
			}
			ids[f.ID()] = true
		}
		r.Close()
	}
	if total != term.sent {
		t.Errorf("the topic holds %d fixes, the terminals say they sent %d", total, term.sent)
	}
	for _, p := range probes {
		if !ids[p.fixID] || !strings.HasPrefix(p.fixID, p.vehicle+"@") || p.produced.After(windowEnd.Add(time.Second)) {
			t.Errorf("probe %+v: not a fix on the topic, or produced after the window's end %s", p, windowEnd)
		}
	}
}

// TestCmdTerminalsInput: the child refuses a load it cannot run, saying what is wrong.
func TestCmdTerminalsInput(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		var out bytes.Buffer
		err := Terminals(context.Background(), strings.NewReader(in), &out)
		if err == nil || !strings.Contains(err.Error(), want) || out.Len() != 0 {
			t.Errorf("input %q: err %v, output %q; want an error with %q", in, err, out.String(), want)
		}
	}
	f("", "cannot read the load")
	f(`{"broker":"x"`, "cannot read the load")
	f(`{"broker":"127.0.0.1:1","topic":"t","city_dir":"d","partitions":1,"rate":1,"window":1000000000,"device_t0_ms":1,"sim_start_ms":2,"extra":1}`, "cannot read the load")
	f(`{"topic":"t","city_dir":"d","partitions":1,"rate":1,"window":1000000000,"device_t0_ms":1,"sim_start_ms":2}`, "broker, topic and city_dir are required")
	f(`{"broker":"127.0.0.1:1","topic":"t","city_dir":"d","partitions":0,"rate":1,"window":1000000000,"device_t0_ms":1,"sim_start_ms":2}`, "partitions")
	f(`{"broker":"127.0.0.1:1","topic":"t","city_dir":"d","partitions":1,"rate":0,"window":1000000000,"device_t0_ms":1,"sim_start_ms":2}`, "rate")
	f(`{"broker":"127.0.0.1:1","topic":"t","city_dir":"d","partitions":1,"rate":1,"window":0,"device_t0_ms":1,"sim_start_ms":2}`, "window")
	f(`{"broker":"127.0.0.1:1","topic":"t","city_dir":"d","partitions":1,"rate":1,"window":1000000000,"device_t0_ms":5,"sim_start_ms":2}`, "not after")
}
