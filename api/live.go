package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// AlertView is an alert as the API shows it: the detectors' latest snapshot of it and the change
// that made it, and the command centre's part (Supervision). Its JSON is the alert's muck.alerts
// message (detectors.Change) followed by Supervision's fields.
type AlertView struct {
	// Change is the alert's last change: the detectors' (opened, escalated, updated, resolved)
	// or the API's (restored, handling, overdue).
	Change detectors.ChangeKind
	detectors.Alert
	Supervision
}

// Supervision is what the API adds to an alert: how the command centre is handling it, who it
// was offered to, whether it is overdue, and when it arrived.
type Supervision struct {
	Handling Handling      `json:"handling"`
	Dispatch *DispatchPlan `json:"dispatch,omitempty"`
	Overdue  bool          `json:"overdue"`
	// ReceivedMs is when (wall time) muckwatch first published the alert; acknowledgement
	// deadlines count from here.
	ReceivedMs int64 `json:"received_ms"`
}

// MarshalJSON writes the alert's change message with the supervision's fields after it.
func (v AlertView) MarshalJSON() ([]byte, error) {
	c := detectors.Change{Kind: v.Change, Alert: v.Alert}
	var own bytes.Buffer
	enc := json.NewEncoder(&own)
	enc.SetEscapeHTML(false) // the caller's encoder escapes, or not, the whole
	if err := enc.Encode(v.Supervision); err != nil {
		return nil, fmt.Errorf("cannot encode alert %s: %w", v.ID, err)
	}
	b := c.AppendJSON(make([]byte, 0, c.JSONSize()+own.Len()))
	b[len(b)-1] = ','
	return append(b, bytes.TrimSpace(own.Bytes())[1:]...), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (v *AlertView) UnmarshalJSON(data []byte) error {
	var c detectors.Change
	if err := c.UnmarshalJSON(data); err != nil {
		return err
	}
	var s Supervision
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("cannot read the supervision of alert %s: %w", c.Alert.ID, err)
	}
	*v = AlertView{Change: c.Kind, Alert: c.Alert, Supervision: s}
	return nil
}

// Handling is an alert's place in the command centre's lifecycle.
type Handling struct {
	State   string   `json:"state"` // new, dispatched, acknowledged, resolved, dismissed
	Actions []Action `json:"actions"`
}

// Action is one step a person took on an alert.
type Action struct {
	Action    string `json:"action"` // dispatch, acknowledge, resolve, dismiss
	Actor     string `json:"actor"`
	Role      string `json:"role"`
	OfficerID string `json:"officer_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
	AtMs      int64  `json:"at_ms"`
}

// Handling states.
const (
	StateNew          = "new"
	StateDispatched   = "dispatched"
	StateAcknowledged = "acknowledged"
	StateResolved     = "resolved"
	StateDismissed    = "dismissed"
)

// Feed change kinds beside the detectors' opened, escalated, updated and resolved.
const (
	ChangeHandling = "handling" // a person acted on the alert; alert.handling says how
	ChangeOverdue  = "overdue"  // nobody acknowledged the alert in time
	ChangeRestored = "restored" // an alert still open when the API started, read from ClickHouse
)

// FeedItem is one item of the live alert feed (SSE, webhook).
type FeedItem struct {
	Seq    uint64    `json:"seq"`
	Change string    `json:"change"`
	Alert  AlertView `json:"alert"`
}

// VehiclePosition is a vehicle's last known position.
type VehiclePosition struct {
	Plate    string  `json:"plate"`
	Lat      float64 `json:"lat"`
	Lon      float64 `json:"lon"`
	SpeedKmh float32 `json:"speed_kmh"`
	TimeMs   int64   `json:"time_ms"`
}

// OfficerPosition is an enforcement officer's last known position.
type OfficerPosition struct {
	OfficerID string  `json:"officer_id"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Available bool    `json:"available"`
	TimeMs    int64   `json:"time_ms"`
}

type violation struct {
	id    string
	rule  string
	start time.Time
}

