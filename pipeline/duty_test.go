package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/internal/broker"
)

// sharedRig is a group of instances with api.view shared over the embedded broker and the test
// ClickHouse.
type sharedRig struct {
	t      *testing.T
	cfg    Config
	broker string
	env    *testEnv
	tokens map[api.Role]string
	all    []*sharedInstance
	city   *city.City
}

type sharedInstance struct {
	cancel  context.CancelFunc
	done    chan error
	reg     *prometheus.Registry
	client  *apiClient
	stopped bool
}

// sharedConfig is the configuration of instances with api.view shared over the test ClickHouse
// (a database of their own, named from prefix), with a squad's and a supervisor's tokens.
func sharedConfig(t *testing.T, prefix string) (Config, map[api.Role]string) {
	t.Helper()
	tokens := map[api.Role]string{}
	var entries []string
	for _, r := range []api.Role{api.RoleSquad, api.RoleSupervisor} {
		tok, entry, err := api.NewToken(r, "test-"+string(r))
		if err != nil {
			t.Fatal(err)
		}
		tokens[r], entries = tok, append(entries, entry)
	}
	t.Setenv("MUCKWATCH_API_TOKENS", strings.Join(entries, ","))
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.City, cfg.CityReloadInterval = "../configs/cities/shenzhen", 0
	cfg.Kafka.GroupID = "group"
	cfg.ClickHouse.Addr = []string{chServer.TCPAddr}
	cfg.ClickHouse.Database = fmt.Sprintf("%s_%d", prefix, dbSeq.Add(1))
	cfg.Metrics.Listen = ""
	cfg.API.Listen, cfg.API.View = "127.0.0.1:0", api.ViewShared
	return cfg, tokens
}

// startShared starts n instances with api.view shared over partitions partitions; edit changes
// their configuration, and each's (instance -1: the configuration of all).
func startShared(t *testing.T, n, partitions int, edit func(instance int, cfg *Config)) *sharedRig {
	t.Helper()
	cfg, tokens := sharedConfig(t, "mw_duty")
	cfg.Kafka.SessionTimeout = 6 * time.Second
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: partitions, Topics: cfg.Topics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bk.Close)
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{addr}, []string{addr}
	if edit != nil {
		edit(-1, &cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCity(cfg.City)
	if err != nil {
		t.Fatal(err)
	}
	rig := &sharedRig{t: t, cfg: cfg, broker: addr, tokens: tokens, city: c}
	t.Cleanup(func() {
		for _, in := range rig.all {
			if !in.stopped {
				in.cancel()
				if err := <-in.done; err != nil {
					t.Errorf("pipeline stopped with an error: %v", err)
				}
			}
		}
	})
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		in := &sharedInstance{cancel: cancel, done: make(chan error, 1), reg: NewRegistry()}
		ready := make(chan Started, 1)
		icfg := cfg
		if edit != nil {
			icfg.API.Escalation.Levels = slices.Clone(cfg.API.Escalation.Levels)
			edit(i, &icfg)
		}
		go func() { in.done <- Run(ctx, icfg, testLogger(t), in.reg, ready) }()
		select {
		case s := <-ready:
			in.client = &apiClient{t: t, base: s.APIURL, tokens: tokens}
		case err := <-in.done:
			cancel()
			t.Fatalf("pipeline did not start: %v", err)
		}
		rig.all = append(rig.all, in)
	}
	rig.env = &testEnv{t: t, cfg: cfg, broker: addr, conn: openConn(t, cfg)}
	for _, in := range rig.all {
		rig.env.regs = append(rig.env.regs, in.reg)
	}
	return rig
}

// stop stops instance i gracefully.
func (r *sharedRig) stop(i int) {
	r.t.Helper()
	in := r.all[i]
	in.cancel()
	if err := <-in.done; err != nil {
		r.t.Fatalf("instance %d stopped with an error: %v", i, err)
	}
	in.stopped = true
	r.env.regs = nil
	for _, o := range r.all {
		if !o.stopped {
			r.env.regs = append(r.env.regs, o.reg)
		}
	}
}

// waitDuties waits until the running instances share every partition of the alerts topic.
func (r *sharedRig) waitDuties(partitions int) {
	r.t.Helper()
	r.env.waitFor("the API's duties shared", 2*time.Minute, func() bool {
		sum := 0.0
		for _, reg := range r.env.regs {
			n := gauge(r.t, reg, "muckwatch_api_duty_partitions")
			if n == 0 {
				return false
			}
			sum += n
		}
		return int(sum) == partitions
	})
}

