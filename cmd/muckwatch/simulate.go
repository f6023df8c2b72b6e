package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/sim"
)

// kafkaEmitter produces the simulator's records to Kafka, keyed by vehicle, in batches.
type kafkaEmitter struct {
	ctx    context.Context
	w      *kafka.Writer
	topics map[string]string
	buf    []kafka.Message
	sent   int
}

func newKafkaEmitter(ctx context.Context, brokers []string, cfg Config) *kafkaEmitter {
	return &kafkaEmitter{
		ctx: ctx,
		w: &kafka.Writer{
			Addr:                   kafka.TCP(brokers...),
			Balancer:               &kafka.Hash{},
			BatchSize:              2000,
			BatchBytes:             4 << 20,
			BatchTimeout:           5 * time.Millisecond,
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
		},
		topics: map[string]string{"gps": cfg.Kafka.Topics.GPS, "events": cfg.Kafka.Topics.Events, "officers": cfg.Kafka.Topics.Officers},
	}
}

// Emit implements sim.Emitter.
func (e *kafkaEmitter) Emit(r sim.Record) error {
	e.buf = append(e.buf, kafka.Message{Topic: e.topics[r.Topic], Key: []byte(r.Key), Value: r.Value, Time: time.Now()})
	if len(e.buf) >= 5000 {
		return e.Flush()
	}
	return nil
}

// Flush produces what is buffered and waits for the broker's acks.
func (e *kafkaEmitter) Flush() error {
	if len(e.buf) == 0 {
		return nil
	}
	if err := e.w.WriteMessages(e.ctx, e.buf...); err != nil {
		return fmt.Errorf("cannot produce %d simulated records: %w", len(e.buf), err)
	}
	e.sent += len(e.buf)
	clear(e.buf)
	e.buf = e.buf[:0]
	return nil
}

func (e *kafkaEmitter) Close() error { return e.w.Close() }

// pacer runs simulated time at speedup × wall time, never ahead of the wall clock (so device
// times are never in the future), flushing the emitter before it sleeps.
type pacer struct {
	ctx       context.Context
	wallStart time.Time
	simStart  time.Time
	speedup   float64
	flush     func() error
}

func (p *pacer) Wait(t time.Time) error {
	due := p.wallStart.Add(time.Duration(float64(t.Sub(p.simStart)) / p.speedup))
	if t.After(due) && time.Now().Before(t) {
		due = t // caught up with the present: real time from here on
	}
	wait := time.Until(due)
	if wait <= 0 {
		return p.ctx.Err()
	}
	if err := p.flush(); err != nil {
		return err
	}
	select {
	case <-p.ctx.Done():
		return p.ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// simFlags are the simulator's flags, shared by simulate and demo.
type simFlags struct {
	duration      time.Duration
	interval      time.Duration
	back          time.Duration
	speedup       float64
	seed          uint64
	vehicles      int
	unregistered  int
	officers      int
	violationRate float64
	noise         float64
}

func (f *simFlags) register(fl *flag.FlagSet, duration, back time.Duration, speedup float64) {
	fl.DurationVar(&f.duration, "duration", duration, "simulated time span")
	fl.DurationVar(&f.interval, "interval", 10*time.Second, "terminal reporting interval")
	fl.DurationVar(&f.back, "start-ago", back, "simulated time starts this long before now")
	fl.Float64Var(&f.speedup, "speedup", speedup, "simulated seconds per wall second, never ahead of now (0: as fast as possible)")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed (same seed, same traffic)")
	fl.IntVar(&f.vehicles, "vehicles", 0, "simulate only the first N registered vehicles (0: all)")
	fl.IntVar(&f.unregistered, "unregistered", 3, "trucks with plates the city does not know")
	fl.IntVar(&f.officers, "officers", 12, "enforcement officers reporting positions")
	fl.Float64Var(&f.violationRate, "violation-rate", 0.25, "probability that a trip carries an injected violation")
	fl.Float64Var(&f.noise, "noise-m", 3, "GPS position noise, standard deviation in metres")
}

func (f *simFlags) options(ctx context.Context, flush func() error) sim.Options {
	start := time.Now().Add(-f.back).Truncate(time.Second)
	o := sim.Options{Seed: f.seed, Start: start, Duration: f.duration, Interval: f.interval, Vehicles: f.vehicles,
		Unregistered: f.unregistered, Officers: f.officers, ViolationRate: f.violationRate, NoiseM: f.noise}
	if f.speedup > 0 {
		o.Clock = &pacer{ctx: ctx, wallStart: time.Now(), simStart: start, speedup: f.speedup, flush: flush}
	}
	return o
}

func cmdSimulate(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("simulate", flag.ContinueOnError)
	brokers := fl.String("brokers", "127.0.0.1:9092", "comma-separated Kafka bootstrap brokers")
	cityDir := fl.String("city", "configs/cities/shenzhen", "city folder")
	configPath := fl.String("config", "", "config whose topic names to produce to (default: the embedded config)")
	truthPath := fl.String("truth", "", "write the ground truth (one JSON episode per line) to this file")
	var sf simFlags
	sf.register(fl, 2*time.Hour, 2*time.Hour, 0)
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	c, err := loadCity(*cityDir)
	if err != nil {
		return err
	}
	em := newKafkaEmitter(ctx, strings.Split(*brokers, ","), cfg)
	defer em.Close()
	s, err := sim.New(c, sf.options(ctx, em.Flush))
	if err != nil {
		return err
	}
	began := time.Now()
	res, runErr := s.Run(em)
	if err := em.Flush(); err != nil && runErr == nil {
		runErr = err
	}
	fmt.Printf("simulated %d trucks: %d fixes, %d events, %d officer positions produced to %s in %s; %d violation episodes injected\n",
		len(s.Vehicles()), res.Fixes, res.Events, res.OfficerPositions, *brokers, time.Since(began).Round(time.Millisecond), len(res.Truth))
	if *truthPath != "" {
		if err := writeTruth(*truthPath, res.Truth); err != nil {
			return err
		}
		fmt.Printf("ground truth written to %s\n", *truthPath)
	}
	if runErr != nil && ctx.Err() == nil {
		return runErr
	}
	return nil
}

func writeTruth(path string, truth []sim.Episode) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot write the ground truth: %w", err)
	}
	enc := json.NewEncoder(f)
	for _, ep := range truth {
		if err := enc.Encode(ep); err != nil {
			f.Close()
			return fmt.Errorf("cannot write the ground truth to %s: %w", path, err)
		}
	}
	return f.Close()
}
