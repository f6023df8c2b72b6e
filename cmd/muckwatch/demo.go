package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/internal/broker"
	"github.com/muckwatch/muckwatch/internal/chlocal"
	"github.com/muckwatch/muckwatch/pipeline"
	"github.com/muckwatch/muckwatch/sim"
	"github.com/muckwatch/muckwatch/sink"
	"github.com/muckwatch/muckwatch/tables"
)

func cmdDemo(ctx context.Context, args []string) error {
	fl := flag.NewFlagSet("demo", flag.ContinueOnError)
	configPath := fl.String("config", "", "config file (default: the embedded configs/muckwatch.yaml); its Kafka and ClickHouse addresses are replaced by the demo's own")
	dataDir := fl.String("data", "var/demo", "folder for the local ClickHouse server's data")
	chAddr := fl.String("clickhouse", "", "use this ClickHouse (host:port, native protocol) instead of starting a local server")
	brokerListen := fl.String("broker-listen", "127.0.0.1:0", "address of the embedded broker (port 0: a free port)")
	partitions := fl.Int("partitions", 8, "partitions per input topic")
	metricsListen := fl.String("metrics-listen", "127.0.0.1:0", "address of the metrics endpoint (port 0: a free port)")
	apiListen := fl.String("api-listen", "127.0.0.1:0", "address of the HTTP API (port 0: a free port; off: no API)")
	every := fl.Duration("status-every", 5*time.Second, "how often to print live counts")
	var sf simFlags
	sf.register(fl, 24*time.Hour, 6*time.Hour, 30)
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg, err := pipeline.LoadConfig(*configPath)
	if err != nil {
		return err
	}
	cfg.Log.Level = "warn" // the demo prints its own status; warnings and errors still show
	log := pipeline.NewLogger(cfg.Log)
	defer cfg.Runtime.ApplyMemoryLimit(log)()

	bk, brokerAddr, err := broker.Start(broker.Options{Listen: *brokerListen, Partitions: *partitions, Topics: cfg.Topics()})
	if err != nil {
		return err
	}
	defer bk.Close()
	cfg.Kafka.Brokers = []string{brokerAddr}
	cfg.Outputs.Brokers = []string{brokerAddr}
	cfg.Metrics.Listen = *metricsListen
	cfg.API.Listen = *apiListen
	if cfg.API.Listen == "off" {
		cfg.API.Listen = ""
	}
	// Without configured tokens the demo makes one per role for this run and prints them.
	var demoTokens [][2]string
	if cfg.API.Listen != "" && os.Getenv(cfg.API.TokensEnv) == "" {
		var entries []string
		for _, role := range []api.Role{api.RoleSquad, api.RoleSupervisor, api.RoleAnalyst, api.RoleAdmin} {
			token, entry, err := api.NewToken(role, "demo-"+string(role))
			if err != nil {
				return err
			}
			entries = append(entries, entry)
			demoTokens = append(demoTokens, [2]string{string(role), token})
		}
		if err := os.Setenv(cfg.API.TokensEnv, strings.Join(entries, ",")); err != nil {
			return err
		}
	}

	chHTTP := ""
	if *chAddr == "" {
		dir, err := filepath.Abs(filepath.Join(*dataDir, "clickhouse"))
		if err != nil {
			return err
		}
		fmt.Printf("starting a local ClickHouse server with its data in %s …\n", dir)
		srv, err := chlocal.StartIn(dir)
		if err != nil {
			return fmt.Errorf("%w\n(run the demo from the muckwatch checkout, or pass --clickhouse HOST:PORT)", err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "muckwatch demo: cannot stop the local ClickHouse server: %v\n", err)
			}
		}()
		*chAddr, chHTTP = srv.TCPAddr, srv.HTTPAddr
	}
	cfg.ClickHouse.Addr = []string{*chAddr}
	if err := cfg.Validate(); err != nil {
		return err
	}

	reg := pipeline.NewRegistry()
	ready := make(chan pipeline.Started, 1)
	pctx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipeline()
	pipelineDone := make(chan error, 1)
	go func() { pipelineDone <- pipeline.Run(pctx, cfg, log, reg, ready) }()
	var st pipeline.Started
	select {
	case st = <-ready:
	case err := <-pipelineDone:
		return err
	}

	c := st.Engine.City()
	host, port, _ := strings.Cut(*chAddr, ":")
	fmt.Printf(`
muckwatch demo — %s: %d sites, %d routes, %d zones, %d vehicles, %d permits
  Kafka broker   %s   (topics %s, %s, %s → %s, %s)
  ClickHouse     %s   database %s
  metrics        %s
  query          clickhouse-client --host %s --port %s -d %s -q "SELECT rule, severity, count() FROM alerts FINAL GROUP BY rule, severity ORDER BY rule"
  try it         echo '粤B12345|{"vehicle_id":"粤B12345","ts":'$(date +%%s%%3N)',"lat":22.5431,"lon":114.0579,"speed_kmh":35}' | kcat -P -b %s -t %s -K '|'
`, c.Name, len(c.Sites), len(c.Routes), len(c.Zones), len(c.Vehicles), len(c.Permits),
		brokerAddr, cfg.Kafka.Topics.GPS, cfg.Kafka.Topics.Events, cfg.Kafka.Topics.Officers, cfg.Outputs.AlertsTopic, cfg.Outputs.DLQTopic,
		*chAddr, cfg.ClickHouse.Database, st.MetricsURL,
		host, port, cfg.ClickHouse.Database, brokerAddr, cfg.Kafka.Topics.GPS)
	if chHTTP != "" {
		fmt.Printf("  HTTP           http://%s/?query=SELECT+count()+FROM+%s.positions\n", chHTTP, cfg.ClickHouse.Database)
	}
	if st.APIURL != "" {
		fmt.Printf("  API            %s/api/v1  (OpenAPI: %s/api/v1/openapi.json)\n", st.APIURL, st.APIURL)
		for _, t := range demoTokens {
			fmt.Printf("  token %-10s %s\n", t[0], t[1])
		}
		if len(demoTokens) > 0 {
			fmt.Printf("  try            curl -H 'Authorization: Bearer %s' %s/api/v1/vehicles/%s\n", demoTokens[0][1], st.APIURL, url.PathEscape(c.Vehicles[0].Plate))
			fmt.Printf("                 curl -N -H 'Authorization: Bearer %s' %s/api/v1/alerts/stream?severity=severe\n", demoTokens[1][1], st.APIURL)
		}
	}
	start, resumed, err := demoStart(ctx, cfg.ClickHouse, log, time.Now(), sf.back)
	if err != nil {
		return err
	}
	if resumed {
		fmt.Printf("continuing the city at %gx real time from %s, where the last run on this data stopped (its hours are not simulated again; Ctrl-C stops everything)\n\n",
			sf.speedup, start.Format(time.RFC3339))
	} else {
		fmt.Printf("simulating the city at %gx real time from %s ago (Ctrl-C stops everything)\n\n", sf.speedup, sf.back)
	}

	em := sim.NewKafkaEmitter(ctx, cfg.Kafka.Brokers, cfg.Kafka.Topics)
	defer em.Close()
	simulator, err := sim.New(c, sf.options(ctx, em.Flush, start))
	if err != nil {
		return err
	}
	simDone := make(chan error, 1)
	go func() {
		_, err := simulator.Run(em)
		if ferr := em.Flush(); err == nil {
			err = ferr
		}
		simDone <- err
	}()

	status := newStatusPrinter(reg, st)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			status.print(os.Stdout)
		case err := <-simDone:
			if err != nil && ctx.Err() == nil {
				log.Error("simulator stopped", "err", err)
			}
			simDone = nil
		case err := <-pipelineDone:
			return fmt.Errorf("pipeline stopped: %w", err)
		case <-ctx.Done():
			fmt.Println("\nstopping: simulator, then ingest (writing and committing what was read), then ClickHouse and the broker …")
			stopPipeline()
			err := <-pipelineDone
			status.print(os.Stdout)
			if err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			fmt.Println("stopped cleanly")
			return nil
		}
	}
}