// Live is the API's in-memory view of what is going on: every vehicle's last position, the
// officers' positions, the open alerts with their handling, each vehicle's violations of the
// last 30 days, and the alert feed. The pipeline feeds it (Observe) after each batch is durably
// written; on start it is filled from ClickHouse (Restore). It is safe for concurrent use.
type Live struct {
	cfg Config
	now func() time.Time

	mu        sync.RWMutex
	latestMs  int64                       // the newest device time observed: "now" in event time
	positions []VehiclePosition           // the newest position of every vehicle, in the order first seen
	vehicleAt map[string]int32            // plate → its index in positions
	numbered  record.ByPlateNumber[int32] // a fix's VehicleNo → its plate's index in positions + 1 (0: none yet)
	officers  map[string]OfficerPosition
	alerts    map[string]*AlertView // open, or severe and not yet handled to the end
	byVehicle map[string][]*AlertView
	unseen    map[string]time.Time // plates ClickHouse had no position for, until when to believe it
	recent    map[string][]violation
	recentIDs map[string]struct{}
	seq       uint64
	ring      []FeedItem // the last FeedBuffer items, oldest first from ringStart
	ringStart int
	complete  uint64 // the ring holds every item after this seq (process start, or the last dropped)
	subs      map[*subscriber]struct{}
	journal   []FeedItem // items not yet handed to the journal writer
}

const violationHistory = 30 * 24 * time.Hour

// NewLive returns an empty view.
func NewLive(cfg Config) *Live {
	return &Live{
		cfg: cfg, now: time.Now, complete: uint64(time.Now().UnixMicro()),
		vehicleAt: make(map[string]int32), officers: make(map[string]OfficerPosition),
		alerts: make(map[string]*AlertView), byVehicle: make(map[string][]*AlertView), recent: make(map[string][]violation), unseen: make(map[string]time.Time), recentIDs: make(map[string]struct{}),
		subs: make(map[*subscriber]struct{}),
	}
}

// Observe takes in a batch that has been durably written: positions, officers and alert changes.
// It copies what it keeps; the batch may be reused afterwards.
func (l *Live) Observe(fixes []record.Fix, officers []record.OfficerPosition, changes []detectors.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range fixes {
		f := &fixes[i]
		ms := f.Time.UnixMilli()
		l.latestMs = max(l.latestMs, ms)
		p, fresh := l.position(f.VehicleID, f.VehicleNo)
		if !fresh && p.TimeMs >= ms {
			continue
		}
		*p = VehiclePosition{Plate: f.VehicleID, Lat: f.Lat, Lon: f.Lon, SpeedKmh: f.SpeedKmh, TimeMs: ms}
	}
	for i := range officers {
		o := &officers[i]
		ms := o.Time.UnixMilli()
		l.latestMs = max(l.latestMs, ms)
		if p, ok := l.officers[o.OfficerID]; ok && p.TimeMs >= ms {
			continue
		}
		l.officers[o.OfficerID] = OfficerPosition{OfficerID: o.OfficerID, Lat: o.Lat, Lon: o.Lon, Available: o.Available, TimeMs: ms}
	}
	for _, c := range changes {
		l.applyChange(c)
	}
}

// position returns plate's entry in positions, and whether it was added now (to be filled in by
// the caller). no is the plate's number from the decoder (record.PlateNumbers, 0: none): a fix
// finds its vehicle by it without hashing the plate; a number is a hint, checked against the
// plate found. l.mu is held for writing.
func (l *Live) position(plate string, no uint32) (*VehiclePosition, bool) {
	if i := l.numbered.Get(no); i > 0 && l.positions[i-1].Plate == plate {
		return &l.positions[i-1], false
	}
	i, ok := l.vehicleAt[plate]
	if !ok {
		i = int32(len(l.positions))
		l.positions = append(l.positions, VehiclePosition{Plate: plate})
		l.vehicleAt[plate] = i
	}
	l.numbered.Put(no, i+1)
	return &l.positions[i], !ok
}