// coverOpen drives n registered trucks along a road for a minute and has a camera see each with
// its cover open: one alert per truck.
func (r *sharedRig) coverOpen(n int, start time.Time, tag string) {
	c := r.city
	var msgs []kafka.Message
	for i, v := range c.Vehicles[:n] {
		for s := 0; s <= 60; s += 10 {
			xy := c.Proj.Forward(c.Origin)
			xy[0] += float64(500*i) + float64(s)*5
			xy[1] -= 400
			ll := c.Proj.Inverse(xy)
			msgs = append(msgs, fixMsg(r.cfg.Kafka.Topics.GPS, v.Plate, start.Add(time.Duration(s)*time.Second), ll[1], ll[0], 18))
		}
	}
	produce(r.t, r.broker, msgs...)
	msgs = nil
	for i, v := range c.Vehicles[:n] {
		msgs = append(msgs, kafka.Message{Topic: r.cfg.Kafka.Topics.Events, Key: []byte(v.Plate), Value: fmt.Appendf(nil,
			`{"event_id":"cam-%s-%d","vehicle_id":%q,"ts":%d,"kind":"cover_open","source":"cam-road-7"}`, tag, i, v.Plate, start.Add(70*time.Second).UnixMilli())})
	}
	produce(r.t, r.broker, msgs...)
}

// stepReceiver counts the escalation webhooks' deliveries per alert and level, and notes which
// instance sent each (the path's last element).
type stepReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  map[string]int            // "alert level N" → deliveries
	from map[string]map[string]int // vehicle → instances that delivered its alerts' first steps
}

