package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// apiDuty shares the overdue checks, the escalation steps and the daily digest of a shared view
// among the instances serving the API (api.Duty), so that each is done once for the group: every
// such instance is a member of consumer group "<kafka.group_id>.api" over the alerts topic — for
// its membership only: it reads nothing through it and commits nothing — and watches the alerts
// of the vehicles whose records land in the partitions assigned to it (by key, with the alert
// writer's partitioner); the member assigned partition 0 sends the digest. When an instance
// stops, its partitions move to the others after the group's session timeout. Between two
// generations a member watches nothing: kafka-go hands out a generation only once every member
// has ended the one before, so no two instances ever watch the same alert at once.
type apiDuty struct {
	group      kafka.ConsumerGroupConfig
	topic      string
	partitions []int       // 0 … n-1: the alerts topic's
	balancer   *kafka.Hash // the alert writer's (sink.KafkaOutput)
	owned      atomic.Pointer[[]bool]
	watched    prometheus.Gauge
	log        *slog.Logger
}

func newAPIDuty(cfg Config, partitions int, log *slog.Logger, reg prometheus.Registerer) (*apiDuty, error) {
	dialer, err := cfg.Outputs.Security.Dialer()
	if err != nil {
		return nil, fmt.Errorf("cannot join the API's group: %w", err)
	}
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	k := cfg.Kafka.WithDefaults()
	d := &apiDuty{topic: cfg.Outputs.AlertsTopic, balancer: &kafka.Hash{}, log: log,
		watched: prometheus.NewGauge(prometheus.GaugeOpts{Name: "muckwatch_api_duty_partitions",
			Help: "With api.view shared: partitions of the alerts topic whose alerts this instance checks for overdue and escalates (its share of the API group)."})}
	for i := range partitions {
		d.partitions = append(d.partitions, i)
	}
	d.group = kafka.ConsumerGroupConfig{
		ID: APIGroup(k.GroupID), Brokers: cfg.Outputs.Brokers, Dialer: dialer, Topics: []string{d.topic},
		HeartbeatInterval: time.Second, SessionTimeout: k.SessionTimeout, RebalanceTimeout: k.SessionTimeout,
		JoinGroupBackoff: time.Second,
		Logger:           kafka.LoggerFunc(func(msg string, args ...any) { log.Debug(fmt.Sprintf(msg, args...), "component", "api-group") }),
		ErrorLogger:      kafka.LoggerFunc(func(msg string, args ...any) { log.Warn(fmt.Sprintf(msg, args...), "component", "api-group") }),
	}
	if err := d.group.Validate(); err != nil {
		return nil, fmt.Errorf("cannot join the API's group: %w", err)
	}
	if reg != nil {
		reg.MustRegister(d.watched)
	}
	return d, nil
}

// APIGroup is the consumer group in which the instances serving a shared view share its duties.
func APIGroup(groupID string) string { return groupID + ".api" }

// Watches reports whether this instance checks the alerts of a vehicle (api.Duty).
func (d *apiDuty) Watches(vehicleID string) bool {
	o := d.owned.Load()
	if o == nil || len(d.partitions) == 0 {
		return false
	}
	return (*o)[d.balancer.Balance(kafka.Message{Key: []byte(vehicleID)}, d.partitions...)]
}

// SendsDigest reports whether this instance sends the daily digest (api.Duty).
func (d *apiDuty) SendsDigest() bool {
	o := d.owned.Load()
	return o != nil && len(*o) > 0 && (*o)[0]
}

// run takes part in the API's group until ctx is done.
func (d *apiDuty) run(ctx context.Context) error {
	cg, err := kafka.NewConsumerGroup(d.group)
	if err != nil {
		return fmt.Errorf("cannot join the API's group %s: %w", d.group.ID, err)
	}
	defer cg.Close()
	for {
		gen, err := cg.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.log.Warn("cannot join the API's group yet; retrying (meanwhile this instance escalates nothing)", "group", d.group.ID, "err", err)
			continue
		}
		owned := make([]bool, len(d.partitions))
		var mine []int
		for _, a := range gen.Assignments[d.topic] {
			if a.ID >= 0 && a.ID < len(owned) {
				owned[a.ID] = true
				mine = append(mine, a.ID)
			}
		}
		d.owned.Store(&owned)
		d.watched.Set(float64(len(mine)))
		d.log.Info("API duties", "group", d.group.ID, "generation", gen.ID, "alert_partitions", mine, "digest", len(owned) > 0 && owned[0])
		// the generation ends (a member joins or leaves) before the next is handed out: watch
		// nothing from then on
		gen.Start(func(gctx context.Context) {
			<-gctx.Done()
			d.owned.Store(nil)
			d.watched.Set(0)
		})
	}
}