// applyChange updates the view with a detector change and publishes it. l.mu is held.
func (l *Live) applyChange(c detectors.Change) {
	a := &c.Alert
	if c.Kind == detectors.ChangeOpened {
		l.addViolation(a.VehicleID, a.ID, string(a.Rule), a.Start)
	}
	v := l.alerts[a.ID]
	if v == nil {
		if a.Version > 1 && c.Kind != detectors.ChangeOpened && !l.keepOpen(a) {
			// a later change of an alert that is no longer on the open list
			l.publish(FeedItem{Change: string(c.Kind), Alert: AlertView{Change: c.Kind, Alert: *a,
				Supervision: Supervision{Handling: Handling{State: StateNew, Actions: []Action{}}}}})
			return
		}
		v = &AlertView{Alert: *a, Supervision: Supervision{Handling: Handling{State: StateNew}, ReceivedMs: l.now().UnixMilli()}}
		l.putAlert(v)
	} else if a.Version < v.Version {
		return // an older change read again after a replay
	}
	v.Change, v.Alert = c.Kind, *a
	if v.Dispatch == nil || (a.Severity == detectors.SeveritySevere && v.Dispatch.Kind != DispatchOfficers) {
		v.Dispatch = l.plan(v)
	}
	item := FeedItem{Change: string(c.Kind), Alert: cloneView(v)}
	if !l.keepOpen(a) || terminal(v.Handling.State) {
		l.dropAlert(a.ID)
	}
	l.publish(item)
}

// putAlert adds v to the open list. l.mu is held.
func (l *Live) putAlert(v *AlertView) {
	l.alerts[v.ID] = v
	l.byVehicle[v.VehicleID] = append(l.byVehicle[v.VehicleID], v)
}

// dropAlert removes an alert from the open list. l.mu is held.
func (l *Live) dropAlert(id string) {
	v, ok := l.alerts[id]
	if !ok {
		return
	}
	delete(l.alerts, id)
	vs := slices.DeleteFunc(l.byVehicle[v.VehicleID], func(x *AlertView) bool { return x == v })
	if len(vs) == 0 {
		delete(l.byVehicle, v.VehicleID)
	} else {
		l.byVehicle[v.VehicleID] = vs
	}
}

// keepOpen: an alert stays on the open list while its episode is under way, and a severe one until
// a supervisor resolves or dismisses it (for OpenSevereFor at most).
func (l *Live) keepOpen(a *detectors.Alert) bool {
	if a.Status == detectors.StatusOpen {
		return true
	}
	return a.Severity == detectors.SeveritySevere && l.now().Sub(a.End) < l.cfg.OpenSevereFor
}

func terminal(state string) bool { return state == StateResolved || state == StateDismissed }

func (l *Live) addViolation(plate, id, rule string, start time.Time) {
	if _, ok := l.recentIDs[id]; ok {
		return
	}
	l.recentIDs[id] = struct{}{}
	vs := append(l.recent[plate], violation{id: id, rule: rule, start: start})
	cutoff := l.now().Add(-violationHistory)
	for len(vs) > 0 && vs[0].start.Before(cutoff) {
		delete(l.recentIDs, vs[0].id)
		vs = vs[1:]
	}
	l.recent[plate] = vs
}

// publish appends an item to the feed and hands it to the subscribers. l.mu is held.
func (l *Live) publish(item FeedItem) FeedItem {
	// Sequence numbers are wall-clock microseconds, strictly increasing: they keep growing across
	// restarts, so a client's Last-Event-ID stays meaningful.
	l.seq = max(l.seq+1, uint64(l.now().UnixMicro()))
	item.Seq = l.seq
	if len(l.ring) < l.cfg.FeedBuffer {
		l.ring = append(l.ring, item)
	} else {
		l.complete = l.ring[l.ringStart].Seq
		l.ring[l.ringStart] = item
		l.ringStart = (l.ringStart + 1) % len(l.ring)
	}
	l.journal = append(l.journal, item)
	for s := range l.subs {
		s.offer(item)
	}
	return item
}

// restoreViolation adds a violation read from ClickHouse on start.
func (l *Live) restoreViolation(plate, id, rule string, start time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addViolation(plate, id, rule, start)
}

// restoreAlert puts an alert read from ClickHouse on start on the open list, as restored.
func (l *Live) restoreAlert(a detectors.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.putAlert(&AlertView{Change: ChangeRestored, Alert: a,
		Supervision: Supervision{Handling: Handling{State: StateNew}, ReceivedMs: detectors.UnixMilli(a.Updated)}})
}

// restoreOfficer keeps an officer's position read from ClickHouse on start.
func (l *Live) restoreOfficer(o OfficerPosition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.officers[o.OfficerID] = o
}

