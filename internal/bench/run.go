package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
	"github.com/muckwatch/muckwatch/sink"
)

// Run runs the whole benchmark: generate the city, start the broker and ClickHouse, preload the
// backlog, measure the raw Kafka ceiling, run the pipeline on the backlog, then live traffic at
// half its rate, and read the memory figures.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &Report{City: o.City, Vehicles: o.Vehicles, Partitions: o.Partitions, Fixes: o.Fixes, GOMAXPROCS: runtime.GOMAXPROCS(0), Cores: runtime.NumCPU(), Notes: []string{}}
	cfg, err := pipeline.LoadConfig(o.ConfigPath)
	if err != nil {
		return nil, err
	}

	// The city: the sample's geography (or a large one), with every vehicle registered.
	tmp, err := os.MkdirTemp("", "muckwatch-bench-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)
	cityDir := filepath.Join(tmp, "city")
	c, err := generateCity(&o, cityDir)
	if err != nil {
		return nil, err
	}
	r.City, r.Routes, r.Zones = c.Name, len(c.Routes), len(c.Zones)
	fl, err := newFleet(c, o.Seed)
	if err != nil {
		return nil, err
	}

	// ClickHouse, as the demo starts it (throwaway folder), unless given.
	if o.ClickHouse == "" {
		dir := filepath.Join(tmp, "clickhouse")
		o.logf("starting a local ClickHouse server in %s", dir)
		srv, err := chlocal.StartIn(dir)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := srv.Destroy(); err != nil {
				o.logf("cannot stop the local ClickHouse server: %v", err)
			}
		}()
		o.ClickHouse, o.ClickHouseDir = srv.TCPAddr, srv.Dir
	}

	// The broker, over real TCP.
	brokerAddr, brokerPID, stopBroker, err := startBroker(ctx, &o, cfg.Topics(), filepath.Join(tmp, "broker"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := stopBroker(); err != nil {
			o.logf("%v", err)
		}
	}()
	r.Broker = "child process (muckbench broker)"
	if o.BrokerInProcess {
		r.Broker = "in this process"
	}
	r.Squads = "a child process (muckbench squads; its CPU is among the other processes')"
	if o.SquadsInProcess {
		r.Squads = "this process"
	}
	var ps procSet
	if brokerPID > 0 {
		ps.broker = strconv.Itoa(brokerPID)
	}
	if o.ClickHouseDir != "" {
		r.ClickHouseFilesystem, r.ClickHouseJournalLess = filesystemOf(o.ClickHouseDir)
		if b, err := os.ReadFile(filepath.Join(o.ClickHouseDir, "server.pid")); err == nil {
			ps.clickhouse = strings.TrimSpace(string(b))
		}
	}

	cfg.City = cityDir
	cfg.CityReloadInterval = 0
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{brokerAddr}, []string{brokerAddr}
	cfg.ClickHouse.Addr = []string{o.ClickHouse}
	cfg.ClickHouse.Database = fmt.Sprintf("muckwatch_bench_%d", time.Now().UnixNano())
	cfg.Metrics.Listen = "" // the bench reads the registry directly
	cfg.API.Listen = "127.0.0.1:0"
	cfg.API.TokensEnv = tokensEnv
	cfg.Log.Level = "warn"
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := pipeline.NewLogger(cfg.Log)
	ch, err := sink.OpenClickHouse(ctx, cfg.ClickHouse, log, nil)
	if err != nil {
		return nil, err
	}
	defer ch.Close()
	r.ClickHouseVersion = ch.ServerVersion()

	// 1. The backlog.
	o.logf("preloading %d fixes of %d vehicles into %s (%d partitions)", o.Fixes, o.Vehicles, cfg.Kafka.Topics.GPS, o.Partitions)
	simEnd, err := preload(ctx, fl, partitionsOf(fl, o.Partitions), c.Location, brokerAddr, cfg.Kafka.Topics.GPS, o.Fixes, o.Interval, o.At, r)
	if err != nil {
		return nil, err
	}
	// The live traffic comes from a process of its own, which drives the same fleet on; this
	// process keeps only the plates, for the squads.
	live := liveFleet{cityDir: cityDir, plates: fl.Plates(), t0: fl.Origin(), simStart: max(simEnd.UnixMilli(), fl.LastFix()+1)}
	o.logf("preloaded in %.1fs (%.0f fixes/s)", r.PreloadSeconds, r.PreloadRate)

	// 2. The raw ceiling: a bare kafka-go group reader fetching and discarding the backlog.
	o.logf("raw ceiling: a bare kafka-go group reader fetches the %d records", o.Fixes)
	if err := measureCeiling(ctx, cfg, o.Fixes, r); err != nil {
		return nil, err
	}
	o.logf("ceiling: %.0f records/s (%.1fs)", r.CeilingRate, r.CeilingSeconds)

	// 3. The pipeline on the backlog, with the squads' tokens.
	tokens, err := squadTokens(o.Concurrency)
	if err != nil {
		return nil, err
	}
	defer os.Unsetenv(tokensEnv)
	// The pipeline's memory limit, as muckwatch run sets it (the bench's own machinery before
	// this ran without one).
	defer cfg.Runtime.ApplyMemoryLimit(log)()
	r.Peak.MemoryLimit = debug.SetMemoryLimit(-1)
	peak := watchPeak(o.PeakProfile)
	peakStopped := false
	defer func() {
		if !peakStopped {
			peak.Stop()
		}
	}()
	p, w, err := workBacklog(ctx, &o, cfg, log, ch, brokerAddr, ps, r)
	if err != nil {
		return nil, err
	}
	defer p.stop() // before the broker and ClickHouse stop: the pipeline drains and commits first

	// 4. Live traffic at half that rate: detection latency, fix → queryable, then squad lookups.
	if err := runLive(ctx, &o, cfg, live, p.started, p.reg, w, ps, tokens, r); err != nil {
		return nil, err
	}

	// 5. Memory at the end, with everything in place.
	limit := r.Peak.MemoryLimit
	r.Peak, peakStopped = peak.Stop(), true
	r.Peak.MemoryLimit = limit
	readMemory(ps, r)
	if r.Stored, err = w.count(ctx, "uniqExact(fix_id)"); err != nil {
		return nil, err
	}
	r.Produced = uint64(o.Fixes + r.LiveFixes)
	if r.Stored != r.Produced {
		r.Notes = append(r.Notes, fmt.Sprintf("%d fixes produced but %d distinct fixes stored", r.Produced, r.Stored))
	}
	if err := p.stop(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("the pipeline stopped with an error: %w", err)
	}
	if o.ClickHouseDir == "" {
		r.Notes = append(r.Notes, fmt.Sprintf("the bench's database %s is left on ClickHouse %s", cfg.ClickHouse.Database, o.ClickHouse))
	}
	if busy := max(r.BacklogCPU.Others, r.LiveCPU.Others); busy > 0.25 {
		r.Notes = append(r.Notes, fmt.Sprintf("other processes kept up to %.2f of the machine's %d cores busy during the measurements: every figure is perturbed by that load",
			busy, runtime.NumCPU()))
	}
	r.Targets = targets(r)
	return r, nil
}

