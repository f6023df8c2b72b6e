// Package pipeline is muckwatch's core: it joins the Kafka consumer (ingest), the detectors and
// the outputs (sink: ClickHouse and the Kafka topics it writes) into one pipeline with
// at-least-once delivery, and runs it with the API and the metrics endpoint as one lifecycle
// (Run). Its stages are in stages.go, the restore of detector state on a rebalance in restore.go.
package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/console"
	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/internal/statetopic"
	"github.com/muckwatch/muckwatch/sink"
)

// NewRegistry is a metrics registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Started is what Run reports once it is consuming.
type Started struct {
	Consumer   *ingest.Consumer
	Engine     *detectors.Engine
	ClickHouse *sink.ClickHouse
	MetricsURL string // empty if disabled
	APIURL     string // API base URL, empty if disabled
	Live       *api.Live
}

// Run runs the pipeline until ctx is cancelled, then shuts down in reverse: stop ingest
// (handling and committing what was read), close the outputs. ready, if not nil, receives the
// running parts once the pipeline is consuming.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg *prometheus.Registry, ready chan<- Started) error {
	// The probes answer from the start: not ready while starting (health.go).
	h := newHealth(cfg.Metrics, time.Now, log)
	var metrics *metricsServer
	if cfg.Metrics.Listen != "" {
		var err error
		if metrics, err = serveMetrics(cfg.Metrics.Listen, reg, h); err != nil {
			return err
		}
		defer metrics.Close()
		log.Info("metrics served", "url", metrics.URL, "liveness", strings.TrimSuffix(metrics.URL, "/metrics")+"/healthz",
			"readiness", strings.TrimSuffix(metrics.URL, "/metrics")+"/readyz")
	}
	loaded := folderStamp(cfg.City) // before loading: a change made meanwhile is reloaded
	c, err := LoadCity(cfg.City)
	if err != nil {
		return err
	}
	log.Info("city loaded", "city", c.Name, "sites", len(c.Sites), "routes", len(c.Routes), "zones", len(c.Zones),
		"vehicles", len(c.Vehicles), "permits", len(c.Permits))
	h.setStep(stepSchema)
	ch, err := sink.OpenClickHouse(ctx, cfg.ClickHouse, log, reg)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Migrate(ctx); err != nil {
		return err
	}
	h.setClickHouse(ch)
	h.setStep(stepJoin)
	log.Info("ClickHouse schema up to date", "addr", cfg.ClickHouse.Addr, "database", ch.Database(), "server", ch.ServerVersion())
	out, err := sink.NewKafkaOutput(cfg.Outputs, log, reg)
	if err != nil {
		return err
	}
	defer out.Close()
	engine, err := detectors.NewEngine(cfg.Detectors, c, log, reg)
	if err != nil {
		return err
	}
	consumer, err := ingest.NewConsumer(cfg.Kafka, city.NormalizePlate, log, reg)
	if err != nil {
		return err
	}
	p := newStages(cfg.Pipeline, engine, ch, out, log, reg)
	p.topics, p.group = cfg.Kafka.WithDefaults().Topics, cfg.Kafka.WithDefaults().GroupID
	p.flushInterval, p.inFlight = ch.FlushInterval(), cfg.Kafka.WithDefaults().BatchesInFlight
	// a quarter of what the consumer may have in flight: it goes on judging the rest while the
	// writer writes this one (see ingest's recordsInFlight)
	p.fullRecords = cfg.Kafka.RecordsInFlight() / 4
	// Detector state from the checkpoints: open episodes continue where the last run, or the
	// instance that had the partitions before, left them (see pipeline.Rebalanced).
	stateDialer, err := cfg.Outputs.Security.Dialer()
	if err != nil {
		return fmt.Errorf("cannot read the detector state: %w", err)
	}
	p.state = func(ctx context.Context, inputs []int32, f func(key, value []byte) error) (int, error) {
		return statetopic.Read(ctx, cfg.Outputs.Brokers, cfg.Outputs.StateTopic, stateDialer, inputs, f)
	}
	p.health = h // told when the loop turns and when it holds back; before p's goroutines start

	g, gctx := errgroup.WithContext(ctx)
	// With a shared view (api.view shared) every instance publishes its vehicles' positions and
	// risks and names itself on its alert records, whether it serves the API or not; the view of
	// those that do is fed from what all publish (view.go), this instance's pipeline included. A
	// local view is fed from this instance's pipeline only.
	shared := cfg.API.WithDefaults().View == api.ViewShared
	origin := ""
	if shared {
		origin = newInstanceID()
		out.SetOrigin(origin)
		p.live = out
	}
	var live *api.Live
	apiURL := ""
	if cfg.API.Listen != "" {
		live = api.NewLive(cfg.API)
		var view *sharedView
		var risk api.RiskSource = engine
		if shared {
			if view, err = newSharedView(cfg, live, origin, log, reg); err != nil {
				return err
			}
			if err := view.plan(ctx); err != nil { // before the restore: the alerts topic is read from before it
				return err
			}
			risk = live
			// one instance of the group checks each alert for overdue and escalates it, one sends
			// the digest (duty.go)
			duty, err := newAPIDuty(cfg, view.partitions(view.alertsTopic), log, reg)
			if err != nil {
				return err
			}
			live.SetDuty(duty)
			g.Go(func() error { return duty.run(gctx) })
			if !view.positionFeed() {
				log.Warn("the alerts topic has more than one partition: an SSE client resuming on another instance may get an item twice or miss one; give it one partition for an exact resume (docs/operations.md)",
					"topic", view.alertsTopic, "partitions", view.partitions(view.alertsTopic))
			}
		}
		store := api.NewStore(ch.Conn(), ch.Database(), log)
		if err := store.Restore(ctx, live); err != nil {
			return err
		}
		if view != nil {
			caughtUp := make(chan struct{})
			g.Go(func() error { view.run(gctx, caughtUp); return nil })
			select {
			case <-caughtUp:
			case <-gctx.Done():
			}
			log.Info("shared view caught up", "alerts_topic", view.alertsTopic, "live_topic", view.liveTopic, "partitions", len(view.parts))
		} else {
			p.observe = live
		}
		srv, err := api.NewServer(cfg.API, live, store, engine, risk, alertAnnouncer{out}, log, reg)
		if err != nil {
			return err
		}
		srv.SetConsole(console.Handler())
		ln, err := net.Listen("tcp", cfg.API.Listen)
		if err != nil {
			return fmt.Errorf("cannot listen for the API on %s: %w", cfg.API.Listen, err)
		}
		scheme := "http"
		if cfg.API.TLSCertFile != "" {
			scheme = "https"
		}
		apiURL = scheme + "://" + ln.Addr().String()
		g.Go(func() error { return srv.Serve(gctx, ln) })
		log.Info("API served", "url", apiURL+"/api/v1", "openapi", apiURL+"/api/v1/openapi.json")
	}
	metricsURL := ""
	if metrics != nil {
		metricsURL = metrics.URL
		g.Go(func() error {
			select {
			case err := <-metrics.failed:
				return err
			case <-gctx.Done():
				h.setStep(stepStopping)
				return nil
			}
		})
	}
	// The writer outlives a stop of the consumer by as long as the consumer waits for the batches
	// in flight (its drain timeout): it is stopped once the consumer returned.
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(gctx))
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		p.Run(writerCtx)
	}()
	g.Go(func() error {
		err := consumer.Run(gctx, p)
		stopWriter()
		<-writerDone
		if err != nil {
			return fmt.Errorf("pipeline stopped: %w", err)
		}
		log.Info("ingest stopped; what was read is written and committed")
		return nil
	})
	if cfg.CityReloadInterval > 0 {
		reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_city_reloads_total",
			Help: "Reloads of the city folder after its files changed, by result (ok, failed: the data in force stays)."}, []string{"result"})
		reloads.WithLabelValues("ok")
		reloads.WithLabelValues("failed")
		reg.MustRegister(reloads)
		g.Go(func() error {
			watchCity(gctx, cfg.City, loaded, cfg.CityReloadInterval, engine, log, reloads)
			return nil
		})
	}
	log.Info("pipeline running", "brokers", cfg.Kafka.Brokers, "group", cfg.Kafka.GroupID,
		"topics", []string{cfg.Kafka.Topics.GPS, cfg.Kafka.Topics.Events, cfg.Kafka.Topics.Officers})
	if ready != nil {
		ready <- Started{Consumer: consumer, Engine: engine, ClickHouse: ch, MetricsURL: metricsURL, APIURL: apiURL, Live: live}
	}
	return g.Wait()
}

// alertAnnouncer publishes the API's alert changes (handling, overdue) on the alerts topic: the
// alert's JSON as on the API, with "change" set to the change.
type alertAnnouncer struct{ out *sink.KafkaOutput }

func (a alertAnnouncer) Announce(ctx context.Context, items []api.FeedItem) error {
	keys, values := make([][]byte, len(items)), make([][]byte, len(items))
	for i, it := range items {
		v := it.Alert
		v.Change = detectors.ChangeKind(it.Change)
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("cannot encode alert %s: %w", v.ID, err)
		}
		keys[i], values[i] = []byte(v.VehicleID), b
	}
	return a.out.WriteAlertJSON(ctx, keys, values)
}