// demoStart is when the demo's simulated time starts: back before now, or, when ClickHouse
// already holds positions after that (an earlier demo run on the same data), just after the
// newest of them, so that a re-run continues the city instead of simulating the same hours again
// (which would store a second copy of them, with other times and so other alerts). resumed
// reports the latter.
func demoStart(ctx context.Context, chCfg sink.ClickHouseConfig, log *slog.Logger, now time.Time, back time.Duration) (start time.Time, resumed bool, err error) {
	start = now.Add(-back).Truncate(time.Second)
	ch, err := sink.OpenClickHouse(ctx, chCfg, log, nil)
	if err != nil {
		return start, false, err
	}
	defer ch.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	t := tables.Positions
	var newest int64
	q := "SELECT max(" + t.Col("ts_ms") + ") FROM " + t.In(ch.Database()) + " WHERE " + t.Col("ts") + " >= toDateTime(?)"
	if err := ch.Conn().QueryRow(ctx, q, start.Unix()).Scan(&newest); err != nil {
		return start, false, fmt.Errorf("cannot read the newest position stored in %s: %w", ch.Database(), err)
	}
	if newest <= start.UnixMilli() {
		return start, false, nil
	}
	return time.UnixMilli(newest).Add(time.Second).Truncate(time.Second), true, nil
}

// statusPrinter prints live counts from the metrics registry.
type statusPrinter struct {
	reg     prometheus.Gatherer
	st      pipeline.Started
	lastAt  time.Time
	lastFix float64
}

func newStatusPrinter(reg prometheus.Gatherer, st pipeline.Started) *statusPrinter {
	return &statusPrinter{reg: reg, st: st, lastAt: time.Now()}
}

func (s *statusPrinter) print(w *os.File) {
	mfs, err := s.reg.Gather()
	if err != nil {
		fmt.Fprintf(w, "cannot gather metrics: %v\n", err)
		return
	}
	sum := func(name string, match func(labels map[string]string) bool) float64 {
		var total float64
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if match != nil && !match(labelMap(m)) {
					continue
				}
				total += metricValue(m)
			}
		}
		return total
	}
	now := time.Now()
	fixes := sum("muckwatch_clickhouse_rows_total", func(l map[string]string) bool { return l["table"] == "positions" })
	in := sum("muckwatch_ingest_records_total", nil)
	rejects := sum("muckwatch_ingest_rejects_total", nil)
	dt := now.Sub(s.lastAt).Seconds()
	rate := (fixes - s.lastFix) / dt
	s.lastAt, s.lastFix = now, fixes

	byRule := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "muckwatch_alert_changes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := labelMap(m)
			if l["change"] == "opened" {
				byRule[l["rule"]] += metricValue(m)
			}
		}
	}
	rules := make([]string, 0, len(byRule))
	var alerts float64
	for r, n := range byRule {
		if n > 0 {
			rules = append(rules, fmt.Sprintf("%s=%.0f", r, n))
		}
		alerts += n
	}
	sort.Strings(rules)
	fmt.Fprintf(w, "%s  fixes/s %6.0f  stored %8.0f  read %8.0f  rejected %4.0f  lag %5d  vehicles %4d  alerts %4.0f [%s]\n",
		now.Format("15:04:05"), rate, fixes, in, rejects, s.st.Consumer.Lag(), s.st.Engine.Tracks(), alerts, strings.Join(rules, " "))
}

func labelMap(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}
