package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
)

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
		o.Clock = &sim.WallClock{Ctx: ctx, WallStart: time.Now(), SimStart: start, Speedup: f.speedup, Flush: flush}
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
	cfg, err := pipeline.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	c, err := pipeline.LoadCity(*cityDir)
	if err != nil {
		return err
	}
	em := sim.NewKafkaEmitter(ctx, strings.Split(*brokers, ","), cfg.Kafka.Topics)
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

// simTopics names the config's input topics for the simulator's records.