func newStepReceiver(t *testing.T) *stepReceiver {
	rc := &stepReceiver{got: map[string]int{}, from: map[string]map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var it api.FeedItem
		if err == nil {
			err = json.Unmarshal(b, &it)
		}
		if err != nil {
			t.Errorf("escalation webhook: cannot read a delivery: %v", err)
			return
		}
		rc.mu.Lock()
		rc.got[fmt.Sprintf("%s level %d ", it.Alert.ID, it.Alert.EscalationLevel)]++
		if it.Alert.EscalationLevel == 1 {
			if rc.from[it.Alert.VehicleID] == nil {
				rc.from[it.Alert.VehicleID] = map[string]int{}
			}
			rc.from[it.Alert.VehicleID][path.Base(r.URL.Path)]++
		}
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *stepReceiver) count(level int) (alerts int, dup []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for k, n := range rc.got {
		if strings.Contains(k, fmt.Sprintf(" level %d ", level)) {
			alerts++
			if n != 1 {
				dup = append(dup, fmt.Sprintf("%s: %d deliveries", k, n))
			}
		}
	}
	return alerts, dup
}

// Three instances of a shared view with an escalation ladder: every overdue alert is announced
// overdue once, and each escalation step is taken once in the whole group — one webhook delivery,
// one change on the alerts topic and one journal row per step — also when the instance that took
// an alert's first step stops before its second.
func TestSharedViewEscalatesOnce(t *testing.T) {
	const instances, partitions, trucks = 3, 8, 8
	rc := newStepReceiver(t)
	t.Setenv("MUCKWATCH_TEST_ESCALATION_SECRET", "s3cret")
	rig := startShared(t, instances, partitions, func(i int, c *Config) {
		if i >= 0 { // each instance's deliveries on a path of its own
			for k := range c.API.Escalation.Levels {
				c.API.Escalation.Levels[k].Webhooks = []string{fmt.Sprintf("%s/%s/%d", rc.srv.URL, c.API.Escalation.Levels[k].Name, i)}
			}
			return
		}
		c.API.AckWithin = api.AckWithin{Severe: 4 * time.Second, Warning: 4 * time.Second, Info: 4 * time.Second}
		c.API.Escalation = api.EscalationConfig{MinSeverity: "info", SecretEnv: "MUCKWATCH_TEST_ESCALATION_SECRET", Levels: []api.EscalationLevel{
			{Name: "district", AfterPrevious: 3 * time.Second, Scope: api.ScopeDistrict, Roles: []string{"supervisor"}, Webhooks: []string{rc.srv.URL + "/district"}},
			{Name: "city", AfterPrevious: 10 * time.Second, Scope: api.ScopeCity, Roles: []string{"admin"}, Webhooks: []string{rc.srv.URL + "/city"}},
		}}
	})
	rig.env.waitBalanced(len(rig.cfg.Kafka.InputTopics()), partitions)
	rig.waitDuties(partitions)
	duty := map[int]float64{}
	for i, in := range rig.all {
		duty[i] = gauge(t, in.reg, "muckwatch_api_duty_partitions")
	}
	t.Logf("alert partitions watched per instance: %v", duty)

	rig.coverOpen(trucks, time.Now().Add(-10*time.Minute).Truncate(time.Second), "esc")
	// the trucks' alerts (cover_open, and the route deviations and unlicensed trips of their drive),
	// nobody handling them: all climb the ladder
	alerts := 0
	rig.env.waitFor("every alert's first escalation step", 2*time.Minute, func() bool {
		var page api.AlertsPage
		rig.all[0].client.getJSON(api.RoleSupervisor, "/api/v1/alerts?limit=1000", 200, &page)
		alerts = len(page.Alerts)
		n, _ := rc.count(1)
		return alerts >= trucks && n == alerts
	})
	// the instance with the most alert partitions stops: the others take over its alerts' next step
	stopped := 0
	for i := range rig.all {
		if duty[i] > duty[stopped] {
			stopped = i
		}
	}
	rig.stop(stopped)
	rig.waitDuties(partitions)
	// Each alert's first step was taken by the instance watching its vehicle's partition of the
	// alerts topic: the partitions' vehicles are delivered from one instance each, as many
	// partitions from an instance as it watches.
	byInstance := map[string]map[int]bool{}
	balancer, parts := &kafka.Hash{}, []int{0, 1, 2, 3, 4, 5, 6, 7}
	rc.mu.Lock()
	for vehicle, from := range rc.from {
		if len(from) != 1 {
			t.Errorf("the first steps of %s's alerts came from instances %v, want one", vehicle, from)
		}
		for in := range from {
			if byInstance[in] == nil {
				byInstance[in] = map[int]bool{}
			}
			byInstance[in][balancer.Balance(kafka.Message{Key: []byte(vehicle)}, parts...)] = true
		}
	}
	rc.mu.Unlock()
	owner := map[int]string{}
	for in, ps := range byInstance {
		i, _ := strconv.Atoi(in)
		if float64(len(ps)) > duty[i] {
			t.Errorf("instance %s took the first steps of vehicles in %d partitions %v, but watches %v", in, len(ps), ps, duty[i])
		}
		for p := range ps {
			if o, dup := owner[p]; dup {
				t.Errorf("partition %d's first steps came from instances %s and %s", p, o, in)
			}
			owner[p] = in
		}
	}
	t.Logf("%d alerts at level 1; instance %d stopped, its alerts' next step taken by the others", alerts, stopped)
	rig.env.waitFor("every alert's second escalation step", 2*time.Minute, func() bool { n, _ := rc.count(2); return n == alerts })

	// The alerts topic: read until it has been quiet for 5 s (five checks of each instance after
	// the last step), counting each alert's overdue and renotified changes.
	changes := map[string]int{}
	readTopic(t, rig.broker, rig.cfg.Outputs.AlertsTopic, 1<<30, func(m kafka.Message) bool {
		var v api.AlertView
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Errorf("alerts topic: record at %d/%d is not an alert change: %v", m.Partition, m.Offset, err)
			return false
		}
		if c := string(v.Change); c == api.ChangeOverdue || c == api.ChangeRenotified {
			changes[fmt.Sprintf("%s %s %d", v.ID, c, v.EscalationLevel)]++
		}
		return true
	})
	for level := 1; level <= 2; level++ {
		if n, dup := rc.count(level); n != alerts || len(dup) > 0 {
			t.Errorf("level %d: webhooks got %d alerts, want %d; more than once: %v", level, n, alerts, dup)
		}
	}
	if len(changes) != 3*alerts {
		t.Errorf("the alerts topic has %d distinct overdue and renotified changes, want %d: %v", len(changes), 3*alerts, changes)
	}
	for k, n := range changes {
		if n != 1 {
			t.Errorf("the alerts topic has %s %d times, want once", k, n)
		}
	}
	rig.env.waitFor("the steps journaled", time.Minute, func() bool {
		return rig.env.count("SELECT count() FROM alert_feed WHERE change IN ('overdue', 'renotified')") >= uint64(3*alerts)
	})
	if n := rig.env.count("SELECT count() FROM alert_feed FINAL WHERE change IN ('overdue', 'renotified')"); n != uint64(3*alerts) {
		t.Errorf("the journal has %d overdue and renotified items, want %d (one per step)", n, 3*alerts)
	}
	// every running instance's view has caught up with both topics, and says so
	for i, in := range rig.all {
		if in.stopped {
			continue
		}
		series := 0
		rig.env.waitFor(fmt.Sprintf("instance %d's view lag at 0 records", i), time.Minute, func() bool {
			sum, n := sumGauge(t, in.reg, "muckwatch_api_view_lag_records")
			series = n
			return sum == 0
		})
		if series != 2*partitions {
			t.Errorf("instance %d reports the view lag of %d partitions, want %d (both topics)", i, series, 2*partitions)
		}
	}
	// every running instance shows every alert at the top of the ladder
	for i, in := range rig.all {
		if in.stopped {
			continue
		}
		var page api.AlertsPage
		in.client.getJSON(api.RoleSupervisor, "/api/v1/alerts?limit=1000", 200, &page)
		for _, a := range page.Alerts {
			if a.EscalationLevel != 2 || !a.Overdue {
				t.Errorf("instance %d shows %s at level %d, overdue %v; want level 2", i, a.ID, a.EscalationLevel, a.Overdue)
			}
		}
	}
}

// sumGauge sums the series of a labelled gauge in reg, and counts them.
func sumGauge(t testing.TB, reg *prometheus.Registry, name string) (sum float64, series int) {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
				series++
			}
		}
	}
	return sum, series
}
