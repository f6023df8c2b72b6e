package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/muckwatch/muckwatch/detectors"
)

// A shared view (Config.View "shared") is the same on every instance: it is fed only from what
// the instances publish to Kafka, read whole by each of them, never from its own pipeline
// directly.
//
//   - The alerts topic: every detector change (ApplyAnnounced), and the API's own changes,
//     handling and overdue, so that a dismissal made on one instance holds on all.
//   - The live topic (outputs.live_topic, compacted): each vehicle's newest position with its
//     risk score, from the instance judging it, and each officer's newest position (ApplyLive).
//
// The instance a change comes from journals it and hands it to the webhook; the others only
// publish it on their feed (FeedItem.relayed).

// LiveRecord is one record of the live topic: a vehicle's newest position and its risk, or an
// officer's newest position. Its key is LiveKey's.
type LiveRecord struct {
	Vehicle *SharedVehicle   `json:"vehicle,omitempty"`
	Officer *OfficerPosition `json:"officer,omitempty"`
}

// SharedVehicle is a vehicle as the instance judging it last saw it.
type SharedVehicle struct {
	// Position: time_ms 0 when the instance has no fix of it (only camera events so far).
	VehiclePosition
	Risk detectors.Risk `json:"risk"`
}

// LiveKey is the key of a live record: "vehicle/PLATE" or "officer/ID", so that compaction keeps
// the newest of each.
func LiveKey(dst []byte, r *LiveRecord) []byte {
	if r.Vehicle != nil {
		return append(append(dst, "vehicle/"...), r.Vehicle.Plate...)
	}
	if r.Officer != nil {
		return append(append(dst, "officer/"...), r.Officer.OfficerID...)
	}
	return dst
}

// errEmptyLiveRecord: a live record with neither a vehicle nor an officer.
var errEmptyLiveRecord = errors.New("live record has neither a vehicle nor an officer")

// DecodeLiveRecord reads a live record's value.
func DecodeLiveRecord(b []byte) (LiveRecord, error) {
	var r LiveRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("live record is not valid JSON: %w", err)
	}
	switch {
	case r.Vehicle == nil && r.Officer == nil:
		return r, errEmptyLiveRecord
	case r.Vehicle != nil && r.Vehicle.Plate == "":
		return r, errors.New("live record of a vehicle has no plate")
	case r.Officer != nil && r.Officer.OfficerID == "":
		return r, errors.New("live record of an officer has no officer_id")
	}
	return r, nil
}

// riskBook is every vehicle's risk as the instance judging it last published it (a shared view).
type riskBook struct {
	mu    sync.RWMutex
	risks map[string]detectors.Risk
}

// ApplyLive takes in a record of the live topic: a vehicle's position (if newer than the one
// kept) and its risk, or an officer's position (if newer).
func (l *Live) ApplyLive(r LiveRecord) {
	if v := r.Vehicle; v != nil {
		if v.TimeMs > 0 {
			l.positions.mu.Lock()
			pos, fresh := l.positions.slot(v.Plate, 0)
			if fresh || pos.TimeMs < v.TimeMs {
				*pos = v.VehiclePosition
			}
			l.positions.mu.Unlock()
			l.observedAt(v.TimeMs)
		}
		l.risks.mu.Lock()
		if l.risks.risks == nil {
			l.risks.risks = make(map[string]detectors.Risk)
		}
		if cur, ok := l.risks.risks[v.Plate]; !ok || !v.Risk.Updated.Before(cur.Updated) {
			l.risks.risks[v.Plate] = v.Risk
		}
		l.risks.mu.Unlock()
	}
	if o := r.Officer; o != nil {
		l.officers.mu.Lock()
		if cur, ok := l.officers.byID[o.OfficerID]; !ok || cur.TimeMs < o.TimeMs {
			l.officers.byID[o.OfficerID] = *o
		}
		l.officers.mu.Unlock()
		l.observedAt(o.TimeMs)
	}
}

