package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/sink"
)

// sharedView feeds an API's live view from what every instance publishes (api.view shared): it
// reads every partition of the alerts topic and of the live topic, with no consumer group, and
// applies each record to the view (api.Live.ApplyAnnounced, ApplyLive). The live topic is read
// from its start (it is compacted: the newest record of each vehicle and officer); the alerts
// topic from lookback before the start, on top of what ClickHouse restored (the changes announced
// and not yet written there).
type sharedView struct {
	brokers     []string
	dialer      *kafka.Dialer
	alertsTopic string
	liveTopic   string
	origin      string // this instance (sink.OriginHeader): the changes it made are not relayed
	lookback    time.Duration
	live        *api.Live
	log         *slog.Logger
	metrics     viewMetrics

	parts []viewPartition // planned by plan
	// positioned: the alerts topic has one partition, and the feed's seqs are its positions
	// (api.Live.SetFeedPositions)
	positioned bool
}

// viewPartition is one partition the view reads: from start, caught up once read to end (its
// last offset when the view started).
type viewPartition struct {
	topic      string
	partition  int
	start, end int64
}

type viewMetrics struct {
	lag      prometheus.Histogram
	behind   *prometheus.GaugeVec
	applied  *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newViewMetrics(reg prometheus.Registerer) viewMetrics {
	m := viewMetrics{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "muckwatch_api_view_lag_seconds",
			Help:    "With api.view shared: from a record's production (by the instance that judged the vehicle, or made the change) to its being applied to this instance's view, once the view has caught up.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 1.5, 26)}),
		behind: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "muckwatch_api_view_lag_records",
			Help: "With api.view shared: records of the alerts and live topics this instance's view has not applied yet, per partition, as of its last fetch (from its start: the records it still has to read to catch up)."}, []string{"topic", "partition"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_api_view_records_total",
			Help: "With api.view shared: records of the alerts and live topics applied to this instance's view, by topic."}, []string{"topic"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "muckwatch_api_view_rejected_total",
			Help: "With api.view shared: records of the alerts and live topics that could not be read (not the format muckwatch writes), by topic."}, []string{"topic"}),
	}
	if reg != nil {
		reg.MustRegister(m.lag, m.behind, m.applied, m.rejected)
	}
	return m
}

// newInstanceID names this process on the alerts topic (sink.OriginHeader): the host and a random
// part, so that a restarted instance is another origin.
func newInstanceID() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

func newSharedView(cfg Config, live *api.Live, origin string, log *slog.Logger, reg prometheus.Registerer) (*sharedView, error) {
	dialer, err := cfg.Outputs.Security.Dialer()
	if err != nil {
		return nil, fmt.Errorf("cannot read the shared view: %w", err)
	}
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	return &sharedView{brokers: cfg.Outputs.Brokers, dialer: dialer, alertsTopic: cfg.Outputs.AlertsTopic, liveTopic: cfg.Outputs.LiveTopic,
		origin: origin, lookback: cfg.API.WithDefaults().ViewLookback, live: live, log: log, metrics: newViewMetrics(reg)}, nil
}

// plan finds where each partition is read from and up to where it is read to be caught up. It is
// called before ClickHouse is read for the restore, so that the alerts topic is read from a point
// before it.
func (v *sharedView) plan(ctx context.Context) error {
	from := time.Now().Add(-v.lookback)
	for _, topic := range []string{v.alertsTopic, v.liveTopic} {
		var parts []kafka.Partition
		var err error
		for _, b := range v.brokers {
			if parts, err = v.dialer.LookupPartitions(ctx, "tcp", b, topic); err == nil {
				break
			}
		}
		if err != nil {
			if errors.Is(err, kafka.UnknownTopicOrPartition) {
				return fmt.Errorf("api.view shared reads topic %s, which does not exist: create it (docs/operations.md lists the topics)", topic)
			}
			return fmt.Errorf("cannot list the partitions of %s for the shared view: %w", topic, err)
		}
		slices.SortFunc(parts, func(a, b kafka.Partition) int { return a.ID - b.ID })
		for _, p := range parts {
			vp, err := v.planPartition(ctx, p, from)
			if err != nil {
				return err
			}
			v.parts = append(v.parts, vp)
		}
	}
	return nil
}

// positionFeed makes the view's feed number its items by their position on the alerts topic when
// it has a single partition, so that an SSE client resumes exactly on any instance; with more the
// order of the items differs between instances and a resume on another is approximate.
func (v *sharedView) positionFeed() bool {
	for _, p := range v.parts {
		if p.topic == v.alertsTopic && v.partitions(v.alertsTopic) == 1 {
			v.live.SetFeedPositions(uint64(p.start))
			v.positioned = true
		}
	}
	return v.positioned
}

// partitions is how many partitions of topic the view reads.
func (v *sharedView) partitions(topic string) int {
	n := 0
	for _, p := range v.parts {
		if p.topic == topic {
			n++
		}
	}
	return n
}

