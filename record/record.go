// Package record is muckwatch's wire contract: the GPS fixes, camera/sensor events and officer
// positions that arrive on Kafka, their decoders and validation, and the named reasons a bad
// record is rejected for (bound for the dead-letter topic). It is pure: no Kafka, no I/O, so the
// consumer, the detectors, the outputs and the API share one model of each record.
package record

import "time"

// Topics names the input topics, by the kind of record each carries: fixes, camera/sensor
// events, officers' positions. Every topic is keyed by vehicle plate (officer id for officers).
type Topics struct {
	GPS      string `yaml:"gps"`
	Events   string `yaml:"events"`
	Officers string `yaml:"officers"`
}

// Source says where a record came from in Kafka; it travels with every decoded record so that a
// downstream reject or a stored row can point back at the exact offset.
type Source struct {
	Shard
	Offset int64
	Behind int64 // records left in the partition when this one was read (its lag)
}

// Shard is the input a record was read from: a topic's partition. Records of one shard are read
// in order; the detectors keep a vehicle's state with the shard its records come from, and the
// pipeline tracks event time per shard.
type Shard struct {
	Topic     string
	Partition int32
}

// Fix is one GPS fix from a truck terminal, decoded and validated. Coordinates are WGS-84.
type Fix struct {
	FixID      string // event_id from the wire; empty for a fix sent without one, whose id is derived (ID)
	VehicleID  string // normalised plate, e.g. 粤B12345
	VehicleNo  uint32 // the plate's number in the consumer's PlateNumbers (0: none); a hint, see PlateNumbers
	Time       time.Time
	Lat, Lon   float64
	SpeedKmh   float32 // valid only if HasSpeed
	HasSpeed   bool
	Heading    float32 // degrees clockwise from north, valid only if HasHeading
	HasHeading bool
	ACC        bool   // ignition on
	Lifted     bool   // dump body raised
	Alarm      uint32 // terminal alarm bits (JT/T 808)
	Src        Source
}

// ID returns the fix's id: its event_id, else the id derived from its vehicle and device time
// (DeriveFixID). The decoder leaves a derived id underived, so that decoding a fix allocates
// nothing for it; AppendID writes it where it is needed.
func (f *Fix) ID() string {
	if f.FixID != "" {
		return f.FixID
	}
	return DeriveFixID(f.VehicleID, f.Time.UnixMilli())
}

// AppendID appends the fix's id (ID) to b.
func (f *Fix) AppendID(b []byte) []byte {
	if f.FixID != "" {
		return append(b, f.FixID...)
	}
	return appendDerivedID(b, f.VehicleID, f.Time.UnixMilli())
}

// EventKind is the kind of a camera- or sensor-derived event.
type EventKind uint8

// The event kinds of the wire contract.
const (
	KindUnknown EventKind = iota
	KindGateEntry
	KindGateExit
	KindWeigh
	KindCoverOpen
	KindSpillage
	KindPlateCapture
	KindMuddyWheels
)

var eventKindNames = [...]string{"unknown", "gate_entry", "gate_exit", "weigh", "cover_open", "spillage", "plate_capture", "muddy_wheels"}

// String returns the wire name of k.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "unknown"
}

// ParseEventKind returns the kind with wire name s, or KindUnknown.
func ParseEventKind(s string) EventKind {
	for i, n := range eventKindNames {
		if i > 0 && n == s {
			return EventKind(i)
		}
	}
	return KindUnknown
}

// Event is a camera- or sensor-derived event: a gate camera seeing a truck enter or exit a site,
// a weigh station or load sensor reading, a road camera seeing an open cover or spillage.
type Event struct {
	EventID     string
	VehicleID   string
	Time        time.Time
	Kind        EventKind
	Source      string // camera or station id
	SiteID      string // optional
	Lat, Lon    float64
	HasPos      bool
	LoadKg      float64
	HasLoad     bool
	CoverClosed bool
	HasCover    bool
	Confidence  float32 // 0..1; 1 when absent
	Src         Source
}

// OfficerPosition is an enforcement officer's position from a handheld.
type OfficerPosition struct {
	OfficerID string
	Time      time.Time
	Lat, Lon  float64
	Available bool
	Src       Source
}

// Reject is a record that could not be accepted, with its original bytes and the reason. It is
// what the dead-letter topic and the rejects table receive.
type Reject struct {
	Src      Source
	Key      []byte
	Value    []byte
	Reason   Reason
	Detail   string // what exactly was wrong and where, e.g. `field "lat": 123.4 is out of range [-90, 90]`
	Received time.Time
}
