package pipeline

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/internal/statetopic"
	"github.com/muckwatch/muckwatch/record"
)

// A state topic shared by two consumer groups (the live pipeline, and a backfill of last month
// with a group of its own): each restores its own checkpoints and leaves the other's alone, so the
// backfill does not start from the live trucks' state and skip their old fixes as out of order.
// Keys of builds before checkpoints were the group's (the plate alone) are the restoring group's.
func TestRestoreOnlyOwnGroupsCheckpoints(t *testing.T) {
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	writer, err := detectors.NewEngine(detectors.Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	shard := record.Shard{Topic: "muck.gps", Partition: 0}
	plates := []string{"粤B00001", "粤B00002", "粤B00003"}
	for i, plate := range plates {
		ll := c.Proj.Inverse(c.Proj.Forward(c.Origin))
		f := record.Fix{VehicleID: plate, Time: time.Date(2026, 12, 1, 8, 0, i, 0, time.UTC), Lat: ll[1], Lon: ll[0], SpeedKmh: 20, HasSpeed: true,
			Src: record.Source{Shard: shard}}
		writer.ProcessFix(&f)
	}
	cps := map[string][]byte{}
	writer.Dirty(nil, func(v string, _ record.Shard, cp []byte) { cps[v] = cp })
	state := []struct{ key, plate string }{
		{string(statetopic.AppendKey(nil, "live", plates[0])), plates[0]},
		{string(statetopic.AppendKey(nil, "backfill-2026-11", plates[1])), plates[1]},
		{plates[2], plates[2]}, // an earlier build's key
		{string(statetopic.AppendKey(nil, "live", "粤B00004")), "粤B00004"},
	}
	cps["粤B00004"] = []byte{6, 0xff, 0xff} // format 6, cut short: refused and counted
	for _, tc := range []struct {
		group string
		want  []string
	}{
		{"live", []string{plates[0], plates[2]}},
		{"backfill-2026-11", []string{plates[1], plates[2]}},
	} {
		engine, err := detectors.NewEngine(detectors.Config{}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := newStages(StagesConfig{}, engine, nil, nil, slog.New(slog.DiscardHandler), nil)
		p.group, p.topics = tc.group, record.Topics{GPS: "muck.gps", Events: "muck.events", Officers: "muck.officers"}
		p.state = func(_ context.Context, _ []int32, f func(key, value []byte) error) (int, error) {
			for _, s := range state {
				if err := f([]byte(s.key), cps[s.plate]); err != nil {
					return 0, err
				}
			}
			return len(state), nil
		}
		tp := ingest.TopicPartition{Topic: "muck.gps", Partition: 0}
		if err := p.Rebalanced(context.Background(), ingest.Rebalance{Generation: 1, Owned: []ingest.TopicPartition{tp}, Added: []ingest.TopicPartition{tp}}); err != nil {
			t.Fatal(err)
		}
		for _, plate := range plates {
			_, restored := engine.Risk(plate)
			if want := plate == tc.want[0] || plate == tc.want[1]; restored != want {
				t.Errorf("group %s: %s restored %v, want %v", tc.group, plate, restored, want)
			}
		}
		refused := 0
		if tc.group == "live" {
			refused = 1
		}
		if got := testutil.ToFloat64(p.metrics.refused); got != float64(refused) {
			t.Errorf("group %s: %v checkpoints counted refused, want %d", tc.group, got, refused)
		}
	}
}
