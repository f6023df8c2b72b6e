// Package deploy holds what runs muckwatch elsewhere: the Helm chart, the compose file, the Grafana
// dashboard and the Prometheus alert rules. Its tests keep them true to the code: every metric
// they name is one the code registers, and every config they carry parses.
package deploy

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/muckwatch/muckwatch/pipeline"
)

// registration is a metric's constructor options in the Go sources: the kind comes from the
// options' type (CounterOpts, GaugeOpts, HistogramOpts, SummaryOpts), the name from its Name.
var registration = regexp.MustCompile(`(Counter|Gauge|Histogram|Summary)Opts\{\s*Name:\s*"(muckwatch_[a-z0-9_]+)"`)

// registeredMetrics lists the muckwatch metrics the code registers, by name, with their kind.
func registeredMetrics(t *testing.T) map[string]string {
	t.Helper()
	kinds := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range registration.FindAllStringSubmatch(string(src), -1) {
			kinds[m[2]] = m[1]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// a handful always exist; fewer means the pattern no longer matches how metrics are declared
	for _, name := range []string{"muckwatch_pipeline_holding", "muckwatch_ingest_records_total", "muckwatch_detection_latency_seconds", "muckwatch_api_requests_total"} {
		if kinds[name] == "" {
			t.Fatalf("the scan of the Go sources did not find %s: fix registeredMetrics", name)
		}
	}
	return kinds
}

var metricName = regexp.MustCompile(`muckwatch_[a-z0-9_]+`)

// TestMonitoringNamesRealMetrics: the dashboard, the alert rules and their tests name only metrics
// the code registers (a histogram's series by its _bucket, _sum and _count), so that a renamed
// metric cannot leave a panel empty or an alert silent.
func TestMonitoringNamesRealMetrics(t *testing.T) {
	kinds := registeredMetrics(t)
	files := []string{"grafana/muckwatch.json", "prometheus/muckwatch-rules.yml", "prometheus/muckwatch-rules.test.yml"}
	used := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names := metricName.FindAllString(string(data), -1)
		if len(names) == 0 {
			t.Errorf("%s names no muckwatch metric", f)
		}
		for _, name := range names {
			used[name] = true
			if kinds[name] != "" {
				continue
			}
			base, kind := name, ""
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && kinds[b] != "" {
					base, kind = b, kinds[b]
					if suffix == "_bucket" && kind != "Histogram" {
						kind = ""
					}
				}
			}
			if kind != "Histogram" && kind != "Summary" {
				t.Errorf("%s: %s is not a metric the code registers", f, name)
				continue
			}
			used[base] = true
		}
	}
	// what the dashboard leaves out, for whoever adds a metric
	var unused []string
	for name := range kinds {
		if !used[name] {
			unused = append(unused, name)
		}
	}
	slices.Sort(unused)
	t.Logf("%d metrics registered, %d named by the dashboard or the rules; not shown: %v", len(kinds), len(kinds)-len(unused), unused)
}

// TestDashboardShape: the dashboard is JSON Grafana can import: unique panel ids, a query on every
// graph, through the dashboard's data source variable.
func TestDashboardShape(t *testing.T) {
	data, err := os.ReadFile("grafana/muckwatch.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr  string `json:"expr"`
				RefID string `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("grafana/muckwatch.json: %v", err)
	}
	if d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("grafana/muckwatch.json: no uid or no panels")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: %d queries, data source %q", p.Title, len(p.Targets), p.Datasource.UID)
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" || q.RefID == "" {
				t.Errorf("panel %q: a query without expression or refId", p.Title)
			}
			if strings.Count(q.Expr, "(") != strings.Count(q.Expr, ")") || strings.Count(q.Expr, "{") != strings.Count(q.Expr, "}") {
				t.Errorf("panel %q: unbalanced query %s", p.Title, q.Expr)
			}
		}
	}
}

// TestDeployConfigsParse: the configs the compose file and the Helm chart carry parse through the
// real parser, and every environment variable the chart's config names is filled from its Secret.
func TestDeployConfigsParse(t *testing.T) {
	if _, err := pipeline.LoadConfig("compose/muckwatch.yaml"); err != nil {
		t.Error(err)
	}
	data, err := os.ReadFile("helm/muckwatch/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config map[string]any `yaml:"config"`
		Secret struct {
			Env map[string]string `yaml:"env"`
		} `yaml:"secret"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatalf("helm values: %v", err)
	}
	cfgYAML, err := yaml.Marshal(values.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pipeline.ParseConfig("helm/muckwatch/values.yaml config", cfgYAML)
	if err != nil {
		t.Fatal(err)
	}
	for field, env := range map[string]string{
		"clickhouse.password_env":   cfg.ClickHouse.PasswordEnv,
		"api.tokens_env":            cfg.API.TokensEnv,
		"kafka.sasl.password_env":   cfg.Kafka.Security.SASL.PasswordEnv,
		"api.webhook.secret_env":    cfg.API.Webhook.SecretEnv,
		"outputs.sasl.password_env": cfg.Outputs.Security.SASL.PasswordEnv,
	} {
		if env != "" && values.Secret.Env[env] == "" {
			t.Errorf("helm values: %s names %s, which secret.env does not fill", field, env)
		}
	}
	if cfg.Metrics.Listen == "" || strings.HasPrefix(cfg.Metrics.Listen, "127.") || strings.HasPrefix(cfg.API.Listen, "127.") {
		t.Errorf("helm values: the API (%q) and metrics (%q) must listen beyond the pod's loopback", cfg.API.Listen, cfg.Metrics.Listen)
	}
}
