package pipeline

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/muckwatch/muckwatch/city"
	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/ingest"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/sim"
	"github.com/muckwatch/muckwatch/sink"
)

// TestPipelineMatchesEngine feeds a simulated street day to the pipeline's stages (their event
// clock, internal/eventtime, read against a wall clock the test moves; the announcer and the
// writer, over sinks that keep what they are given) the way the consumer hands it over: the
// records spread by key over the input partitions, read in batches of random sizes that take
// random runs of random partitions, the partitions advancing at different speeds, fixes and
// camera events on topics of their own, a backlog read first and then live traffic as it is
// produced, idle turns while nothing arrives. The same records fed directly to an engine, in
// event-time order with every decision free to be taken as soon as its time comes, must give the
// same alerts: the same ids, and for each the same changes in the same order.
//
// Each day runs twice through the stages: uninterrupted, and with a restart at a random point
// (everything read is checkpointed and written, the stages stop, and new ones, with a new engine,
// take every partition over, restoring the detector state from the checkpoints written): the
// restored state must carry on exactly as the uninterrupted engine does.
//
// The day carries trips (trip_unclosed decisions wait for the truck to stop somewhere), silences
// (signal_lost, and the episodes a silence ends), stops (dwell) and long hauls off the city's map
// (sim.Options.AwayRate; their trips time out): the time-driven decisions
// that depend on how far event time has got. Fixes sent out of order are left out: a late fix
// that comes in the same batch as the one that overtook it is put back in its place, one in a
// later batch is skipped (docs/development.md), so batching decides them by design.
func TestPipelineMatchesEngine(t *testing.T) {
	c, err := LoadCity("../configs/cities/shenzhen")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 7, 0, 0, 0, time.UTC)
	type day struct {
		seed     uint64
		interval time.Duration
		duration time.Duration
		speed    bool
	}
	days := []day{
		{1, 5 * time.Second, 3 * time.Hour, false},
		{2, 30 * time.Second, 4 * time.Hour, false},
		{3, time.Second, 90 * time.Minute, false},
		{4, 5 * time.Second, 3 * time.Hour, true},
	}
	// EQUIV_SEEDS=N runs seeds up to N: more days, other batchings
	more, _ := strconv.Atoi(os.Getenv("EQUIV_SEEDS"))
	base := slices.Clone(days)
	for seed := len(base) + 1; seed <= more; seed++ {
		d := base[seed%len(base)]
		d.seed = uint64(seed)
		days = append(days, d)
	}
	for _, tc := range days {
		t.Run(fmt.Sprintf("seed %d %s", tc.seed, tc.interval), func(t *testing.T) {
			o := sim.Street(tc.seed, start, tc.duration, tc.interval, 30, tc.speed)
			o.OutOfOrderRate = 0
			o.ViolationRate = 0.8
			o.AwayRate = 0.1 // some trucks leave the map: far fixes, hauls that time out
			recs := simulate(t, c, o)
			cfg, err := LoadConfig("")
			if err != nil {
				t.Fatal(err)
			}
			want := engineAlone(t, c, cfg.Detectors, recs)
			// the day must have had the decisions this test is about
			for _, r := range []detectors.Rule{detectors.RuleTripUnclosed, detectors.RuleSignalLost, detectors.RuleDwell, detectors.RuleSpeeding} {
				if countRule(want, r) == 0 {
					t.Errorf("the simulated day raised no %s alert: the test does not cover it", r)
				}
			}
			for _, restart := range []bool{false, true} {
				name, stream := "uninterrupted", uint64(77)
				if restart {
					name, stream = "restarted", 78
				}
				t.Run(name, func(t *testing.T) {
					got := throughStages(t, c, cfg, recs, rand.New(rand.NewPCG(tc.seed, stream)), restart)
					compareAlerts(t, got, want)
				})
			}
		})
	}
}

// equivRecord is a simulated record decoded, with its partition.
type equivRecord struct {
	fix   *record.Fix
	event *record.Event
	shard record.Shard
	at    time.Time // device time
}

const equivGPSPartitions, equivEventPartitions = 5, 3

