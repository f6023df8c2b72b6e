package api

import (
	"encoding/json"
	"fmt"

	"github.com/muckwatch/muckwatch/detectors"
)

// AlertView is an alert as the API shows it: the detectors' latest snapshot of it and the change
// that made it, and the command centre's part (Supervision). Its JSON is the alert's muck.alerts
// message (detectors.Change) followed by Supervision's fields.
type AlertView struct {
	// Change is the alert's last change: the detectors' (opened, escalated, updated, resolved)
	// or the API's (restored, handling, overdue, renotified).
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
	// EscalationLevel is the ladder level the overdue alert reached (0: not escalated);
	// Escalation the steps taken, oldest first (api.escalation).
	EscalationLevel int              `json:"escalation_level"`
	Escalation      []EscalationStep `json:"escalation,omitempty"`
	// ReceivedMs is when (wall time) muckwatch first published the alert; acknowledgement
	// deadlines count from here.
	ReceivedMs int64 `json:"received_ms"`
}

// MarshalJSON writes the alert's change message with the supervision's fields after it
// (appendJSON).
func (v AlertView) MarshalJSON() ([]byte, error) {
	return v.appendJSON(make([]byte, 0, v.jsonSize())), nil
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
	// DistanceM and ETASeconds are the dispatched officer's distance and estimated time to the
	// alert when dispatched (not kept in alert_actions: absent after a restart).
	DistanceM  float64 `json:"distance_m,omitempty"`
	ETASeconds float64 `json:"eta_s,omitempty"`
	Reason     string  `json:"reason,omitempty"`
	AtMs       int64   `json:"at_ms"`
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