func (v *sharedView) planPartition(ctx context.Context, p kafka.Partition, from time.Time) (viewPartition, error) {
	addr := net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port))
	conn, err := v.dialer.DialLeader(ctx, "tcp", addr, p.Topic, p.ID)
	if err != nil {
		return viewPartition{}, fmt.Errorf("cannot connect to the leader of %s/%d at %s: %w", p.Topic, p.ID, addr, err)
	}
	defer conn.Close()
	vp := viewPartition{topic: p.Topic, partition: p.ID}
	if vp.end, err = conn.ReadLastOffset(); err != nil {
		return vp, fmt.Errorf("cannot read the last offset of %s/%d: %w", p.Topic, p.ID, err)
	}
	if p.Topic == v.liveTopic {
		vp.start, err = conn.ReadFirstOffset()
	} else {
		vp.start, err = conn.ReadOffset(from)
	}
	if err != nil {
		return vp, fmt.Errorf("cannot find where to read %s/%d from: %w", p.Topic, p.ID, err)
	}
	if vp.start < 0 || vp.start > vp.end { // no record that late
		vp.start = vp.end
	}
	return vp, nil
}

// run reads every planned partition until ctx is done; caughtUp is closed once every partition
// has been read to where it ended when the view started.
func (v *sharedView) run(ctx context.Context, caughtUp chan<- struct{}) {
	var pending sync.WaitGroup
	pending.Add(len(v.parts))
	var wg sync.WaitGroup
	for _, p := range v.parts {
		wg.Go(func() { v.read(ctx, p, pending.Done) })
	}
	go func() {
		pending.Wait()
		close(caughtUp)
	}()
	wg.Wait()
}

// read reads one partition from p.start and applies its records, calling done once it has
// read up to p.end (or ctx is done). A reader that fails is opened again where it stopped, after
// a pause growing up to 10 s.
func (v *sharedView) read(ctx context.Context, p viewPartition, done func()) {
	caught := false
	catch := func() {
		if !caught {
			caught = true
			done()
		}
	}
	defer catch() // on shutdown, so that nothing waits for it
	if p.start >= p.end {
		catch()
	}
	next, pause := p.start, 100*time.Millisecond
	for {
		from := next
		next = v.readFrom(ctx, p, next, &caught, catch)
		if ctx.Err() != nil {
			return
		}
		if next > from {
			pause = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// readFrom reads partition p from offset until ctx is done or the reader fails, and returns the
// offset after the last record it read.
func (v *sharedView) readFrom(ctx context.Context, p viewPartition, offset int64, caught *bool, catch func()) int64 {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: v.brokers, Topic: p.topic, Partition: p.partition, Dialer: v.dialer,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond, ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: 2 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			v.log.Warn("shared view: "+fmt.Sprintf(msg, args...), "topic", p.topic, "partition", p.partition)
		})})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		v.log.Error("shared view: cannot start reading a partition; retrying", "topic", p.topic, "partition", p.partition, "offset", offset, "err", err)
		return offset
	}
	applied := v.metrics.applied.WithLabelValues(p.topic)
	rejected := v.metrics.rejected.WithLabelValues(p.topic)
	behind := v.metrics.behind.WithLabelValues(p.topic, strconv.Itoa(p.partition))
	if offset < p.end {
		behind.Set(float64(p.end - offset)) // until the first fetch says otherwise
	}
	warned := false
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				v.log.Error("shared view: cannot read a partition; reading it again from where it stopped", "topic", p.topic, "partition", p.partition, "offset", offset, "err", err)
			}
			return offset
		}
		offset = m.Offset + 1
		if lag := r.Lag(); lag >= 0 { // the high watermark of the fetch that returned m, less m
			behind.Set(float64(lag))
		}
		if err := v.apply(p.topic, &m); err != nil {
			rejected.Inc()
			if !warned { // the first of each read: a producer other than muckwatch's
				warned = true
				v.log.Warn("shared view: a record is not the format muckwatch writes; skipped (counted in muckwatch_api_view_rejected_total)",
					"topic", p.topic, "partition", p.partition, "offset", m.Offset, "err", err)
			}
		} else {
			applied.Inc()
		}
		if *caught && !m.Time.IsZero() {
			v.metrics.lag.Observe(max(0, time.Since(m.Time).Seconds()))
		}
		if offset >= p.end {
			catch()
		}
	}
}

func (v *sharedView) apply(topic string, m *kafka.Message) error {
	if topic == v.liveTopic {
		r, err := api.DecodeLiveRecord(m.Value)
		if err != nil {
			return err
		}
		v.live.ApplyLive(r)
		return nil
	}
	var a api.AlertView
	if err := json.Unmarshal(m.Value, &a); err != nil {
		return fmt.Errorf("alert change is not valid: %w", err)
	}
	if a.ID == "" || a.VehicleID == "" {
		return errors.New("alert change has no alert_id or vehicle_id")
	}
	relayed := true
	for _, h := range m.Headers {
		if h.Key == sink.OriginHeader && string(h.Value) == v.origin {
			relayed = false
		}
	}
	var pos uint64
	if v.positioned {
		pos = uint64(m.Offset) + 1
	}
	v.live.ApplyAnnouncedAt(a, relayed, pos)
	return nil
}
