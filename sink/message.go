package sink

import (
	"encoding/base64"
	"encoding/json"
	"unicode/utf8"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
)

// EncodeChange returns the message of change c on the alerts topic (muck.alerts), keyed by
// vehicle id so that one vehicle's changes stay in order: the change's own JSON
// (detectors.Change.AppendJSON).
func EncodeChange(c detectors.Change) []byte {
	return c.AppendJSON(make([]byte, 0, c.JSONSize()))
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
