package record

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// DecodeConfig bounds what a valid record looks like.
type DecodeConfig struct {
	// MaxFuture is how far a record's device time may be ahead of the time it reached Kafka.
	MaxFuture time.Duration `yaml:"max_future"`
	// MaxAge is how far a record's device time may be behind the time it reached Kafka.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxRecordBytes is the largest record accepted.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// MaxSpeedKmh is the highest reported speed accepted.
	MaxSpeedKmh float64 `yaml:"max_speed_kmh"`
	// MaxLoadKg is the highest weighed load accepted.
	MaxLoadKg float64 `yaml:"max_load_kg"`
}

// WithDefaults returns c with zero fields set to their defaults.
func (c DecodeConfig) WithDefaults() DecodeConfig {
	if c.MaxFuture == 0 {
		c.MaxFuture = 5 * time.Minute
	}
	if c.MaxAge == 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = 64 << 10
	}
	if c.MaxSpeedKmh == 0 {
		c.MaxSpeedKmh = 200
	}
	if c.MaxLoadKg == 0 {
		c.MaxLoadKg = 200_000
	}
	return c
}

// Validate reports the first invalid field.
func (c DecodeConfig) Validate() error {
	switch {
	case c.MaxFuture < 0:
		return fmt.Errorf("decode.max_future must not be negative, got %s", c.MaxFuture)
	case c.MaxAge <= 0:
		return fmt.Errorf("decode.max_age must be positive, got %s", c.MaxAge)
	case c.MaxRecordBytes < 256 || c.MaxRecordBytes > 16<<20:
		return fmt.Errorf("decode.max_record_bytes must be within [256, 16 MiB], got %d", c.MaxRecordBytes)
	case c.MaxSpeedKmh <= 0:
		return fmt.Errorf("decode.max_speed_kmh must be positive, got %g", c.MaxSpeedKmh)
	case c.MaxLoadKg <= 0:
		return fmt.Errorf("decode.max_load_kg must be positive, got %g", c.MaxLoadKg)
	}
	return nil
}

// Decoder decodes and validates wire records. It keeps a scratch buffer between calls and does
// not keep the caller's bytes; a Decoder is not safe for concurrent use.
type Decoder struct {
	cfg       DecodeConfig
	normalize func(string) string
	sc        objectScanner
	// names interns the ids that repeat from record to record (plates, cameras, kinds): a fleet
	// has a bounded set, so steady state decodes them without allocating. Cleared when full.
	names map[string]string
	// plates maps a vehicle_id as sent to its normalised plate and number, so that a known
	// vehicle costs one lookup: no normalising, no numbering. Cleared when full, like names.
	plates  map[string]vehicleName
	numbers *PlateNumbers // nil: fixes carry no VehicleNo
	// last is the last vehicle_id decoded, as sent, and its name: a record's key is its
	// vehicle_id, which CheckKey then finds without looking it up again.
	last     []byte
	lastName vehicleName
}

type vehicleName struct {
	plate string // normalised; "" when nothing was left of it
	no    uint32
}

// maxInterned bounds the interned names (about 100 bytes each).
const maxInterned = 1 << 20

// NewDecoder returns a decoder for cfg (defaults applied). normalize turns a plate as sent into its
// canonical form (see city.NormalizePlate); nil keeps plates as sent.
func NewDecoder(cfg DecodeConfig, normalize func(string) string) *Decoder {
	return &Decoder{cfg: cfg.WithDefaults(), normalize: normalize}
}

// NumberPlates makes d give every fix its plate's number in n (Fix.VehicleNo). The decoders of a
// consumer share one numbering.
func (d *Decoder) NumberPlates(n *PlateNumbers) { d.numbers = n }

// The longest id accepted, in bytes. Chinese plates are 7–8 runes (up to 24 bytes).
const maxIDBytes = 64

