package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/api"
	"github.com/muckwatch/muckwatch/internal/broker"
)

// Three instances with api.view shared over 8 partitions: every instance gives the same answer
// for every truck (its risk, last position, open alerts and violations), the same open alert
// list and the same SSE items per truck, whichever instance judges the truck; a dismissal made on
// one instance holds on the others (and is journaled once); and all of that still holds once one
// instance is stopped and its partitions are taken over by the other two. It reports how far each
// view is behind the records' production (muckwatch_api_view_lag_seconds).
//
// The trucks' camera events come from a gateway that partitions with kcat's default (CRC32), not
// the contract's FNV-1a, and kafka.rekey puts them back with their trucks' fixes: the answers
// above are for trucks whose events were misrouted, and after the takeover a second round of
// misrouted events (spillage) is judged by the new owners, each alert placed at its truck's last
// fix, which only the engine holding the fixes knows.
func TestSharedViewAnyInstanceAnswers(t *testing.T) {
	const instances, partitions = 3, 8
	cfg, tokens := sharedConfig(t, "mw_view")
	cfg.Kafka.Partitioner, cfg.Kafka.Rekey = "fnv1a", true
	bk, addr, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", Partitions: partitions, Topics: cfg.Topics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bk.Close)
	cfg.Kafka.Brokers, cfg.Outputs.Brokers = []string{addr}, []string{addr}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}

	type instance struct {
		cancel  context.CancelFunc
		done    chan error
		reg     *prometheus.Registry
		client  *apiClient
		mu      sync.Mutex
		items   map[string][]string // plate → its SSE items: alert id, change, version, handling state
		stopped bool
	}
	var all []*instance
	t.Cleanup(func() {
		for _, in := range all {
			if !in.stopped {
				in.cancel()
				if err := <-in.done; err != nil {
					t.Errorf("pipeline stopped with an error: %v", err)
				}
			}
		}
	})
	for range instances {
		ctx, cancel := context.WithCancel(context.Background())
		in := &instance{cancel: cancel, done: make(chan error, 1), reg: NewRegistry(), items: map[string][]string{}}
		ready := make(chan Started, 1)
		go func() { in.done <- Run(ctx, cfg, testLogger(t), in.reg, ready) }()
		select {
		case s := <-ready:
			in.client = &apiClient{t: t, base: s.APIURL, tokens: tokens}
		case err := <-in.done:
			cancel()
			t.Fatalf("pipeline did not start: %v", err)
		}
		all = append(all, in)
		stream, err := in.client.openStream(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for ev := range stream {
				a := ev.item.Alert
				in.mu.Lock()
				in.items[a.VehicleID] = append(in.items[a.VehicleID], fmt.Sprintf("%s %s v%d %s", a.ID, ev.item.Change, a.Version, a.Handling.State))
				in.mu.Unlock()
			}
		}()
	}
	env := &testEnv{t: t, cfg: cfg, broker: addr, conn: openConn(t, cfg)}
	for _, in := range all {
		env.regs = append(env.regs, in.reg)
	}
	env.waitBalanced(len(cfg.Kafka.InputTopics()), partitions)

	// Eight registered trucks drive along a road, then a camera sees each with its cover open.
	c, err := LoadCity(cfg.City)
	if err != nil {
		t.Fatal(err)
	}
	trucks := c.Vehicles[:8]
	start := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	drive := func(from, to int) []kafka.Message {
		var msgs []kafka.Message
		for i, v := range trucks {
			for s := from; s <= to; s += 10 {
				xy := c.Proj.Forward(c.Origin)
				xy[0] += float64(500*i) + float64(s)*5
				xy[1] -= 400
				ll := c.Proj.Inverse(xy)
				msgs = append(msgs, fixMsg(cfg.Kafka.Topics.GPS, v.Plate, start.Add(time.Duration(s)*time.Second), ll[1], ll[0], 18))
			}
		}
		return msgs
	}
	produce(t, addr, drive(0, 60)...)
	camera := func(kind string, at time.Duration) []kafka.Message {
		var msgs []kafka.Message
		for i, v := range trucks {
			msgs = append(msgs, kafka.Message{Topic: cfg.Kafka.Topics.Events, Key: []byte(v.Plate), Value: fmt.Appendf(nil,
				`{"event_id":"cam-%s-%d","vehicle_id":%q,"ts":%d,"kind":%q,"source":"cam-road-7"}`, kind, i, v.Plate, start.Add(at).UnixMilli(), kind)})
		}
		return msgs
	}
	events := camera("cover_open", 70*time.Second)
	if misrouted(events, partitions) == 0 {
		t.Fatal("no truck's events land elsewhere than its fixes: the test shows no re-keying")
	}
	produceWith(t, addr, kafka.CRC32Balancer{Consistent: true}, events...)

	// answers is what an instance answers for every truck, and its open alert list.
	answers := func(in *instance) string {
		var b strings.Builder
		for _, v := range trucks {
			var rep api.VehicleReport
			in.client.getJSON(api.RoleSquad, "/api/v1/vehicles/"+url.PathEscape(v.Plate), 200, &rep)
			fmt.Fprintf(&b, "%s risk %d %s %q", v.Plate, rep.Risk.Score, rep.Risk.Level, rep.Risk.Reasons())
			if p := rep.Position; p != nil {
				fmt.Fprintf(&b, " at %.6f,%.6f %d", p.Lat, p.Lon, p.TimeMs)
			}
			for _, a := range rep.OpenAlerts {
				fmt.Fprintf(&b, " open %s v%d %s", a.ID, a.Version, a.Handling.State)
			}
			fmt.Fprintf(&b, " violations %v\n", rep.Violations30d)
		}
		var page api.AlertsPage
		in.client.getJSON(api.RoleSupervisor, "/api/v1/alerts?limit=1000", 200, &page)
		for _, a := range page.Alerts {
			fmt.Fprintf(&b, "alert %s %s v%d %s %s\n", a.ID, a.VehicleID, a.Version, a.Rule, a.Handling.State)
		}
		return b.String()
	}
	streams := func(in *instance) map[string][]string {
		in.mu.Lock()
		defer in.mu.Unlock()
		out := map[string][]string{}
		for k, v := range in.items {
			out[k] = slices.Clone(v)
		}
		return out
	}
	// same waits until the running instances agree on everything, wanting the condition of the
	// first instance's answers, and fails with the difference if they never do.
	same := func(what string, want func(answers string) bool) string {
		t.Helper()
		var first, diff string
		deadline := time.Now().Add(2 * time.Minute)
		for {
			var running []*instance
			for _, in := range all {
				if !in.stopped {
					running = append(running, in)
				}
			}
			first, diff = answers(running[0]), ""
			s0 := streams(running[0])
			for i, in := range running[1:] {
				if a := answers(in); a != first {
					diff = fmt.Sprintf("instance %d answers\n%s\ninstance %d answers\n%s", 0, first, i+1, a)
					break
				}
				if s := streams(in); fmt.Sprint(s) != fmt.Sprint(s0) {
					diff = fmt.Sprintf("instance %d streamed\n%v\ninstance %d streamed\n%v", 0, s0, i+1, s)
					break
				}
			}
			if diff == "" && want(first) {
				return first
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the instances do not agree within 2 minutes:\n%s", what, diff)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	got := same("every truck's cover_open alert", func(a string) bool { return strings.Count(a, "cover_open") >= len(trucks) })
	t.Logf("every instance answers, for every truck:\n%s", got)

	// A supervisor on instance 0 dismisses the first truck's alert: instances 1 and 2 see it
	// dismissed, off the open list, and stream the handling.
	var rep api.VehicleReport
	all[0].client.getJSON(api.RoleSquad, "/api/v1/vehicles/"+url.PathEscape(trucks[0].Plate), 200, &rep)
	if len(rep.OpenAlerts) == 0 {
		t.Fatalf("%s has no open alert to dismiss", trucks[0].Plate)
	}
	dismissed := rep.OpenAlerts[0].ID
	if status, b := all[0].client.do(api.RoleSupervisor, "POST", "/api/v1/alerts/"+dismissed+"/actions", `{"action":"dismiss","reason":"a camera fault"}`); status != 200 {
		t.Fatalf("dismiss on instance 0: status %d: %s", status, b)
	}
	same("the dismissal seen everywhere", func(a string) bool { return !strings.Contains(a, "alert "+dismissed) })
	for i, in := range all {
		var v api.AlertView
		in.client.getJSON(api.RoleSupervisor, "/api/v1/alerts/"+dismissed, 200, &v)
		if v.Handling.State != api.StateDismissed || len(v.Handling.Actions) != 1 || v.Handling.Actions[0].Reason != "a camera fault" {
			t.Errorf("instance %d: alert %s handling %+v, want dismissed once for a camera fault", i, dismissed, v.Handling)
		}
	}
	env.waitFor("the dismissal journaled", time.Minute, func() bool {
		return env.count("SELECT count() FROM alert_feed WHERE alert_id = ? AND change = 'handling'", dismissed) > 0
	})

	// Instance 0 stops; its partitions move to the other two, which go on answering alike as
	// the trucks drive on.
	all[0].cancel()
	if err := <-all[0].done; err != nil {
		t.Fatalf("instance 0 stopped with an error: %v", err)
	}
	all[0].stopped = true
	before := streams(all[0])
	env.regs = []*prometheus.Registry{all[1].reg, all[2].reg}
	env.waitBalanced(len(cfg.Kafka.InputTopics()), partitions)
	produce(t, addr, drive(70, 120)...)
	lastMs := start.Add(120 * time.Second).UnixMilli()
	got = same("the trucks' new positions after the takeover", func(a string) bool {
		return strings.Count(a, fmt.Sprintf(" %d ", lastMs)) == len(trucks)
	})
	t.Logf("after instance 0 stopped, instances 1 and 2 answer:\n%s", got)
	produceWith(t, addr, kafka.CRC32Balancer{Consistent: true}, camera("spillage", 130*time.Second)...)
	same("every truck's spillage alert after the takeover", func(a string) bool { return strings.Count(a, " spillage ") >= len(trucks) })
	env.waitFor("every spillage alert stored", time.Minute, func() bool {
		return env.count("SELECT uniqExact(vehicle_id) FROM alerts WHERE rule = 'spillage'") >= uint64(len(trucks))
	})
	placed := env.alertPlaces("spillage")
	last := drive(120, 120) // each truck's last fix
	for i, v := range trucks {
		var fix struct{ Lat, Lon float64 }
		if err := json.Unmarshal(last[i].Value, &fix); err != nil {
			t.Fatal(err)
		}
		if at, ok := placed[v.Plate]; !ok || at.n != 1 || math.Abs(at.lat-fix.Lat) > 1e-6 || math.Abs(at.lon-fix.Lon) > 1e-6 {
			t.Errorf("%s: %d spillage alerts at %.6f,%.6f (stored: %t), want 1 at its last fix %.6f,%.6f", v.Plate, at.n, at.lat, at.lon, ok, fix.Lat, fix.Lon)
		}
	}
	after := streams(all[1])
	for plate, items := range before {
		if len(after[plate]) < len(items) || !slices.Equal(after[plate][:len(items)], items) {
			t.Errorf("%s: instance 0 streamed %v before it stopped; instance 1 streamed %v", plate, items, after[plate])
		}
	}
	if n := env.count("SELECT count() FROM alert_feed FINAL WHERE alert_id = ? AND change = 'handling'", dismissed); n != 1 {
		t.Errorf("the dismissal is journaled %d times, want once (by the instance it was made on)", n)
	}

	// Freshness: how far behind the records' production each view applied them.
	var lags []*dto.Histogram
	for _, in := range all {
		if h := histogram(t, in.reg, "muckwatch_api_view_lag_seconds"); h != nil {
			lags = append(lags, h)
		}
	}
	p50, p99, n := quantiles(lags)
	if n == 0 {
		t.Fatal("no view lag observed")
	}
	t.Logf("view lag over %d records applied after catching up, all instances: p50 %.1f ms, p99 %.1f ms", n, p50*1000, p99*1000)
}

// histogram reads an unlabelled histogram from reg; nil when it has none.
func histogram(t testing.TB, reg *prometheus.Registry, name string) *dto.Histogram {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	return nil
}

// quantiles estimates the median and the 99th percentile of histograms summed, interpolating
// within a bucket as Prometheus' histogram_quantile does.
func quantiles(hs []*dto.Histogram) (p50, p99 float64, n uint64) {
	var bounds []float64
	counts := map[float64]uint64{}
	for _, h := range hs {
		n += h.GetSampleCount()
		for _, b := range h.GetBucket() {
			if _, ok := counts[b.GetUpperBound()]; !ok {
				bounds = append(bounds, b.GetUpperBound())
			}
			counts[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	slices.Sort(bounds)
	q := func(q float64) float64 {
		rank := q * float64(n)
		lower, below := 0.0, uint64(0)
		for _, ub := range bounds {
			if float64(counts[ub]) >= rank {
				if counts[ub] == below {
					return ub
				}
				return lower + (ub-lower)*(rank-float64(below))/float64(counts[ub]-below)
			}
			lower, below = ub, counts[ub]
		}
		return math.Inf(1)
	}
	return q(0.5), q(0.99), n
}