// replanAlerts decides again who each open alert is offered to (after the officers are restored).
func (l *Live) replanAlerts() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.alerts {
		v.Dispatch = l.plan(v)
	}
}

// takeJournal returns the items published since the last call, for the journal writer.
func (l *Live) takeJournal() []FeedItem {
	l.mu.Lock()
	defer l.mu.Unlock()
	j := l.journal
	l.journal = nil
	return j
}

// Since returns the feed items after seq still in memory, oldest first, and whether the memory
// reaches back that far (false: older items must be read from the journal).
func (l *Live) Since(seq uint64, limit int) ([]FeedItem, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.sinceLocked(seq, limit)
}

func (l *Live) sinceLocked(seq uint64, limit int) ([]FeedItem, bool) {
	ok := seq >= l.complete
	n := len(l.ring)
	at := func(i int) *FeedItem { return &l.ring[(l.ringStart+i)%n] }
	i := sort.Search(n, func(i int) bool { return at(i).Seq > seq })
	var out []FeedItem
	for ; i < n && len(out) < limit; i++ {
		out = append(out, *at(i))
	}
	return out, ok
}

// Alert returns an open alert.
func (l *Live) Alert(id string) (AlertView, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	v, ok := l.alerts[id]
	if !ok {
		return AlertView{}, false
	}
	return cloneView(v), true
}

func cloneView(v *AlertView) AlertView {
	c := *v
	c.Handling.Actions = slices.Clone(v.Handling.Actions)
	if c.Handling.Actions == nil {
		c.Handling.Actions = []Action{}
	}
	if v.Dispatch != nil {
		d := *v.Dispatch
		d.Officers = slices.Clone(v.Dispatch.Officers)
		c.Dispatch = &d
	}
	return c
}

// AlertFilter selects open alerts.
type AlertFilter struct {
	Rules, Severities, Districts map[string]bool // empty: any
	Vehicle                      string
}

// Match reports whether the filter selects a.
func (f AlertFilter) Match(a *detectors.Alert) bool {
	return (len(f.Rules) == 0 || f.Rules[string(a.Rule)]) && (len(f.Severities) == 0 || f.Severities[string(a.Severity)]) &&
		(len(f.Districts) == 0 || f.Districts[a.District]) && (f.Vehicle == "" || f.Vehicle == a.VehicleID)
}

// OpenAlerts returns the open alerts the filter selects, most severe first, then newest first.
func (l *Live) OpenAlerts(f AlertFilter) []AlertView {
	l.mu.RLock()
	var out []AlertView
	if f.Vehicle != "" {
		for _, v := range l.byVehicle[f.Vehicle] {
			if f.Match(&v.Alert) {
				out = append(out, cloneView(v))
			}
		}
	} else {
		out = make([]AlertView, 0, len(l.alerts))
		for _, v := range l.alerts {
			if f.Match(&v.Alert) {
				out = append(out, cloneView(v))
			}
		}
	}
	l.mu.RUnlock()
	if out == nil {
		out = []AlertView{}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if ra, rb := a.Severity.Rank(), b.Severity.Rank(); ra != rb {
			return ra > rb
		}
		if sa, sb := detectors.UnixMilli(a.Start), detectors.UnixMilli(b.Start); sa != sb {
			return sa > sb
		}
		return a.ID < b.ID
	})
	return out
}

// OpenAlertCount is the number of a vehicle's open alerts.
func (l *Live) OpenAlertCount(plate string) int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.byVehicle[plate])
}

// Position returns a vehicle's last known position.
func (l *Live) Position(plate string) (VehiclePosition, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i, ok := l.vehicleAt[plate]
	if !ok {
		return VehiclePosition{}, false
	}
	return l.positions[i], true
}

// unseenTTL is how long a plate ClickHouse has no position for is believed unseen (squads repeat
// lookups of unknown plates; a new fix of the plate arrives through Observe anyway).
const unseenTTL = time.Minute

// KnownUnseen reports whether ClickHouse recently had no position for the plate.
func (l *Live) KnownUnseen(plate string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.now().Before(l.unseen[plate])
}

// RememberUnseen notes that ClickHouse has no position for the plate.
func (l *Live) RememberUnseen(plate string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.unseen) > 100_000 {
		clear(l.unseen)
	}
	l.unseen[plate] = l.now().Add(unseenTTL)
}