// generateCity writes the city o.City asks for, with o.Vehicles registered, into dir and loads it.
func generateCity(o *Options, dir string) (*city.City, error) {
	so := sim.DefaultSampleCityOptions()
	so.Name = fmt.Sprintf("Shenzhen (sample geography, %d vehicles)", o.Vehicles)
	if o.City == "large" {
		so = sim.SampleCityOptions{Name: fmt.Sprintf("Shenzhen (large, %d vehicles)", o.Vehicles), ConstructionSites: 500, DisposalSites: 100,
			Routes: 10_000, RestrictedZones: 600, SpeedZones: 400, Companies: 150}
	}
	so.Vehicles = o.Vehicles
	o.logf("generating the %s city with %d vehicles in %s", o.City, o.Vehicles, dir)
	if err := sim.GenerateSampleCity(dir, so); err != nil {
		return nil, fmt.Errorf("cannot generate the city: %w", err)
	}
	return city.Load(dir)
}

// squadTokens makes n squads' API tokens and passes their hashed entries to the pipeline about
// to start (in the environment variable tokensEnv, which the caller unsets when it is over).
func squadTokens(n int) ([]string, error) {
	tokens := make([]string, n)
	entries := make([]string, n)
	for k := range tokens {
		var err error
		if tokens[k], entries[k], err = api.NewToken(api.RoleSquad, fmt.Sprintf("bench-squad-%03d", k)); err != nil {
			return nil, fmt.Errorf("cannot make an API token: %w", err)
		}
	}
	if err := os.Setenv(tokensEnv, strings.Join(entries, ",")); err != nil {
		return nil, fmt.Errorf("cannot pass the API tokens: %w", err)
	}
	return tokens, nil
}
