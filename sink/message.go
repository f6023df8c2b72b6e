package sink

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// AlertMessage is the JSON of one alert change on the alerts topic (muck.alerts), keyed by
// vehicle id so that one vehicle's changes stay in order. It carries the alert's snapshot after
// the change; times are Unix milliseconds of event time, and end_ms is 0 while the alert is open.
type AlertMessage struct {
	Change    string  `json:"change"` // opened, escalated, updated or resolved
	AlertID   string  `json:"alert_id"`
	Rule      string  `json:"rule"`
	Severity  string  `json:"severity"`
	Action    string  `json:"action"` // what a supervisor does: notify_grid_staff or dispatch_enforcement
	Phase     string  `json:"phase"`
	Status    string  `json:"status"`
	VehicleID string  `json:"vehicle_id"`
	Company   string  `json:"company"`
	PermitID  string  `json:"permit_id"`
	Place     string  `json:"place"`
	District  string  `json:"district"`
	StartMs   int64   `json:"start_ms"`
	EndMs     int64   `json:"end_ms"`
	Lat       float64 `json:"lat"`
	Lon       float64 `json:"lon"`
	Value     float64 `json:"value"`
	Limit     float64 `json:"limit"`
	Evidence  string  `json:"evidence"`
	Version   uint64  `json:"version"`
	UpdatedMs int64   `json:"updated_ms"`
}

// NewAlertMessage returns the message of change c.
func NewAlertMessage(c detectors.Change) AlertMessage {
	a := &c.Alert
	return AlertMessage{
		Change: string(c.Kind), AlertID: a.ID, Rule: string(a.Rule), Severity: string(a.Severity),
		Action: a.Severity.Action(), Phase: string(a.Phase), Status: string(a.Status), VehicleID: a.VehicleID, Company: a.Company,
		PermitID: a.PermitID, Place: a.Place, District: a.District,
		StartMs: unixMilli(a.Start), EndMs: unixMilli(a.End), Lat: a.Lat, Lon: a.Lon,
		Value: a.Value, Limit: a.Limit, Evidence: a.Evidence, Version: a.Version, UpdatedMs: unixMilli(a.Updated),
	}
}

// EncodeChange returns the JSON AlertMessage of c, as sent on the alerts topic.
func EncodeChange(c detectors.Change) []byte {
	a := &c.Alert
	// the field names, numbers and punctuation take about 300 bytes
	n := 320 + len(c.Kind) + len(a.ID) + len(a.Rule) + len(a.Severity) + 20 + len(a.Phase) + len(a.Status) +
		len(a.VehicleID) + len(a.Company) + len(a.PermitID) + len(a.Place) + len(a.District) + len(a.Evidence)
	return AppendChange(make([]byte, 0, n), c)
}

// AppendChange appends the JSON AlertMessage of c to dst. The output is what encoding/json makes
// of NewAlertMessage(c) without HTML escaping, except that a NaN or infinite number, which
// encoding/json refuses, is written as null.
func AppendChange(dst []byte, c detectors.Change) []byte {
	a := &c.Alert
	b := append(dst, `{"change":`...)
	b = appendJSONString(b, string(c.Kind))
	b = append(b, `,"alert_id":`...)
	b = appendJSONString(b, a.ID)
	b = append(b, `,"rule":`...)
	b = appendJSONString(b, string(a.Rule))
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, string(a.Severity))
	b = append(b, `,"action":`...)
	b = appendJSONString(b, a.Severity.Action())
	b = append(b, `,"phase":`...)
	b = appendJSONString(b, string(a.Phase))
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(a.Status))
	b = append(b, `,"vehicle_id":`...)
	b = appendJSONString(b, a.VehicleID)
	b = append(b, `,"company":`...)
	b = appendJSONString(b, a.Company)
	b = append(b, `,"permit_id":`...)
	b = appendJSONString(b, a.PermitID)
	b = append(b, `,"place":`...)
	b = appendJSONString(b, a.Place)
	b = append(b, `,"district":`...)
	b = appendJSONString(b, a.District)
	b = append(b, `,"start_ms":`...)
	b = strconv.AppendInt(b, unixMilli(a.Start), 10)
	b = append(b, `,"end_ms":`...)
	b = strconv.AppendInt(b, unixMilli(a.End), 10)
	b = append(b, `,"lat":`...)
	b = appendJSONFloat(b, a.Lat)
	b = append(b, `,"lon":`...)
	b = appendJSONFloat(b, a.Lon)
	b = append(b, `,"value":`...)
	b = appendJSONFloat(b, a.Value)
	b = append(b, `,"limit":`...)
	b = appendJSONFloat(b, a.Limit)
	b = append(b, `,"evidence":`...)
	b = appendJSONString(b, a.Evidence)
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, a.Version, 10)
	b = append(b, `,"updated_ms":`...)
	b = strconv.AppendInt(b, unixMilli(a.Updated), 10)
	return append(b, '}')
}

// appendJSONFloat appends f as encoding/json formats a float64, and null for NaN and ±Inf.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendJSONString appends s as a JSON string, escaping as encoding/json does without HTML
// escaping: quotes, backslashes and control characters are escaped, invalid UTF-8 becomes
// U+FFFD, and U+2028 and U+2029 are escaped for JavaScript.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// DeadLetterMessage is the JSON of one rejected record on the dead-letter topic (muck.dlq),
// keyed by the record's original key, with the reason also in the muckwatch-reason header.
type DeadLetterMessage struct {
	Topic      string `json:"topic"`
	Partition  int32  `json:"partition"`
	Offset     int64  `json:"offset"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail"`
	Key        string `json:"key"`
	ValueB64   string `json:"value_b64"`       // the original bytes, base64 (standard, padded)
	Value      string `json:"value,omitempty"` // the original bytes when they are valid UTF-8
	ReceivedMs int64  `json:"received_ms"`
	// Truncated: the record was larger than MaxDeadLetterValue and only its first bytes are here
	// (the whole record is in ClickHouse's rejects table); ValueBytes is its full size.
	Truncated  bool `json:"truncated,omitempty"`
	ValueBytes int  `json:"value_bytes"`
}

// MaxDeadLetterValue bounds the original bytes a dead letter carries, so that a huge bad record
// cannot make a dead letter the broker refuses (message.max.bytes, 1 MB by default) and stall the
// pipeline.
const MaxDeadLetterValue = 64 << 10

// NewDeadLetterMessage returns the message of reject r.
func NewDeadLetterMessage(r record.Reject) DeadLetterMessage {
	v := r.Value
	m := DeadLetterMessage{
		Topic: r.Src.Topic, Partition: r.Src.Partition, Offset: r.Src.Offset,
		Reason: string(r.Reason), Detail: r.Detail, Key: string(r.Key),
		ReceivedMs: unixMilli(r.Received), ValueBytes: len(v),
	}
	if len(v) > MaxDeadLetterValue {
		v, m.Truncated = v[:MaxDeadLetterValue], true
	}
	m.ValueB64 = base64.StdEncoding.EncodeToString(v)
	if utf8.Valid(v) {
		m.Value = string(v)
	}
	if len(r.Key) > MaxDeadLetterValue {
		m.Key, m.Truncated = string(r.Key[:MaxDeadLetterValue]), true
	}
	return m
}

// EncodeReject returns the JSON DeadLetterMessage of r, as sent on the dead-letter topic.
func EncodeReject(r record.Reject) []byte {
	b, err := json.Marshal(NewDeadLetterMessage(r))
	if err != nil { // a struct of strings and integers always marshals
		panic("sink: cannot encode a dead letter: " + err.Error())
	}
	return b
}