// RememberPosition keeps a position read from ClickHouse for a vehicle this view has not seen.
func (l *Live) RememberPosition(p VehiclePosition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, fresh := l.position(p.Plate, 0); fresh || cur.TimeMs < p.TimeMs {
		*cur = p
	}
}

// eventNowMs is "now" on the devices' clock: the wall clock, or the newest device time observed
// when that is earlier (a backlog or a replay being worked off). l.mu is held.
func (l *Live) eventNowMs() int64 {
	now := l.now().UnixMilli()
	if l.latestMs > 0 && l.latestMs < now {
		return l.latestMs
	}
	return now
}

// Near returns the vehicles whose last position is within radiusM of (lat, lon) and not older
// than maxAge (in event time, see eventNowMs), nearest first, with their distances.
func (l *Live) Near(lat, lon, radiusM float64, maxAge time.Duration, limit int) ([]VehiclePosition, []float64) {
	l.mu.RLock()
	cutoff := l.eventNowMs() - maxAge.Milliseconds()
	l.mu.RUnlock()
	type hit struct {
		p VehiclePosition
		d float64
	}
	var hits []hit
	l.mu.RLock()
	for _, p := range l.positions {
		if p.TimeMs < cutoff {
			continue
		}
		if d := distanceM(lat, lon, p.Lat, p.Lon); d <= radiusM {
			hits = append(hits, hit{p, d})
		}
	}
	l.mu.RUnlock()
	sort.Slice(hits, func(i, j int) bool {
		return hits[i].d < hits[j].d || (hits[i].d == hits[j].d && hits[i].p.Plate < hits[j].p.Plate)
	})
	if len(hits) > limit {
		hits = hits[:limit]
	}
	ps, ds := make([]VehiclePosition, len(hits)), make([]float64, len(hits))
	for i, h := range hits {
		ps[i], ds[i] = h.p, h.d
	}
	return ps, ds
}

// ViolationsByRule counts a vehicle's violations of the last 30 days by rule.
func (l *Live) ViolationsByRule(plate string) (map[string]int, int) {
	cutoff := l.now().Add(-violationHistory)
	out := map[string]int{}
	total := 0
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, v := range l.recent[plate] {
		if v.start.Before(cutoff) {
			continue
		}
		out[v.rule]++
		total++
	}
	return out, total
}

// distanceM is the great-circle distance in metres (haversine, mean Earth radius).
func distanceM(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371008.8
	p1, p2 := lat1*math.Pi/180, lat2*math.Pi/180
	dp, dl := p2-p1, (lon2-lon1)*math.Pi/180
	a := math.Sin(dp/2)*math.Sin(dp/2) + math.Cos(p1)*math.Cos(p2)*math.Sin(dl/2)*math.Sin(dl/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

// subscriber is one SSE client. Items that do not fit its buffer close it: the client reconnects
// with Last-Event-ID and resumes from the ring, so a slow client loses nothing and holds up no one.
type subscriber struct {
	filter AlertFilter
	ch     chan FeedItem
	closed bool
}

func (s *subscriber) offer(item FeedItem) {
	if s.closed || !s.filter.Match(&item.Alert.Alert) {
		return
	}
	select {
	case s.ch <- item:
	default:
		s.closed = true
		close(s.ch)
	}
}

// Subscribe registers a feed subscriber and returns, atomically with the registration, the items
// after seq still in memory (ok false when the memory does not reach back that far).
func (l *Live) Subscribe(f AlertFilter, after uint64, buffer int) (*subscriber, []FeedItem, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &subscriber{filter: f, ch: make(chan FeedItem, buffer)}
	l.subs[s] = struct{}{}
	backlog, ok := l.sinceLocked(after, math.MaxInt)
	return s, backlog, ok
}

// Unsubscribe removes a subscriber.
func (l *Live) Unsubscribe(s *subscriber) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.subs, s)
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// encodeItem is the JSON of a feed item.
func encodeItem(item FeedItem) []byte {
	b, _ := json.Marshal(item) // only strings, numbers and bools: cannot fail
	return b
}

// splitSet parses a comma-separated list into a set.
func splitSet(s string) map[string]bool {
	if s == "" {
		return nil
	}
	out := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out[p] = true
		}
	}
	return out
}
