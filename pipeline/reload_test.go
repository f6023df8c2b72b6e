package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCityReloadKeepsGoodData breaks the running pipeline's city folder (a broken GeoJSON file):
// the pipeline keeps running on the reference data in force; a good change is then picked up.
func TestCityReloadKeepsGoodData(t *testing.T) {
	dir := t.TempDir()
	src := "../configs/cities/shenzhen"
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := startEnv(t, func(c *Config) {
		c.City = dir
		c.CityReloadInterval = 100 * time.Millisecond
		c.API.Listen = ""
	})
	before := env.started.Engine.City()
	zones := filepath.Join(dir, "zones.geojson")
	good, err := os.ReadFile(zones)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zones, good[:len(good)/2], 0o600); err != nil { // cut off mid-feature
		t.Fatal(err)
	}
	env.waitFor("the failed reload", 30*time.Second, func() bool {
		return scrape(t, env.started.MetricsURL, `muckwatch_city_reloads_total{result="failed"}`) >= 1
	})
	// the pipeline still takes fixes in, on the data in force
	now := time.Now()
	produce(t, env.broker, fixMsg(env.cfg.Kafka.Topics.GPS, "粤B00042", now.Add(-time.Minute), 22.55, 114.05, 20),
		fixMsg(env.cfg.Kafka.Topics.GPS, "粤B00042", now.Add(-50*time.Second), 22.55, 114.051, 20))
	env.waitFor("fixes stored while the city folder is broken", 30*time.Second, func() bool {
		return env.count("SELECT count() FROM positions WHERE vehicle_id = '粤B00042'") == 2
	})
	if env.started.Engine.City() != before {
		t.Fatal("a broken city folder replaced the reference data in force")
	}
	// a good change (one zone renamed) is picked up
	fixed := strings.Replace(string(good), `"name": "`, `"name": "(renamed) `, 1)
	if err := os.WriteFile(zones, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for env.started.Engine.City() == before {
		if time.Now().After(deadline) {
			t.Fatal("the repaired city folder was not reloaded")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(env.started.Engine.City().Zones); n != len(before.Zones) {
		t.Errorf("reloaded city has %d zones, want %d", n, len(before.Zones))
	}
}
