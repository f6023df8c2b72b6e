package tables

import (
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	if got, want := OfficerPositions.Insert("mw"), "INSERT INTO mw.officer_positions (officer_id, ts, ts_ms, lat, lon, available, topic, kafka_partition, kafka_offset, ingested_at)"; got != want {
		t.Errorf("Insert = %q, want %q", got, want)
	}
	if got := Alerts.List("id", "start_ms"); got != "id, start_ms" {
		t.Errorf("List = %q", got)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), `alerts has no column "start"`) {
				t.Errorf("Col of a missing column: %v, want a panic naming it", r)
			}
		}()
		Alerts.Col("start")
	}()
	seen := map[string]bool{}
	for _, tbl := range All() {
		if seen[tbl.Name] {
			t.Errorf("table %s listed twice", tbl.Name)
		}
		seen[tbl.Name] = true
		cols := map[string]bool{}
		for _, c := range tbl.Columns {
			if cols[c.Name] || c.Type == "" {
				t.Errorf("%s.%s: listed twice or without a type", tbl.Name, c.Name)
			}
			cols[c.Name] = true
		}
	}
}