func reject(r Reason, format string, args ...any) error {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// fields collects which members were present.
type fields uint32

func (f *fields) set(bit fields)     { *f |= bit }
func (f fields) has(bit fields) bool { return f&bit != 0 }

const (
	fVehicle fields = 1 << iota
	fTS
	fLat
	fLon
	fSpeed
	fHeading
	fEventID
	fKind
	fSource
	fLoad
	fCover
	fConfidence
	fOfficer
	fAvailable
)

func typeError(key string, want valueKind, got *jsonValue) error {
	return reject(ReasonMalformed, "field %q must be a %s, got %s", key, want, got.kind)
}

func (d *Decoder) str(key string, v *jsonValue) (string, error) {
	if v.kind != kindString {
		return "", typeError(key, kindString, v)
	}
	return string(v.str), nil
}

// name is id for values that repeat across records: the same string is returned for the same
// bytes, allocated once.
func (d *Decoder) name(key string, v *jsonValue) (string, error) {
	if v.kind == kindString {
		if s, ok := d.names[string(v.str)]; ok { // a map lookup with string(bytes) does not allocate
			return s, nil
		}
	}
	s, err := d.id(key, v)
	if err != nil {
		return "", err
	}
	return d.intern(s), nil
}

// word is str for values from a small vocabulary (kind): interned like name.
func (d *Decoder) word(key string, v *jsonValue) (string, error) {
	if v.kind == kindString {
		if s, ok := d.names[string(v.str)]; ok {
			return s, nil
		}
	}
	s, err := d.str(key, v)
	if err != nil {
		return "", err
	}
	return d.intern(s), nil
}

func (d *Decoder) intern(s string) string {
	if d.names == nil || len(d.names) >= maxInterned {
		d.names = make(map[string]string)
	}
	d.names[s] = s
	return s
}

func (d *Decoder) id(key string, v *jsonValue) (string, error) {
	if v.kind != kindString {
		return "", typeError(key, kindString, v)
	}
	if len(v.str) > maxIDBytes {
		return "", reject(ReasonInvalidID, "field %q is %d bytes long, the limit is %d", key, len(v.str), maxIDBytes)
	}
	for i := 0; i < len(v.str); {
		r, n := utf8.DecodeRune(v.str[i:])
		if r == utf8.RuneError || unicode.IsControl(r) {
			return "", reject(ReasonInvalidID, "field %q has an invalid or control character at byte %d", key, i)
		}
		i += n
	}
	return string(v.str), nil
}

func float(key string, v *jsonValue) (float64, error) {
	if v.kind != kindNumber {
		return 0, typeError(key, kindNumber, v)
	}
	if f, ok := fastFloat(v.raw); ok {
		return f, nil
	}
	f, err := strconv.ParseFloat(string(v.raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, reject(ReasonInvalidNumber, "field %q: %.40s is not a finite number", key, v.raw)
	}
	return f, nil
}

func integer(key string, v *jsonValue) (int64, error) {
	if v.kind != kindNumber {
		return 0, typeError(key, kindNumber, v)
	}
	if n, ok := fastInt(v.raw); ok {
		return n, nil
	}
	n, err := strconv.ParseInt(string(v.raw), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(v.raw), 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return 0, reject(ReasonInvalidNumber, "field %q: %.40s is not an integer", key, v.raw)
		}
		n = int64(f)
	}
	return n, nil
}

func boolean(key string, v *jsonValue) (bool, error) {
	switch v.kind {
	case kindBool:
		return v.b, nil
	case kindNumber: // terminals often send 0/1
		if len(v.raw) == 1 && (v.raw[0] == '0' || v.raw[0] == '1') {
			return v.raw[0] == '1', nil
		}
	}
	return false, typeError(key, kindBool, v)
}

func inRange(key string, x, lo, hi float64) error {
	if x < lo || x > hi {
		return reject(ReasonOutOfRange, "field %q: %g is out of range [%g, %g]", key, x, lo, hi)
	}
	return nil
}

// checkTime validates a device time in Unix milliseconds against ref, the time the record
// reached Kafka.
func (d *Decoder) checkTime(ms int64, ref time.Time) (time.Time, error) {
	if ms < 100_000_000_000 && ms > -100_000_000_000 {
		return time.Time{}, reject(ReasonStaleTimestamp, "field \"ts\": %d looks like Unix seconds or is near 1970; the contract is Unix epoch milliseconds", ms)
	}
	t := time.UnixMilli(ms).UTC()
	if t.After(ref.Add(d.cfg.MaxFuture)) {
		return t, reject(ReasonFutureTimestamp, "field \"ts\": %s is %s ahead of the record's arrival at %s (limit %s)",
			t.Format(time.RFC3339Nano), t.Sub(ref).Round(time.Second), ref.UTC().Format(time.RFC3339), d.cfg.MaxFuture)
	}
	if t.Before(ref.Add(-d.cfg.MaxAge)) {
		return t, reject(ReasonStaleTimestamp, "field \"ts\": %s is %s older than the record's arrival at %s (limit %s)",
			t.Format(time.RFC3339Nano), ref.Sub(t).Round(time.Second), ref.UTC().Format(time.RFC3339), d.cfg.MaxAge)
	}
	return t, nil
}

func checkPosition(lat, lon float64) error {
	if err := inRange("lat", lat, -90, 90); err != nil {
		return err
	}
	if err := inRange("lon", lon, -180, 180); err != nil {
		return err
	}
	if lat == 0 && lon == 0 {
		return reject(ReasonOutOfRange, "fields \"lat\", \"lon\": 0,0 is a terminal's no-fix value, not a position")
	}
	return nil
}

// position holds the members every record type shares: device time and coordinates.
type position struct {
	have     fields
	ms       int64
	lat, lon float64
}

// member decodes ts, lat or lon into p; it reports false for any other member.
func (p *position) member(key []byte, v *jsonValue) (bool, error) {
	var err error
	switch string(key) {
	case "ts":
		p.ms, err = integer("ts", v)
		p.have.set(fTS)
	case "lat":
		p.lat, err = float("lat", v)
		p.have.set(fLat)
	case "lon":
		p.lon, err = float("lon", v)
		p.have.set(fLon)
	default:
		return false, nil
	}
	return true, err
}

// required names a field that must be present.
type required struct {
	bit  fields
	name string
}

// The required fields of each record type, in the order they are reported when missing.
var (
	fixRequired     = [...]required{{fVehicle, "vehicle_id"}, {fTS, "ts"}, {fLat, "lat"}, {fLon, "lon"}}
	eventRequired   = [...]required{{fEventID, "event_id"}, {fVehicle, "vehicle_id"}, {fTS, "ts"}, {fKind, "kind"}, {fSource, "source"}}
	officerRequired = [...]required{{fOfficer, "officer_id"}, {fTS, "ts"}, {fLat, "lat"}, {fLon, "lon"}}
)

func missing(have fields, req []required) error {
	for _, r := range req {
		if !have.has(r.bit) {
			return reject(ReasonMissingField, "required field %q is missing", r.name)
		}
	}
	return nil
}

func (d *Decoder) size(value []byte) error {
	if len(value) > d.cfg.MaxRecordBytes {
		return reject(ReasonTooLarge, "record is %d bytes, the limit is %d", len(value), d.cfg.MaxRecordBytes)
	}
	if len(value) == 0 {
		return reject(ReasonMalformed, "record is empty")
	}
	return nil
}

// vehicle returns the normalised plate of the vehicle_id in v and its number. The plate is ""
// when normalising left nothing of it: the caller rejects that once the required fields are
// known to be there, as plate does.
func (d *Decoder) vehicle(v *jsonValue) (string, uint32, error) {
	if v.kind == kindString {
		if n, ok := d.plates[string(v.str)]; ok {
			d.last, d.lastName = append(d.last[:0], v.str...), n
			return n.plate, n.no, nil
		}
	}
	sent, err := d.id("vehicle_id", v)
	if err != nil {
		return "", 0, err
	}
	n := vehicleName{plate: sent}
	if d.normalize != nil {
		n.plate = d.normalize(sent)
	}
	if d.numbers != nil {
		n.no = d.numbers.Number(n.plate)
	}
	if d.plates == nil || len(d.plates) >= maxInterned {
		d.plates = make(map[string]vehicleName)
	}
	d.plates[sent] = n
	d.last, d.lastName = append(d.last[:0], sent...), n
	return n.plate, n.no, nil
}

// Warm looks up the vehicles that records keyed by keys (each its vehicle_id, as producers key
// them) are of, so that decoding them next finds their plates in the cache. A fleet's plates are
// too many to stay there, and a record's lookup, amid the parsing of its JSON, waits for each
// cache miss in turn; looked up together, before the records are decoded, the misses overlap.
// It returns what it read, to be kept where the compiler cannot drop the lookups.
func (d *Decoder) Warm(keys [][]byte) (read uint32) {
	for _, k := range keys {
		if n, ok := d.plates[string(k)]; ok {
			read += n.no + uint32(len(n.plate))
		}
	}
	return read
}

// CheckKey rejects a record whose Kafka key names another vehicle than its body's vehicle_id
// (plate, as decoded: normalised), with ReasonKeyMismatch. Records are partitioned by key and a
// vehicle's state lives with its partition, so a fix keyed 粤B00001 with the body of 粤B00004
// would be judged as 粤B00004 on 粤B00001's partition: out of order with 粤B00004's own fixes,
// its episodes split between the instances owning the two partitions. The producer is wrong,
// and which of the two it meant cannot be told: the record is dead-lettered, not judged. A
// record without a key is not checked (nothing to disagree with).
func (d *Decoder) CheckKey(key []byte, plate string) error {
	if len(key) == 0 {
		return nil
	}
	n, ok := d.lastName, bytes.Equal(key, d.last)
	if !ok {
		n, ok = d.plates[string(key)]
	}
	if !ok {
		n.plate = string(key)
		if d.normalize != nil {
			n.plate = d.normalize(n.plate)
		}
	}
	if n.plate == plate {
		return nil
	}
	return reject(ReasonKeyMismatch, "record key %.40q is vehicle %.40q but its vehicle_id is %.40q", key, n.plate, plate)
}

// plate rejects an empty normalised plate.
func plate(s string) (string, error) {
	if s == "" {
		return "", reject(ReasonMissingField, "required field \"vehicle_id\" is empty")
	}
	return s, nil
}

// DecodeFix decodes a muck.gps record into f. ref is when the record reached Kafka (its
// timestamp), against which device time is judged.
func (d *Decoder) DecodeFix(value []byte, ref time.Time, f *Fix) error {
	if err := d.size(value); err != nil {
		return err
	}
	*f = Fix{}
	var have fields
	var pos position
	d.sc.reset(value)
	err := d.sc.each(func(key []byte, v *jsonValue) error {
		if v.kind == kindNull {
			return nil // null means absent
		}
		if ok, err := pos.member(key, v); ok {
			return err
		}
		var err error
		switch string(key) {
		case "vehicle_id":
			f.VehicleID, f.VehicleNo, err = d.vehicle(v)
			have.set(fVehicle)
		case "speed_kmh":
			var s float64
			if s, err = float("speed_kmh", v); err == nil {
				if err = inRange("speed_kmh", s, 0, d.cfg.MaxSpeedKmh); err == nil {
					f.SpeedKmh, f.HasSpeed = float32(s), true
				}
			}
		case "heading":
			var h float64
			if h, err = float("heading", v); err == nil {
				if err = inRange("heading", h, 0, 360); err == nil {
					f.Heading, f.HasHeading = float32(h), true
				}
			}
		case "acc":
			f.ACC, err = boolean("acc", v)
		case "lifted":
			f.Lifted, err = boolean("lifted", v)
		case "alarm":
			var a int64
			if a, err = integer("alarm", v); err == nil {
				if a < 0 || a > math.MaxUint32 {
					err = reject(ReasonOutOfRange, "field \"alarm\": %d is not a 32-bit set of alarm flags", a)
				}
				f.Alarm = uint32(a)
			}
		case "event_id":
			f.FixID, err = d.id("event_id", v)
		}
		return err
	})
	if err != nil {
		return err
	}
	have |= pos.have
	f.Lat, f.Lon = pos.lat, pos.lon
	if err := missing(have, fixRequired[:]); err != nil {
		return err
	}
	if f.VehicleID, err = plate(f.VehicleID); err != nil {
		return err
	}
	if err := checkPosition(f.Lat, f.Lon); err != nil {
		return err
	}
	f.Time, err = d.checkTime(pos.ms, ref)
	return err
}

// DeriveFixID is the id of a fix sent without event_id: the vehicle and its device time (Unix
// ms), so that a re-sent fix gets the same id and is stored once.
func DeriveFixID(vehicle string, ms int64) string {
	return string(appendDerivedID(make([]byte, 0, len(vehicle)+21), vehicle, ms))
}

func appendDerivedID(b []byte, vehicle string, ms int64) []byte {
	b = append(b, vehicle...)
	b = append(b, '@')
	return strconv.AppendInt(b, ms, 10)
}

// DecodeEvent decodes a muck.events record into e.
func (d *Decoder) DecodeEvent(value []byte, ref time.Time, e *Event) error {
	if err := d.size(value); err != nil {
		return err
	}
	*e = Event{Confidence: 1}
	var have fields
	var pos position
	var kind string
	d.sc.reset(value)
	err := d.sc.each(func(key []byte, v *jsonValue) error {
		if v.kind == kindNull {
			return nil
		}
		if ok, err := pos.member(key, v); ok {
			return err
		}
		var err error
		switch string(key) {
		case "event_id":
			e.EventID, err = d.id("event_id", v)
			have.set(fEventID)
		case "vehicle_id":
			e.VehicleID, _, err = d.vehicle(v)
			have.set(fVehicle)
		case "kind":
			kind, err = d.word("kind", v)
			have.set(fKind)
		case "source":
			e.Source, err = d.name("source", v)
			have.set(fSource)
		case "site_id":
			e.SiteID, err = d.name("site_id", v)
		case "load_kg":
			if e.LoadKg, err = float("load_kg", v); err == nil {
				err = inRange("load_kg", e.LoadKg, 0, d.cfg.MaxLoadKg)
				e.HasLoad = true
			}
		case "cover_closed":
			e.CoverClosed, err = boolean("cover_closed", v)
			e.HasCover = true
		case "confidence":
			var c float64
			if c, err = float("confidence", v); err == nil {
				err = inRange("confidence", c, 0, 1)
				e.Confidence = float32(c)
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	have |= pos.have
	e.Lat, e.Lon = pos.lat, pos.lon
	if err := missing(have, eventRequired[:]); err != nil {
		return err
	}
	if e.EventID == "" {
		return reject(ReasonMissingField, "required field \"event_id\" is empty")
	}
	if e.Kind = ParseEventKind(kind); e.Kind == KindUnknown {
		return reject(ReasonUnknownKind, "field \"kind\": %.40q is not one of gate_entry, gate_exit, weigh, cover_open, spillage, plate_capture, muddy_wheels", kind)
	}
	if e.VehicleID, err = plate(e.VehicleID); err != nil {
		return err
	}
	switch {
	case have.has(fLat) != have.has(fLon):
		return reject(ReasonMissingField, "fields \"lat\" and \"lon\" must come together")
	case have.has(fLat):
		if err := checkPosition(e.Lat, e.Lon); err != nil {
			return err
		}
		e.HasPos = true
	}
	if e.Kind == KindWeigh && !e.HasLoad {
		return reject(ReasonMissingField, "a weigh event needs field \"load_kg\"")
	}
	if e.Time, err = d.checkTime(pos.ms, ref); err != nil {
		return err
	}
	return nil
}

// DecodeOfficer decodes a muck.officers record into o.
func (d *Decoder) DecodeOfficer(value []byte, ref time.Time, o *OfficerPosition) error {
	if err := d.size(value); err != nil {
		return err
	}
	*o = OfficerPosition{Available: true}
	var have fields
	var pos position
	d.sc.reset(value)
	err := d.sc.each(func(key []byte, v *jsonValue) error {
		if v.kind == kindNull {
			return nil
		}
		if ok, err := pos.member(key, v); ok {
			return err
		}
		var err error
		switch string(key) {
		case "officer_id":
			o.OfficerID, err = d.name("officer_id", v)
			have.set(fOfficer)
		case "available":
			o.Available, err = boolean("available", v)
		}
		return err
	})
	if err != nil {
		return err
	}
	have |= pos.have
	o.Lat, o.Lon = pos.lat, pos.lon
	if err := missing(have, officerRequired[:]); err != nil {
		return err
	}
	if o.OfficerID == "" {
		return reject(ReasonMissingField, "required field \"officer_id\" is empty")
	}
	if err := checkPosition(o.Lat, o.Lon); err != nil {
		return err
	}
	if o.Time, err = d.checkTime(pos.ms, ref); err != nil {
		return err
	}
	return nil
}
