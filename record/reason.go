package record

import "errors"

// Reason is why a record was rejected. Each reason is counted and sent to the dead-letter topic.
type Reason string

// The reasons a record is rejected.
const (
	ReasonMalformed       Reason = "malformed_json"   // not a JSON object, truncated, wrong types
	ReasonMissingField    Reason = "missing_field"    // a required field is absent or empty
	ReasonOutOfRange      Reason = "out_of_range"     // coordinates, speed, heading, load or confidence out of range
	ReasonInvalidNumber   Reason = "invalid_number"   // NaN or Inf
	ReasonFutureTimestamp Reason = "future_timestamp" // device time too far ahead of the receive time
	ReasonStaleTimestamp  Reason = "stale_timestamp"  // device time too far in the past
	ReasonUnknownKind     Reason = "unknown_kind"     // event kind not in the contract
	ReasonInvalidID       Reason = "invalid_id"       // plate or id not valid UTF-8, too long, or with control characters
	ReasonTooLarge        Reason = "too_large"        // record larger than the configured limit
	ReasonKeyMismatch     Reason = "key_mismatch"     // record key disagrees with vehicle_id
	ReasonUnknownTopic    Reason = "unknown_topic"    // a record from a topic this consumer does not decode
)

// AllReasons lists every reason, for metrics initialisation and documentation.
func AllReasons() []Reason {
	return []Reason{ReasonMalformed, ReasonMissingField, ReasonOutOfRange, ReasonInvalidNumber,
		ReasonFutureTimestamp, ReasonStaleTimestamp, ReasonUnknownKind, ReasonInvalidID, ReasonTooLarge,
		ReasonKeyMismatch, ReasonUnknownTopic}
}

// RejectError is the error a decoder returns for bad input: a reason and a message saying what
// was wrong and where.
type RejectError struct {
	Reason Reason
	Detail string
}

func (e *RejectError) Error() string { return string(e.Reason) + ": " + e.Detail }

// ReasonOf returns the reason carried by err, or ReasonMalformed for any other error.
func ReasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return ReasonMalformed
}