// simulate runs the simulator and decodes its fixes and camera events as the consumer would,
// each on the partition its key hashes to.
func simulate(t *testing.T, c *city.City, o sim.Options) []equivRecord {
	t.Helper()
	s, err := sim.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	topics := Config{}.Kafka.WithDefaults().Topics
	dec := record.NewDecoder(record.DecodeConfig{MaxAge: 365 * 24 * time.Hour}, city.NormalizePlate)
	var recs []equivRecord
	if _, err := s.Run(sim.EmitterFunc(func(r sim.Record) error {
		h := fnv.New32a()
		h.Write([]byte(r.Key))
		switch r.Topic {
		case "gps":
			f := new(record.Fix)
			if err := dec.DecodeFix(r.Value, r.Time, f); err != nil {
				return fmt.Errorf("simulated fix rejected: %w", err)
			}
			recs = append(recs, equivRecord{fix: f, shard: record.Shard{Topic: topics.GPS, Partition: int32(h.Sum32() % equivGPSPartitions)}, at: f.Time})
		case "events":
			e := new(record.Event)
			if err := dec.DecodeEvent(r.Value, r.Time, e); err != nil {
				return fmt.Errorf("simulated event rejected: %w", err)
			}
			recs = append(recs, equivRecord{event: e, shard: record.Shard{Topic: topics.Events, Partition: int32(h.Sum32() % equivEventPartitions)}, at: e.Time})
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	// offsets, as the broker numbers each partition's records
	next := map[record.Shard]int64{}
	for i := range recs {
		src := record.Source{Shard: recs[i].shard, Offset: next[recs[i].shard]}
		next[recs[i].shard]++
		if recs[i].fix != nil {
			recs[i].fix.Src = src
		} else {
			recs[i].event.Src = src
		}
	}
	return recs
}

// equivTail is how long after the last record both runs let event time go on: every silence,
// escalation and pending trip decision of the day is taken.
const equivTail = 3 * time.Hour

// engineAlone feeds every record to an engine directly, in one batch in event-time order, with
// event time known to be complete: each time-driven decision is taken as soon as its time comes.
func engineAlone(t *testing.T, c *city.City, cfg detectors.Config, recs []equivRecord) []detectors.Change {
	t.Helper()
	eng, err := detectors.NewEngine(cfg, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fixes []record.Fix
	var events []record.Event
	var newest time.Time
	for _, r := range recs {
		if r.fix != nil {
			fixes = append(fixes, *r.fix)
		} else {
			events = append(events, *r.event)
		}
		if r.at.After(newest) {
			newest = r.at
		}
	}
	eng.Advance(newest.Add(equivTail))
	eng.ProcessBatch(fixes, events)
	eng.Tick()
	return slices.Clone(eng.Changes())
}

// equivSinks stand for ClickHouse and Kafka: they keep the alert changes announced, in order,
// and the newest checkpoint of every vehicle (the state topic, compacted), and tell when the
// batch carrying a sentinel officer is written.
type equivSinks struct {
	mu        sync.Mutex
	changes   []detectors.Change
	state     map[string][]byte // checkpoints by key
	sentinels map[string]chan struct{}
}

func (s *equivSinks) Write(ctx context.Context, b *sink.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range b.Officers {
		if ch, ok := s.sentinels[o.OfficerID]; ok {
			close(ch)
			delete(s.sentinels, o.OfficerID)
		}
	}
	return nil
}

func (s *equivSinks) WriteState(ctx context.Context, keys, values [][]byte, partitions []int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range keys {
		s.state[string(keys[i])] = slices.Clone(values[i])
	}
	return nil
}

// readState is the stages' stateReader over the checkpoints kept (one partition for all: the
// test's instance owns every partition).
func (s *equivSinks) readState(ctx context.Context, inputs []int32, f func(key, value []byte) error) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.state {
		if err := f([]byte(k), v); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// sentinel returns a batch that carries only the sentinel officer name, and a channel closed once
// it is written, with every batch handed in before it.
func (s *equivSinks) sentinel(name string, at time.Time) (*ingest.Batch, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{})
	s.sentinels[name] = ch
	return &ingest.Batch{Officers: []record.OfficerPosition{{OfficerID: name, Time: at}}}, ch
}

func (s *equivSinks) WriteMisrouted(ctx context.Context, recs []record.Misrouted) error { return nil }

func (s *equivSinks) FeedWrite(changes []detectors.Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changes = append(s.changes, changes...)
}

// equivFeed is the Kafka side of equivSinks (feedWriter's Write clashes with historyWriter's).
type equivFeed struct{ *equivSinks }

func (f equivFeed) Write(ctx context.Context, changes []detectors.Change, rejects []record.Reject) error {
	f.FeedWrite(changes)
	return nil
}

// equivPartition is one input partition as the test's consumer reads it.
type equivPartition struct {
	shard record.Shard
	recs  []equivRecord // in the order produced (offsets)
	// prodAt is when each record is produced: lag after its device time, after the one before
	prodAt []time.Time
	read   int           // records read
	lag    time.Duration // how long after its device time a record is produced
	speed  int           // the most records a batch takes from it
	// waiting is when it last had records to read and was passed over (zero: not waiting)
	waiting time.Time
}

// produced is how many of p's records are in the broker at wall time wall.
func (p *equivPartition) produced(wall time.Time) int {
	n, found := slices.BinarySearchFunc(p.prodAt, wall, time.Time.Compare)
	for found && n < len(p.prodAt) && p.prodAt[n].Equal(wall) {
		n++
	}
	return n
}

// throughStages feeds the records to the pipeline's stages as a consumer would and returns the
// alert changes they announced. With restart the instance restarts once, at a random point, as
// at the end of a consumer generation (a rebalance, a stop): everything read is checkpointed and
// written (and so committed), the stages stop, and new ones, with a new engine, take every
// partition over, restoring the detector state from the checkpoints written, and read on from
// there.
func throughStages(t *testing.T, c *city.City, cfg Config, recs []equivRecord, rng *rand.Rand, restart bool) []detectors.Change {
	t.Helper()
	sinks := &equivSinks{state: map[string][]byte{}, sentinels: map[string]chan struct{}{}}
	idle := cfg.Pipeline.IdlePartition
	if idle == 0 {
		idle = 5 * time.Second
	}
	var wall time.Time
	// start runs new stages, with a new engine, until stop is called.
	start := func() (p *stages, stop func()) {
		eng, err := detectors.NewEngine(cfg.Detectors, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p = newStages(cfg.Pipeline, eng, sinks, equivFeed{sinks}, slog.New(slog.DiscardHandler), nil)
		p.topics = cfg.Kafka.WithDefaults().Topics
		p.now = func() time.Time { return wall }
		p.state = sinks.readState
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p.Run(ctx)
		}()
		return p, func() { cancel(); <-done }
	}
	p, stop := start()
	defer func() { stop() }()
	ctx := context.Background()
	restartAt := len(recs)/5 + rng.IntN(len(recs)*3/5) // records read
	if !restart {
		restartAt = 0
	}

	// The partitions, each produced a random lag (under the idle time: a consumer fetches every
	// partition with records at least that often) after its records' device times.
	var parts []*equivPartition
	index := map[record.Shard]*equivPartition{}
	first, last := recs[0].at, recs[0].at
	for _, r := range recs {
		q := index[r.shard]
		if q == nil {
			q = &equivPartition{shard: r.shard, lag: time.Duration(rng.Int64N(int64(idle / 2))), speed: 1 + rng.IntN(200)}
			index[r.shard] = q
			parts = append(parts, q)
		}
		at := r.at.Add(q.lag)
		if len(q.prodAt) > 0 {
			at = maxTime(at, q.prodAt[len(q.prodAt)-1])
		}
		q.recs, q.prodAt = append(q.recs, r), append(q.prodAt, at)
		first, last = minTime(first, r.at), maxTime(last, r.at)
	}
	slices.SortFunc(parts, func(a, b *equivPartition) int {
		return strings.Compare(a.shard.Topic+fmt.Sprint(a.shard.Partition), b.shard.Topic+fmt.Sprint(b.shard.Partition))
	})
	// Start with a backlog of a random part of the day (none: live from the start; all: a replay).
	wall = first.Add(time.Duration(rng.Float64() * float64(last.Sub(first)+time.Hour)))
	// assign gives p every partition, as a consumer's first generation does
	assign := func(p *stages, generation int32) {
		r := ingest.Rebalance{Generation: generation}
		for _, q := range parts {
			tp := ingest.TopicPartition{Topic: q.shard.Topic, Partition: q.shard.Partition}
			r.Owned = append(r.Owned, tp)
			r.Added = append(r.Added, tp)
			if q.read == q.produced(wall) {
				r.CaughtUp = append(r.CaughtUp, tp)
			}
		}
		if err := p.Rebalanced(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	assign(p, 1)
	var lastRead time.Time // wall time of the last batch with records
	batches, idles, read := 0, 0, 0
	for {
		if restartAt > 0 && read >= restartAt {
			// a restart: everything read is checkpointed and written (and so committed), as at
			// the end of a generation, then new stages take over
			b, verdict := ingest.NewBatch()
			if err := p.Checkpoint(ctx, b); err != nil {
				t.Fatal(err)
			}
			v := <-verdict
			if v.Later != nil { // written; committed once its checkpoints are
				v.Err = <-v.Later
			}
			if v.Err != nil || v.Held {
				t.Fatalf("the checkpoint before the restart was not committed: %+v", v)
			}
			stop()
			p, stop = start()
			assign(p, 2)
			restartAt = 0
			t.Logf("restarted after %d records, %d checkpoints", read, len(sinks.state))
		}
		var ready []*equivPartition
		left := false
		for _, q := range parts {
			if q.read < len(q.recs) {
				left = true
			}
			if q.read < q.produced(wall) {
				ready = append(ready, q)
			}
		}
		if !left {
			break
		}
		if len(ready) == 0 {
			wall = wall.Add(time.Second) // the consumer's idle turn, about once a second
			if err := p.Idle(ctx, &ingest.Batch{}); err != nil {
				t.Fatal(err)
			}
			idles++
			continue
		}
		// A batch takes runs of a random choice of the partitions with records; a partition
		// passed over for a second is taken (the consumer fetches them all).
		b := &ingest.Batch{Fetched: time.Now()}
		took := false
		for _, q := range ready {
			if rng.IntN(3) != 0 && (q.waiting.IsZero() || wall.Sub(q.waiting) < time.Second) {
				if q.waiting.IsZero() {
					q.waiting = wall
				}
				continue
			}
			q.waiting, took = time.Time{}, true
			produced := q.produced(wall)
			n := min(produced-q.read, 1+rng.IntN(q.speed))
			for _, r := range q.recs[q.read : q.read+n] {
				if r.fix != nil {
					f := *r.fix
					f.Src.Behind = int64(produced - q.read - 1)
					b.Fixes = append(b.Fixes, f)
				} else {
					e := *r.event
					e.Src.Behind = int64(produced - q.read - 1)
					b.Events = append(b.Events, e)
				}
				q.read++
				read++
			}
		}
		if took {
			if err := p.Handle(ctx, b); err != nil {
				t.Fatal(err)
			}
			batches++
			lastRead = wall
		}
		wall = wall.Add(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
	}
	// Nothing more comes: the consumer turns idle, at random steps, until event time is the
	// newest read plus the tail (Watermark: newest + wall since the last read - idle).
	end := lastRead.Add(idle + equivTail)
	for wall.Before(end) {
		wall = minTime(end, wall.Add(time.Duration(rng.Int64N(int64(20*time.Minute)))))
		if err := p.Idle(ctx, &ingest.Batch{}); err != nil {
			t.Fatal(err)
		}
		idles++
	}
	b, written := sinks.sentinel("end", last)
	if err := p.Handle(ctx, b); err != nil {
		t.Fatal(err)
	}
	<-written
	t.Logf("%d records in %d batches and %d idle turns", len(recs), batches, idles)
	sinks.mu.Lock()
	defer sinks.mu.Unlock()
	return slices.Clone(sinks.changes)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// compareAlerts reports every alert whose changes differ between got and want.
func compareAlerts(t *testing.T, got, want []detectors.Change) {
	t.Helper()
	g, w := byAlert(got), byAlert(want)
	t.Logf("%d alerts, %d changes", len(w), len(want))
	diffs := 0
	for id, wc := range w {
		gc := g[id]
		if !slices.Equal(gc, wc) {
			if diffs++; diffs <= 10 {
				t.Errorf("alert %s differs\n pipeline: %s\n   engine: %s", id, strings.Join(gc, "\n           "), strings.Join(wc, "\n           "))
			}
		}
	}
	for id, gc := range g {
		if _, ok := w[id]; !ok {
			if diffs++; diffs <= 10 {
				t.Errorf("alert %s only from the pipeline: %s", id, strings.Join(gc, "\n           "))
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d of %d alerts differ", diffs, len(w))
	}
}

// byAlert renders each alert's changes, in order.
func byAlert(changes []detectors.Change) map[string][]string {
	out := map[string][]string{}
	for _, ch := range changes {
		a := ch.Alert
		out[a.ID] = append(out[a.ID], fmt.Sprintf("%s v%d %s %s %s %s at %s start %s end %s (%.6f,%.6f) value %.2f limit %.2f %q updated %s",
			ch.Kind, a.Version, a.Rule, a.Severity, a.Status, a.VehicleID, a.Place, a.Start.Format(time.TimeOnly), a.End.Format(time.TimeOnly),
			a.Lat, a.Lon, a.Value, a.Limit, a.Evidence, a.Updated.Format("15:04:05.000")))
	}
	return out
}

func countRule(changes []detectors.Change, r detectors.Rule) int {
	n := 0
	for _, ch := range changes {
		if ch.Alert.Rule == r && ch.Kind == detectors.ChangeOpened {
			n++
		}
	}
	return n
}
