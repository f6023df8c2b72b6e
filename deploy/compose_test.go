package deploy

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/muckwatch/muckwatch/pipeline"
)

// loadCompose loads compose.yaml through compose-go, the loader of `docker compose`: validated
// against the Compose Specification's schema, anchors and merges resolved, variables
// interpolated (as `docker compose config` does, without a container engine), with the profiles
// given.
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithEnv([]string{"MUCKWATCH_CLICKHOUSE_PASSWORD=pw", "MUCKWATCH_API_TOKENS=", "GRAFANA_ADMIN_PASSWORD=pw"}),
		cli.WithProfiles(profiles), cli.WithConsistency(true), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return p
}

// TestComposeTrialStack: the compose file is a valid Compose file and the full trial stack the
// operations guide promises: Kafka in KRaft mode, ClickHouse, three muckwatch instances of one
// group — each its own host name and host ports, all on the same Kafka, ClickHouse and config
// (a shared API view) — Prometheus scraping all three with the alert rules, and Grafana with the
// dashboard; every file it mounts exists.
func TestComposeTrialStack(t *testing.T) {
	p := loadCompose(t, "demo")
	if p.Name != "muckwatch" {
		t.Errorf("project name %q, want muckwatch", p.Name)
	}
	svc := func(name string) types.ServiceConfig {
		t.Helper()
		s, err := p.GetService(name)
		if err != nil {
			t.Fatalf("compose.yaml: %v", err)
		}
		return s
	}
	if env := svc("kafka").Environment["KAFKA_PROCESS_ROLES"]; env == nil || *env != "broker,controller" {
		t.Errorf("kafka: KAFKA_PROCESS_ROLES %v, want broker,controller (KRaft, no ZooKeeper)", env)
	}
	// the instances
	var instances []types.ServiceConfig
	for _, s := range p.Services {
		if s.Image == "muckwatch:local" && s.Build != nil {
			instances = append(instances, s)
		}
	}
	slices.SortFunc(instances, func(a, b types.ServiceConfig) int { return strings.Compare(a.Name, b.Name) })
	if len(instances) != 3 {
		t.Fatalf("compose.yaml runs %d muckwatch instances, want 3", len(instances))
	}
	hosts, ports := map[string]bool{}, map[string]string{}
	var config string
	for _, s := range instances {
		if hosts[s.Hostname] || s.Hostname == "" {
			t.Errorf("%s: host name %q is empty or another instance's", s.Name, s.Hostname)
		}
		hosts[s.Hostname] = true
		var targets []string
		for _, pt := range s.Ports {
			key := pt.HostIP + ":" + pt.Published
			if other, dup := ports[key]; dup {
				t.Errorf("%s publishes %s, as %s does", s.Name, key, other)
			}
			ports[key] = s.Name
			if pt.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes port %s on %q, want the host's loopback only", s.Name, pt.Published, pt.HostIP)
			}
			targets = append(targets, strconv.Itoa(int(pt.Target)))
		}
		if slices.Sort(targets); !slices.Equal(targets, []string{"8080", "9464"}) {
			t.Errorf("%s publishes container ports %v, want the API's 8080 and the metrics' 9464", s.Name, targets)
		}
		var mounted string
		for _, v := range s.Volumes {
			if v.Target == "/etc/muckwatch/muckwatch.yaml" {
				mounted = v.Source
			}
		}
		if config == "" {
			config = mounted
		}
		if mounted == "" || mounted != config {
			t.Errorf("%s mounts config %q, want the same file as the others (%q)", s.Name, mounted, config)
		}
		for _, dep := range []string{"kafka-topics", "clickhouse"} {
			if _, ok := s.DependsOn[dep]; !ok {
				t.Errorf("%s does not wait for %s", s.Name, dep)
			}
		}
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: read_only %v, cap_drop %v; want a read-only root and no capabilities", s.Name, s.ReadOnly, s.CapDrop)
		}
	}
	// their config: one group, the compose file's Kafka and ClickHouse, a shared view
	cfg, err := pipeline.LoadConfig("compose/muckwatch.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Kafka, cfg.API = cfg.Kafka.WithDefaults(), cfg.API.WithDefaults()
	if cfg.Kafka.GroupID == "" || !slices.Equal(cfg.Kafka.Brokers, []string{"kafka:9092"}) || !slices.Equal(cfg.ClickHouse.Addr, []string{"clickhouse:9000"}) || cfg.API.View != "shared" {
		t.Errorf("compose/muckwatch.yaml: group %q, brokers %v, ClickHouse %v, api.view %q; want one group on kafka:9092 and clickhouse:9000, view shared",
			cfg.Kafka.GroupID, cfg.Kafka.Brokers, cfg.ClickHouse.Addr, cfg.API.View)
	}
	// the topics: the alerts topic in one partition (exact SSE resume on any instance)
	topics := strings.Join(svc("kafka-topics").Command, "\n")
	for _, want := range []string{"t muck.gps\n", "t muck.events\n", "t muck.alerts --partitions 1\n", "t muck.live --config cleanup.policy=compact"} {
		if !strings.Contains(topics, want) {
			t.Errorf("kafka-topics does not run %q", strings.TrimSpace(want))
		}
	}
	// Prometheus scrapes the three with the rules; Grafana provisions the dashboard
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "compose/prometheus.yml", &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "muckwatch" {
			for _, st := range sc.StaticConfigs {
				targets = append(targets, st.Targets...)
			}
		}
	}
	var want []string
	for _, s := range instances {
		want = append(want, s.Hostname+":9464")
	}
	if slices.Sort(targets); !slices.Equal(targets, want) {
		t.Errorf("prometheus scrapes %v under job muckwatch, want %v", targets, want)
	}
	mounts := map[string]string{} // target → source, of prometheus and grafana
	for _, name := range []string{"prometheus", "grafana"} {
		for _, v := range svc(name).Volumes {
			if v.Type == types.VolumeTypeBind {
				mounts[v.Target] = v.Source
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s, which is missing: %v", name, v.Source, err)
				}
			}
		}
	}
	if len(prom.RuleFiles) != 1 || !strings.HasSuffix(mounts[prom.RuleFiles[0]], "deploy/prometheus/muckwatch-rules.yml") {
		t.Errorf("prometheus loads rules %v, mounted from %q; want deploy/prometheus/muckwatch-rules.yml", prom.RuleFiles, mounts[firstOr(prom.RuleFiles)])
	}
	var dash struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "compose/grafana-dashboards.yaml", &dash)
	if len(dash.Providers) != 1 || !strings.HasSuffix(mounts[dash.Providers[0].Options.Path], "deploy/grafana") {
		t.Errorf("grafana provisions dashboards from %+v, mounted from %v; want deploy/grafana", dash.Providers, mounts)
	}
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