// Risk returns a vehicle's risk as last published on the live topic (a shared view's
// RiskSource); ok is false for a vehicle no instance has judged.
func (l *Live) Risk(plate string) (detectors.Risk, bool) {
	l.risks.mu.RLock()
	defer l.risks.mu.RUnlock()
	r, ok := l.risks.risks[plate]
	return r, ok
}

// ApplyAnnounced takes in an alert change read from the alerts topic: a detector's, or an API's
// (handling, overdue). relayed is true when another instance made it. A change already applied
// (this instance's own action read back, a record read again) changes nothing and publishes
// nothing — except on a positioned feed, which streams this instance's own actions only now.
func (l *Live) ApplyAnnounced(v AlertView, relayed bool) { l.ApplyAnnouncedAt(v, relayed, 0) }

// ApplyAnnouncedAt is ApplyAnnounced of the record at offset pos-1 of the alerts topic (pos 0:
// unknown); a positioned feed streams what it publishes with pos as its seq.
func (l *Live) ApplyAnnouncedAt(v AlertView, relayed bool, pos uint64) {
	l.alerts.mu.Lock()
	defer l.alerts.mu.Unlock()
	l.alerts.relaying, l.alerts.position = relayed, pos
	defer func() { l.alerts.relaying, l.alerts.position = false, 0 }()
	switch string(v.Change) {
	case ChangeHandling, ChangeOverdue, ChangeRenotified:
		if !relayed && pos > 0 && l.feed.positioned {
			// made here, applied and journaled then: streamed now, as every instance streams it
			l.publish(FeedItem{Change: string(v.Change), Alert: v, readBack: true})
			return
		}
	}
	switch string(v.Change) {
	case ChangeHandling:
		l.applyHandling(&v)
	case ChangeOverdue:
		if cur := l.alerts.open[v.ID]; cur != nil && !cur.Overdue {
			cur.Overdue = true
			l.publish(FeedItem{Change: ChangeOverdue, Alert: cloneView(cur)})
		}
	case ChangeRenotified:
		l.applyEscalation(&v)
	case ChangeRestored:
		// an API's view of its own start; never announced
	default:
		l.applyChange(detectors.Change{Kind: v.Change, Alert: v.Alert})
	}
}

// applyHandling takes in a person's action on an alert made on another instance (or this one,
// read back): the handling with more actions than the one kept wins. l.alerts.mu is held.
func (l *Live) applyHandling(v *AlertView) {
	b := &l.alerts
	cur := b.open[v.ID]
	if cur == nil {
		cur = b.handled[v.ID]
	}
	if cur == nil || len(v.Handling.Actions) <= len(cur.Handling.Actions) {
		return // not known here (ended and forgotten), or already applied
	}
	cur.Handling.State = v.Handling.State
	cur.Handling.Actions = append(cur.Handling.Actions[:0:0], v.Handling.Actions...)
	out := cloneView(cur)
	if terminal(cur.Handling.State) {
		b.close(cur.ID)
	}
	l.publish(FeedItem{Change: ChangeHandling, Alert: out})
}

// applyEscalation takes in an escalation step the instance watching the alert took (or this one,
// read back): the alert is overdue and has reached the step's level, so that whichever instance
// watches it next does not take the step again. l.alerts.mu is held.
func (l *Live) applyEscalation(v *AlertView) {
	b := &l.alerts
	cur := b.open[v.ID]
	if cur == nil {
		cur = b.handled[v.ID]
	}
	if cur == nil || v.EscalationLevel <= cur.EscalationLevel {
		return // not known here, or already applied
	}
	cur.Overdue = true
	cur.EscalationLevel = v.EscalationLevel
	cur.Escalation = append(cur.Escalation[:0:0], v.Escalation...)
	l.publish(FeedItem{Change: ChangeRenotified, Alert: cloneView(cur)})
}
