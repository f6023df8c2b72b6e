package api

import (
	"strconv"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/internal/jsonenc"
)

// The JSON of a feed item and of an alert, written by hand: every alert change is written to the
// feed journal, and most go to the live feed's clients and the webhooks, so that under a city's
// morning of violations this is written tens of thousands of times a minute. It is what
// encoding/json writes with HTML escaping off (feed_json_test.go compares the two).

// appendFeedItem appends the JSON of it to b.
func appendFeedItem(b []byte, it *FeedItem) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, it.Seq, 10)
	b = append(b, `,"change":`...)
	b = jsonenc.AppendString(b, it.Change)
	b = append(b, `,"alert":`...)
	b = it.Alert.appendJSON(b)
	return append(b, '}')
}

// feedItemSize is about how many bytes the JSON of it takes.
func feedItemSize(it *FeedItem) int {
	return 48 + len(it.Change) + it.Alert.jsonSize()
}

// jsonSize is about how many bytes the JSON of v takes.
func (v *AlertView) jsonSize() int {
	c := detectors.Change{Kind: v.Change, Alert: v.Alert}
	return c.JSONSize() + 100 + 120*len(v.Handling.Actions) + 150*len(v.Escalation)
}

// appendJSON appends the alert's change message (detectors.Change.AppendJSON) with the
// supervision's fields after it.
func (v *AlertView) appendJSON(b []byte) []byte {
	b = detectors.Change{Kind: v.Change, Alert: v.Alert}.AppendJSON(b)
	b[len(b)-1] = ','
	return v.Supervision.appendFields(b)
}

// appendFields appends the supervision's fields and the closing brace of the object they are in.
func (s *Supervision) appendFields(b []byte) []byte {
	b = append(b, `"handling":{"state":`...)
	b = jsonenc.AppendString(b, s.Handling.State)
	b = append(b, `,"actions":`...)
	if s.Handling.Actions == nil {
		b = append(b, "null"...)
	} else {
		b = appendArray(b, s.Handling.Actions, (*Action).appendJSON)
	}
	b = append(b, '}')
	if s.Dispatch != nil {
		b = append(b, `,"dispatch":`...)
		b = s.Dispatch.appendJSON(b)
	}
	b = append(b, `,"overdue":`...)
	b = strconv.AppendBool(b, s.Overdue)
	b = append(b, `,"escalation_level":`...)
	b = strconv.AppendInt(b, int64(s.EscalationLevel), 10)
	if len(s.Escalation) > 0 {
		b = appendArray(append(b, `,"escalation":`...), s.Escalation, (*EscalationStep).appendJSON)
	}
	b = append(b, `,"received_ms":`...)
	b = strconv.AppendInt(b, s.ReceivedMs, 10)
	return append(b, '}')
}

func (a *Action) appendJSON(b []byte) []byte {
	b = append(b, `{"action":`...)
	b = jsonenc.AppendString(b, a.Action)
	b = append(b, `,"actor":`...)
	b = jsonenc.AppendString(b, a.Actor)
	b = append(b, `,"role":`...)
	b = jsonenc.AppendString(b, a.Role)
	b = appendOptString(b, `,"officer_id":`, a.OfficerID)
	b = appendOptFloat(b, `,"distance_m":`, a.DistanceM)
	b = appendOptFloat(b, `,"eta_s":`, a.ETASeconds)
	b = appendOptString(b, `,"reason":`, a.Reason)
	b = append(b, `,"at_ms":`...)
	b = strconv.AppendInt(b, a.AtMs, 10)
	return append(b, '}')
}

func (p *DispatchPlan) appendJSON(b []byte) []byte {
	b = append(b, `{"kind":`...)
	b = jsonenc.AppendString(b, p.Kind)
	if len(p.Officers) > 0 {
		b = appendArray(append(b, `,"officers":`...), p.Officers, (*OfferedOfficer).appendJSON)
	}
	b = appendOptString(b, `,"grid_staff":`, p.GridStaff)
	b = appendOptString(b, `,"district":`, p.District)
	b = appendOptString(b, `,"note":`, p.Note)
	return append(b, '}')
}

func (o *OfferedOfficer) appendJSON(b []byte) []byte {
	b = append(b, `{"officer_id":`...)
	b = jsonenc.AppendString(b, o.OfficerID)
	b = append(b, `,"distance_m":`...)
	b = jsonenc.AppendFloat(b, o.DistanceM)
	b = append(b, `,"eta_s":`...)
	b = jsonenc.AppendFloat(b, o.ETASeconds)
	b = append(b, `,"lat":`...)
	b = jsonenc.AppendFloat(b, o.Lat)
	b = append(b, `,"lon":`...)
	b = jsonenc.AppendFloat(b, o.Lon)
	return append(b, '}')
}

func (e *EscalationStep) appendJSON(b []byte) []byte {
	b = append(b, `{"level":`...)
	b = strconv.AppendInt(b, int64(e.Level), 10)
	b = append(b, `,"name":`...)
	b = jsonenc.AppendString(b, e.Name)
	b = append(b, `,"scope":`...)
	b = jsonenc.AppendString(b, e.Scope)
	b = appendOptString(b, `,"district":`, e.District)
	b = appendOptStrings(b, `,"roles":`, e.Roles)
	b = appendOptStrings(b, `,"channels":`, e.Channels)
	b = append(b, `,"due_ms":`...)
	b = strconv.AppendInt(b, e.DueMs, 10)
	b = append(b, `,"at_ms":`...)
	b = strconv.AppendInt(b, e.AtMs, 10)
	return append(b, '}')
}

// appendOptString appends the member key (",\"name\":") and s, unless s is empty (omitempty).
func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return jsonenc.AppendString(append(b, key...), s)
}

// appendOptFloat appends the member key and f, unless f is 0 (omitempty).
func appendOptFloat(b []byte, key string, f float64) []byte {
	if f == 0 {
		return b
	}
	return jsonenc.AppendFloat(append(b, key...), f)
}

// appendOptStrings appends the member key and ss as an array, unless ss is empty (omitempty).
func appendOptStrings(b []byte, key string, ss []string) []byte {
	if len(ss) == 0 {
		return b
	}
	return appendArray(append(b, key...), ss, func(s *string, b []byte) []byte { return jsonenc.AppendString(b, *s) })
}

// appendArray appends xs as a JSON array, each element as its appendJSON writes it.
func appendArray[T any](b []byte, xs []T, appendJSON func(*T, []byte) []byte) []byte {
	b = append(b, '[')
	for i := range xs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSON(&xs[i], b)
	}
	return append(b, ']')
}
