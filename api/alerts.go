package api

import (
	"encoding/base64"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// alertBook is the open alerts with their handling, the alerts a supervisor resolved or
// dismissed, and each vehicle's violations of the last 30 days. Its lock is taken before the
// officers' and the feed's.
type alertBook struct {
	mu        sync.RWMutex
	open      map[string]*AlertView // open, or severe and not yet handled to the end
	byVehicle map[string][]*AlertView
	// handled holds the alerts a supervisor resolved or dismissed, while their episode may still
	// send changes (and OpenSevereFor after it ended): a later change of one keeps its handling
	// instead of opening it again, and GET /alerts/{id} shows its history.
	handled   map[string]*AlertView
	recent    map[string][]violation
	recentIDs map[string]struct{}
	// relaying is set while a change another instance made is applied (ApplyAnnounced): the feed
	// items it publishes are relayed. position is the position (offset + 1) on the alerts topic of
	// the record being applied, for a positioned feed; 0 outside ApplyAnnounced.
	relaying bool
	position uint64
}

type violation struct {
	id    string
	rule  string
	start time.Time
}

const violationHistory = 30 * 24 * time.Hour

func newAlertBook() alertBook {
	return alertBook{open: make(map[string]*AlertView), byVehicle: make(map[string][]*AlertView), handled: make(map[string]*AlertView),
		recent: make(map[string][]violation), recentIDs: make(map[string]struct{})}
}

// applyChange updates the view with a detector change and publishes it. l.alerts.mu is held.
func (l *Live) applyChange(c detectors.Change) {
	b := &l.alerts
	a := &c.Alert
	tidyAlert(a)
	if c.Kind == detectors.ChangeOpened {
		b.addViolation(a.VehicleID, a.ID, string(a.Rule), a.Start, l.now())
	}
	v := b.open[a.ID]
	if v == nil {
		if h := b.handled[a.ID]; h != nil {
			// a supervisor resolved or dismissed it: the decision stands while the episode goes on
			if a.Version < h.Version {
				return
			}
			h.Change, h.Alert = c.Kind, *a
			l.publish(FeedItem{Change: string(c.Kind), Alert: cloneView(h)})
			return
		}
		if a.Version > 1 && c.Kind != detectors.ChangeOpened && !l.keepOpen(a) {
			// a later change of an alert that is no longer on the open list
			l.publish(FeedItem{Change: string(c.Kind), Alert: AlertView{Change: c.Kind, Alert: *a,
				Supervision: Supervision{Handling: Handling{State: StateNew, Actions: []Action{}}}}})
			return
		}
		v = &AlertView{Alert: *a, Supervision: Supervision{Handling: Handling{State: StateNew}, ReceivedMs: l.now().UnixMilli()}}
		b.put(v)
	} else if a.Version < v.Version {
		return // an older change read again after a replay
	}
	v.Change, v.Alert = c.Kind, *a
	if v.Dispatch == nil || (a.Severity == detectors.SeveritySevere && v.Dispatch.Kind != DispatchOfficers) {
		v.Dispatch = l.plan(v, detectors.UnixMilli(a.Updated))
	}
	item := FeedItem{Change: string(c.Kind), Alert: cloneView(v)}
	if !l.keepOpen(a) {
		b.drop(a.ID)
	}
	l.publish(item)
}

// put adds v to the open list. b.mu is held.
func (b *alertBook) put(v *AlertView) {
	b.open[v.ID] = v
	b.byVehicle[v.VehicleID] = append(b.byVehicle[v.VehicleID], v)
}

// close moves an alert a supervisor resolved or dismissed from the open list to the handled
// ones. b.mu is held.
func (b *alertBook) close(id string) {
	if v := b.drop(id); v != nil {
		b.handled[id] = v
	}
}

// drop removes an alert from the open list and returns it (nil: it was not open). b.mu is held.
func (b *alertBook) drop(id string) *AlertView {
	v, ok := b.open[id]
	if !ok {
		return nil
	}
	delete(b.open, id)
	vs := slices.DeleteFunc(b.byVehicle[v.VehicleID], func(x *AlertView) bool { return x == v })
	if len(vs) == 0 {
		delete(b.byVehicle, v.VehicleID)
	} else {
		b.byVehicle[v.VehicleID] = vs
	}
	return v
}

// forgetHandled forgets the handled alerts whose episode ended more than OpenSevereFor ago: no
// change of theirs can arrive any more. l.alerts.mu is held.
func (l *Live) forgetHandled() {
	now := l.now()
	for id, v := range l.alerts.handled {
		if v.Status != detectors.StatusOpen && now.Sub(v.End) > l.cfg.OpenSevereFor {
			delete(l.alerts.handled, id)
		}
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

// addViolation counts a vehicle's violation once, forgetting those older than violationHistory
// at now. b.mu is held.
func (b *alertBook) addViolation(plate, id, rule string, start, now time.Time) {
	if _, ok := b.recentIDs[id]; ok {
		return
	}
	b.recentIDs[id] = struct{}{}
	vs := append(b.recent[plate], violation{id: id, rule: rule, start: start})
	cutoff := now.Add(-violationHistory)
	for len(vs) > 0 && vs[0].start.Before(cutoff) {
		delete(b.recentIDs, vs[0].id)
		vs = vs[1:]
	}
	b.recent[plate] = vs
}

// restoreViolation adds a violation read from ClickHouse on start.
func (l *Live) restoreViolation(plate, id, rule string, start time.Time) {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	l.alerts.addViolation(plate, id, rule, start, l.now())
}

// restoreAlert puts an alert read from ClickHouse on start on the open list, as restored. Its
// acknowledgement deadline counts from the restart until restoreFeed finds when it was first
// published.
func (l *Live) restoreAlert(a detectors.Alert) {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	l.alerts.put(&AlertView{Change: ChangeRestored, Alert: a,
		Supervision: Supervision{Handling: Handling{State: StateNew}, ReceivedMs: l.now().UnixMilli()}})
}

// restoreFeed sets what the feed journal says of a restored alert: when it was first published
// (its deadline counts from there) and whether it was already announced overdue (it is not
// announced again).
func (l *Live) restoreFeed(id string, firstMs int64, overdue bool) {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	v := l.alerts.open[id]
	if v == nil {
		v = l.alerts.handled[id]
	}
	if v == nil {
		return
	}
	if firstMs > 0 {
		v.ReceivedMs = min(v.ReceivedMs, firstMs)
	}
	v.Overdue = v.Overdue || overdue
}

// restoredIDs lists the alerts restored, open or handled.
func (l *Live) restoredIDs() []string {
	l.alerts.mu.RLock()
	defer l.alerts.mu.RUnlock()
	out := make([]string, 0, len(l.alerts.open)+len(l.alerts.handled))
	for id := range l.alerts.open {
		out = append(out, id)
	}
	for id := range l.alerts.handled {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// restoreOfficer keeps an officer's position read from ClickHouse on start.
func (l *Live) restoreOfficer(o OfficerPosition) { l.officers.put(o) }

// replanAlerts decides again who each open alert is offered to (after the officers are restored).
func (l *Live) replanAlerts() {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	for _, v := range l.alerts.open {
		v.Dispatch = l.plan(v, detectors.UnixMilli(v.Updated))
	}
}

// Alert returns an open alert, or one a supervisor resolved or dismissed, with its handling. An
// open alert's dispatch plan is decided again as it is read, from the officers' positions and
// dispatches now.
func (l *Live) Alert(id string) (AlertView, bool) {
	l.alerts.mu.RLock()
	defer l.alerts.mu.RUnlock()
	v, ok := l.alerts.open[id]
	if ok {
		c := cloneView(v)
		c.Dispatch = l.plan(v, l.eventNowMs())
		return c, true
	}
	if v, ok = l.alerts.handled[id]; ok {
		return cloneView(v), true
	}
	return AlertView{}, false
}

func cloneView(v *AlertView) AlertView {
	c := *v
	c.Handling.Actions = slices.Clone(v.Handling.Actions)
	c.Escalation = slices.Clone(v.Escalation) // the steps' roles and channels are never changed
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
	// States selects handling states (empty: any); Overdue, when set, whether overdue. Only the
	// open list applies them (not the stream).
	States  map[string]bool
	Overdue *bool
}

// matchView reports whether the filter selects v, handling included.
func (f AlertFilter) matchView(v *AlertView) bool {
	return f.Match(&v.Alert) && (len(f.States) == 0 || f.States[v.Handling.State]) && (f.Overdue == nil || *f.Overdue == v.Overdue)
}

// Match reports whether the filter selects a.
func (f AlertFilter) Match(a *detectors.Alert) bool {
	return (len(f.Rules) == 0 || f.Rules[string(a.Rule)]) && (len(f.Severities) == 0 || f.Severities[string(a.Severity)]) &&
		(len(f.Districts) == 0 || f.Districts[a.District]) && (f.Vehicle == "" || f.Vehicle == a.VehicleID)
}

// OpenAlerts returns the open alerts the filter selects, most severe first, then newest first.
func (l *Live) OpenAlerts(f AlertFilter) []AlertView {
	b := &l.alerts
	b.mu.RLock()
	var out []AlertView
	if f.Vehicle != "" {
		for _, v := range b.byVehicle[f.Vehicle] {
			if f.matchView(v) {
				out = append(out, cloneView(v))
			}
		}
	} else {
		out = make([]AlertView, 0, len(b.open))
		for _, v := range b.open {
			if f.matchView(v) {
				out = append(out, cloneView(v))
			}
		}
	}
	b.mu.RUnlock()
	if out == nil {
		out = []AlertView{}
	}
	sort.Slice(out, func(i, j int) bool { return cursorOf(&out[i]).less(cursorOf(&out[j])) })
	return out
}

// alertCursor is a position in the open list's order: most severe first, then newest first, then
// by id.
type alertCursor struct {
	rank    int
	startMs int64
	id      string
}

func cursorOf(v *AlertView) alertCursor {
	return alertCursor{rank: v.Severity.Rank(), startMs: detectors.UnixMilli(v.Start), id: v.ID}
}

// less reports whether c comes before d in the open list's order.
func (c alertCursor) less(d alertCursor) bool {
	if c.rank != d.rank {
		return c.rank > d.rank
	}
	if c.startMs != d.startMs {
		return c.startMs > d.startMs
	}
	return c.id < d.id
}

// before reports whether c comes before v: v is on a page after the cursor.
func (c *alertCursor) before(v *AlertView) bool { return c.less(cursorOf(v)) }

// String is the cursor as a query parameter (opaque to clients).
func (c alertCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(c.rank) + "." + strconv.FormatInt(c.startMs, 10) + "." + c.id))
}

// parseCursor reads what String writes.
func parseCursor(s string) (*alertCursor, error) {
	bad := fmt.Errorf("cursor %q is not a cursor of this list: take it from a page's next", s[:min(len(s), 60)])
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(b), ".", 3)
	if len(parts) != 3 {
		return nil, bad
	}
	rank, err1 := strconv.Atoi(parts[0])
	ms, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, bad
	}
	return &alertCursor{rank: rank, startMs: ms, id: parts[2]}, nil
}

// OpenAlertCount is the number of a vehicle's open alerts.
func (l *Live) OpenAlertCount(plate string) int {
	l.alerts.mu.RLock()
	defer l.alerts.mu.RUnlock()
	return len(l.alerts.byVehicle[plate])
}

// ViolationsByRule counts a vehicle's violations of the last 30 days by rule.
func (l *Live) ViolationsByRule(plate string) (map[string]int, int) {
	cutoff := l.now().Add(-violationHistory)
	out := map[string]int{}
	total := 0
	l.alerts.mu.RLock()
	defer l.alerts.mu.RUnlock()
	for _, v := range l.alerts.recent[plate] {
		if v.start.Before(cutoff) {
			continue
		}
		out[v.rule]++
		total++
	}
	return out, total
}
