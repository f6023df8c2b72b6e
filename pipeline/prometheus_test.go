package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/muckwatch/muckwatch/internal/chlocal"
)

// rulesFile is the repository's alerting rules, as shipped.
const rulesFile = "../deploy/prometheus/muckwatch-rules.yml"

// A real Prometheus (Debian's package, installed by `make deps`) scrapes a running pipeline every
// second and evaluates the repository's alerting rules, with their hold durations (for:) cut to
// 2s in a copy the test writes (the expressions are the shipped ones): stopping ClickHouse under
// a trickle of fixes makes MuckwatchPipelineHolding fire, and starting it again resolves it, as
// Prometheus' own HTTP API reports.
func TestPrometheusFiresHoldingOnClickHouseOutage(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed (Debian's prometheus package; `make deps` installs it): ", err)
	}
	srv, err := chlocal.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Destroy() }) // after the pipeline has stopped
	env := startEnv(t, func(c *Config) {
		c.ClickHouse.Addr = []string{srv.TCPAddr}
		c.API.Listen = ""
	})
	metrics, err := url.Parse(env.started.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, bin, metrics.Host, shortHolds(t, rulesFile, "2s"))
	prom.waitFor(t, "the pipeline scraped", func() bool { return prom.query(t, `up{job="muckwatch"}`) == "1" })

	// a truck reporting every 100 ms, so that the pipeline keeps writing
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		w := &kafka.Writer{Addr: kafka.TCP(env.broker), Balancer: &kafka.Hash{}, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireAll}
		defer w.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		at := time.Now().Add(-time.Hour)
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			at = at.Add(time.Second)
			_ = w.WriteMessages(ctx, fixMsg(env.cfg.Kafka.Topics.GPS, "粤B12345", at, 22.6, 114.05+float64(i)*1e-5, 20))
		}
	})
	env.waitFor("fixes stored", time.Minute, func() bool { return env.count("SELECT count() FROM positions") > 0 })
	if s := prom.alertState(t, "MuckwatchPipelineHolding"); s != "" {
		t.Fatalf("MuckwatchPipelineHolding is %s before the outage", s)
	}

	down := time.Now()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse stopped in %s", time.Since(down).Round(100*time.Millisecond))
	prom.waitFor(t, "MuckwatchPipelineHolding firing", func() bool { return prom.alertState(t, "MuckwatchPipelineHolding") == "firing" })
	t.Logf("MuckwatchPipelineHolding firing %s after ClickHouse was stopped", time.Since(down).Round(100*time.Millisecond))

	if _, err := chlocal.StartIn(srv.Dir); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	prom.waitFor(t, "MuckwatchPipelineHolding resolved", func() bool { return prom.alertState(t, "MuckwatchPipelineHolding") == "" })
	t.Logf("MuckwatchPipelineHolding resolved %s after ClickHouse was started", time.Since(up).Round(100*time.Millisecond))
}

// shortHolds writes a copy of a rules file with every hold duration (for:) set to hold, for
// Prometheus to evaluate in seconds, and returns its path.
func shortHolds(t *testing.T, path, hold string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(\s+for:\s*)\S+\s*$`)
	if !re.Match(b) {
		t.Fatalf("%s has no hold duration (for:) to shorten", path)
	}
	out := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(out, re.ReplaceAll(b, []byte("${1}"+hold)), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// prometheusServer is a Prometheus started by a test.
type prometheusServer struct{ base string }

// startPrometheus starts Prometheus scraping target's /metrics every second as job "muckwatch"
// and evaluating rules every second, and waits until it is ready; it is stopped when the test
// ends.
func startPrometheus(t *testing.T, bin, target, rules string) *prometheusServer {
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: muckwatch
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// a free port for its web server: Prometheus does not report one it chose itself
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal("cannot start prometheus: ", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p := &prometheusServer{base: "http://" + addr}
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("prometheus exited: %v\n%s", err, b)
		default:
		}
		if resp, err := testHTTP.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("prometheus not ready within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// get decodes the data of an answer of Prometheus' HTTP API.
func (p *prometheusServer) get(t *testing.T, path string, data any) {
	t.Helper()
	resp, err := testHTTP.Get(p.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &answer); err != nil || answer.Status != "success" {
		t.Fatalf("GET %s: %d %s (%v)", path, resp.StatusCode, b, err)
	}
	if err := json.Unmarshal(answer.Data, data); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, answer.Data)
	}
}

// query is the value of an instant query with one result ("" when it has none).
func (p *prometheusServer) query(t *testing.T, q string) string {
	var data struct {
		Result []struct {
			Value [2]any `json:"value"`
		} `json:"result"`
	}
	p.get(t, "/api/v1/query?query="+url.QueryEscape(q), &data)
	if len(data.Result) != 1 {
		return ""
	}
	s, _ := data.Result[0].Value[1].(string)
	return s
}

// alertState is the state of an alert (pending, firing), "" when it is not active.
func (p *prometheusServer) alertState(t *testing.T, name string) string {
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	p.get(t, "/api/v1/alerts", &data)
	state := ""
	for _, a := range data.Alerts {
		if a.Labels["alertname"] == name && (state == "" || a.State == "firing") {
			state = a.State
		}
	}
	return state
}

// waitFor polls Prometheus until cond holds, failing after two minutes.
func (p *prometheusServer) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			var rules any
			p.get(t, "/api/v1/rules", &rules)
			t.Fatalf("timed out after 2m waiting for %s; the rules: %v", what, rules)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
