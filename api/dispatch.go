package api

import (
	"fmt"
	"time"

	"github.com/muckwatch/muckwatch/detectors"
)

// Dispatch kinds.
const (
	DispatchOfficers  = "officers"   // offered to the nearest available enforcement officers
	DispatchGridStaff = "grid_staff" // routed to the district's grid staff
)

// DispatchPlan is who an alert is offered to.
type DispatchPlan struct {
	Kind      string           `json:"kind"`
	Officers  []OfferedOfficer `json:"officers,omitempty"`
	GridStaff string           `json:"grid_staff,omitempty"`
	District  string           `json:"district,omitempty"`
	// Note says why no officer was offered, when none was.
	Note string `json:"note,omitempty"`
}

// OfferedOfficer is an officer an alert is offered to, with the straight-line distance and an ETA
// estimate.
type OfferedOfficer struct {
	OfficerID  string  `json:"officer_id"`
	DistanceM  float64 `json:"distance_m"`
	ETASeconds float64 `json:"eta_s"`
	Lat        float64 `json:"lat"`
	Lon        float64 `json:"lon"`
}

// plan decides who an alert goes to: a severe one (and warnings, when configured) to the nearest
// available officers with a position fresh at atMs within reach, not already dispatched to another
// alert; otherwise, or when no officer is, the district's grid staff. l.alerts.mu is held (read
// is enough).
func (l *Live) plan(v *AlertView, atMs int64) *DispatchPlan {
	d := l.cfg.Dispatch
	grid := &DispatchPlan{Kind: DispatchGridStaff, District: v.District, GridStaff: d.GridStaff[v.District]}
	if grid.GridStaff == "" {
		district := v.District
		if district == "" {
			district = "unassigned"
		}
		grid.GridStaff = "grid-staff:" + district
	}
	if v.Severity != detectors.SeveritySevere && !(d.WarningsToOfficers && v.Severity == detectors.SeverityWarning) {
		return grid
	}
	officers := l.officers.nearest(d, v.Lat, v.Lon, d.Officers, atMs, l.busyOfficers(v.ID))
	if len(officers) == 0 {
		grid.Note = fmt.Sprintf("no available officer with a position of the last %s within %.0f m", d.OfficerStale, d.MaxDistanceM)
		return grid
	}
	return &DispatchPlan{Kind: DispatchOfficers, Officers: officers, District: v.District}
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// ActionError is a refused lifecycle action; Status is the HTTP status to answer with.
type ActionError struct {
	Status int
	Msg    string
}

func (e *ActionError) Error() string { return e.Msg }

// transitions lists the states each action may be taken from.
var transitions = map[string][]string{
	"dispatch":    {StateNew, StateAcknowledged, StateDispatched},
	"acknowledge": {StateNew, StateDispatched},
	"resolve":     {StateNew, StateDispatched, StateAcknowledged},
	"dismiss":     {StateNew, StateDispatched, StateAcknowledged},
}

var actionState = map[string]string{
	"dispatch": StateDispatched, "acknowledge": StateAcknowledged, "resolve": StateResolved, "dismiss": StateDismissed,
}

// Act applies a person's action to an open alert and publishes the change. dispatch takes the
// officer (the nearest offered one when officerID is empty); dismiss needs a reason.
func (l *Live) Act(id, action string, who Principal, officerID, reason string) (AlertView, Action, error) {
	from, known := transitions[action]
	if !known {
		return AlertView{}, Action{}, &ActionError{400, fmt.Sprintf("action %q is not one of dispatch, acknowledge, resolve, dismiss", action)}
	}
	if action == "dismiss" && reason == "" {
		return AlertView{}, Action{}, &ActionError{400, "dismiss needs a reason (why the alert is not a violation or needs no action)"}
	}
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	v, ok := l.alerts.open[id]
	if !ok {
		if h := l.alerts.handled[id]; h != nil {
			last := h.Handling.Actions[len(h.Handling.Actions)-1]
			return AlertView{}, Action{}, &ActionError{409, fmt.Sprintf("cannot %s alert %s: %s %s it at %s; a %s alert takes no further action (GET /api/v1/alerts/%s shows its history)",
				action, id, last.Actor, h.Handling.State, time.UnixMilli(last.AtMs).UTC().Format(time.RFC3339), h.Handling.State, id)}
		}
		return AlertView{}, Action{}, &ActionError{404, fmt.Sprintf("alert %q is not open: unknown, or its episode ended (query /api/v1/violations for history)", id)}
	}
	allowed := false
	for _, s := range from {
		allowed = allowed || s == v.Handling.State
	}
	if !allowed {
		return AlertView{}, Action{}, &ActionError{409, fmt.Sprintf("cannot %s alert %s: it is %s", action, id, v.Handling.State)}
	}
	var offered *OfferedOfficer
	if action == "dispatch" {
		if officerID == "" {
			near := l.officers.nearest(l.cfg.Dispatch, v.Lat, v.Lon, 1, l.eventNowMs(), l.busyOfficers(id))
			if len(near) == 0 {
				return AlertView{}, Action{}, &ActionError{409, fmt.Sprintf("cannot dispatch alert %s: no available officer within %.0f m who is not dispatched to another alert; name one with officer_id", id, l.cfg.Dispatch.MaxDistanceM)}
			}
			officerID = near[0].OfficerID
			offered = &near[0]
		} else if o, ok := l.officers.get(officerID); !ok {
			return AlertView{}, Action{}, &ActionError{400, fmt.Sprintf("officer %q has sent no position; dispatch to a known officer", officerID)}
		} else {
			oo := l.cfg.Dispatch.offer(o, v.Lat, v.Lon)
			offered = &oo
		}
		if v.Handling.State == StateDispatched {
			for i := len(v.Handling.Actions) - 1; i >= 0; i-- {
				if a := v.Handling.Actions[i]; a.Action == "dispatch" {
					if a.OfficerID == officerID {
						return AlertView{}, Action{}, &ActionError{409, fmt.Sprintf("alert %s is already dispatched to %s", id, officerID)}
					}
					break
				}
			}
		}
	}
	a := Action{Action: action, Actor: who.Name, Role: string(who.Role), OfficerID: officerID, Reason: reason, AtMs: l.now().UnixMilli()}
	if offered != nil {
		a.DistanceM, a.ETASeconds = offered.DistanceM, offered.ETASeconds
	}
	v.Handling.State = actionState[action]
	v.Handling.Actions = append(v.Handling.Actions, a)
	out := cloneView(v)
	if terminal(v.Handling.State) {
		l.alerts.close(id)
	}
	l.publish(FeedItem{Change: ChangeHandling, Alert: out})
	return out, a, nil
}

// busyOfficers lists the officers dispatched to an open alert other than except, by the alert
// they are dispatched to. l.alerts.mu is held (read is enough).
func (l *Live) busyOfficers(except string) map[string]string {
	var busy map[string]string
	for id, v := range l.alerts.open {
		if id == except || v.Handling.State != StateDispatched {
			continue
		}
		for i := len(v.Handling.Actions) - 1; i >= 0; i-- {
			if a := v.Handling.Actions[i]; a.Action == "dispatch" {
				if busy == nil {
					busy = map[string]string{}
				}
				busy[a.OfficerID] = id
				break
			}
		}
	}
	return busy
}

// restoreAction replays a recorded action on start (no feed item): a resolved or dismissed alert
// goes to the handled ones, so that its decision stands when its episode sends more changes.
func (l *Live) restoreAction(id string, a Action) {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	v, ok := l.alerts.open[id]
	if !ok {
		return
	}
	if s, known := actionState[a.Action]; known {
		v.Handling.State = s
		v.Handling.Actions = append(v.Handling.Actions, a)
	}
	if terminal(v.Handling.State) {
		l.alerts.close(id)
	}
}

// ackWithin is the acknowledgement deadline of a severity.
func (l *Live) ackWithin(severity detectors.Severity) time.Duration {
	switch severity {
	case detectors.SeveritySevere:
		return l.cfg.AckWithin.Severe
	case detectors.SeverityWarning:
		return l.cfg.AckWithin.Warning
	}
	return l.cfg.AckWithin.Info
}

// CheckOverdue marks the open alerts nobody has acknowledged or dispatched within their deadline
// as overdue and publishes an overdue change for each; then it takes the escalation steps that
// are due (a renotified change each, see escalate). It returns the changes published. Of a
// shared view it checks only the alerts its Duty covers.
func (l *Live) CheckOverdue() []FeedItem {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	l.forgetHandled()
	now := l.now()
	var out []FeedItem
	for _, v := range l.alerts.open {
		if v.Handling.State != StateNew || !l.watches(v) {
			continue // another instance of a shared view checks it (duty.go)
		}
		if !v.Overdue {
			if now.Sub(time.UnixMilli(v.ReceivedMs)) < l.ackWithin(v.Severity) {
				continue
			}
			v.Overdue = true
			out = append(out, l.publish(FeedItem{Change: ChangeOverdue, Alert: cloneView(v)}))
		}
		out = l.escalate(v, now, out)
	}
	return out
}
