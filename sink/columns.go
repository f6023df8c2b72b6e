package sink

// The writer's side of the table descriptions (package tables): for every column of a table
// sink writes, how its value is got from a record. bind orders them as the description does, so
// the INSERT column lists come from the description.

import (
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/muckwatch/muckwatch/detectors"
	"github.com/muckwatch/muckwatch/record"
	"github.com/muckwatch/muckwatch/tables"
)

// colSpec is one column of a table: its name, and how to build the column's values from the
// rows, in a buffer that is reused from insert to insert.
type colSpec[T any] struct {
	name  string
	build func(rows []T, now int64, buf any) any // returns the buffer, built: a []E for E the column's Go type unless values is set
	// values returns what clickhouse-go appends from a built buffer (a []E); nil: the buffer
	// itself.
	values func(buf any) any
	clear  func(buf any) // drops references held by the buffer
}

// valuesOf returns the values of a buffer cs built.
func (cs *colSpec[T]) valuesOf(buf any) any {
	if cs.values == nil {
		return buf
	}
	return cs.values(buf)
}

// col is a column whose value is get(row).
func col[T, E any](name string, get func(r *T) E) colSpec[T] {
	return colSpec[T]{
		name: name,
		build: func(rows []T, _ int64, buf any) any {
			out, _ := buf.([]E)
			out = out[:0]
			for i := range rows {
				out = append(out, get(&rows[i]))
			}
			return out
		},
		clear: clearBuf[E],
	}
}

// nowCol is a column holding the time of the insert in Unix seconds (ingested_at).
func nowCol[T any](name string) colSpec[T] {
	return colSpec[T]{
		name: name,
		build: func(rows []T, now int64, buf any) any {
			out, _ := buf.([]int64)
			out = out[:0]
			for range rows {
				out = append(out, now)
			}
			return out
		},
		clear: clearBuf[int64],
	}
}

func clearBuf[E any](buf any) {
	b, _ := buf.([]E)
	clear(b)
}

// bind returns the specs of table t's columns in t's order. Every column of t must have exactly
// one spec and every spec must name a column of t: a mismatch is a programming error, and panics
// when the writer is made (in the first test that opens one).
func bind[T any](t *tables.Table, specs ...colSpec[T]) []colSpec[T] {
	byName := make(map[string]colSpec[T], len(specs))
	for _, cs := range specs {
		if _, ok := t.Column(cs.name); !ok {
			panic(fmt.Sprintf("sink: %s has no column %q to write", t.Name, cs.name))
		}
		if _, dup := byName[cs.name]; dup {
			panic(fmt.Sprintf("sink: column %s.%s is written twice", t.Name, cs.name))
		}
		byName[cs.name] = cs
	}
	out := make([]colSpec[T], 0, len(t.Columns))
	for _, c := range t.Columns {
		cs, ok := byName[c.Name]
		if !ok {
			panic(fmt.Sprintf("sink: no value is written to column %s.%s", t.Name, c.Name))
		}
		out = append(out, cs)
	}
	return out
}

// clampUnix returns t in Unix seconds within the range of ClickHouse's DateTime (UInt32): the
// zero time (an open alert's end) and anything before 1970 become 0.
func clampUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return min(max(t.Unix(), 0), 1<<32-1)
}

// unixMilli returns t in Unix milliseconds, and 0 for the zero time.
func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func positionColumns() []colSpec[record.Fix] {
	type r = record.Fix
	return bind(tables.Positions,
		fixIDCol(),
		col("vehicle_id", func(f *r) string { return f.VehicleID }),
		col("ts", func(f *r) int64 { return clampUnix(f.Time) }),
		col("ts_ms", func(f *r) int64 { return unixMilli(f.Time) }),
		col("lat", func(f *r) float64 { return f.Lat }),
		col("lon", func(f *r) float64 { return f.Lon }),
		col("speed_kmh", func(f *r) float32 { return f.SpeedKmh }),
		col("has_speed", func(f *r) uint8 { return u8(f.HasSpeed) }),
		col("heading", func(f *r) float32 { return f.Heading }),
		col("has_heading", func(f *r) uint8 { return u8(f.HasHeading) }),
		col("acc", func(f *r) uint8 { return u8(f.ACC) }),
		col("lifted", func(f *r) uint8 { return u8(f.Lifted) }),
		col("alarm", func(f *r) uint32 { return f.Alarm }),
		col("topic", func(f *r) string { return f.Src.Topic }),
		col("kafka_partition", func(f *r) int32 { return f.Src.Partition }),
		col("kafka_offset", func(f *r) int64 { return f.Src.Offset }),
		nowCol[r]("ingested_at"),
	)
}

// fixIDs is the fix_id column's buffer. The id of a fix sent without event_id is derived here
// (record.Fix.AppendID) into an arena that every insert through the buffer reuses, rather than
// into a string of its own when the fix is decoded; ids point into the arena, and clickhouse-go
// copies them into its column when they are appended, before the arena is written again.
type fixIDs struct {
	arena []byte
	ids   []string
}

// maxDerivedIDExtra bounds what a derived id adds to its plate: '@' and a decimal int64.
const maxDerivedIDExtra = 1 + 20

func fixIDCol() colSpec[record.Fix] {
	return colSpec[record.Fix]{
		name: "fix_id",
		build: func(rows []record.Fix, _ int64, buf any) any {
			b, _ := buf.(*fixIDs)
			if b == nil {
				b = new(fixIDs)
			}
			// The arena gets room for every derived id first: it must not move once strings
			// point into it.
			need := 0
			for i := range rows {
				if rows[i].FixID == "" {
					need += len(rows[i].VehicleID) + maxDerivedIDExtra
				}
			}
			b.arena, b.ids = slices.Grow(b.arena[:0], need), b.ids[:0]
			for i := range rows {
				if id := rows[i].FixID; id != "" {
					b.ids = append(b.ids, id)
					continue
				}
				start := len(b.arena)
				b.arena = rows[i].AppendID(b.arena) // never empty: a plate, '@' and the time
				b.ids = append(b.ids, unsafe.String(&b.arena[start], len(b.arena)-start))
			}
			return b
		},
		values: func(buf any) any { return buf.(*fixIDs).ids },
		clear: func(buf any) {
			if b, ok := buf.(*fixIDs); ok {
				clear(b.ids)
			}
		},
	}
}

func eventColumns() []colSpec[record.Event] {
	type r = record.Event
	return bind(tables.Events,
		col("event_id", func(e *r) string { return e.EventID }),
		col("vehicle_id", func(e *r) string { return e.VehicleID }),
		col("ts", func(e *r) int64 { return clampUnix(e.Time) }),
		col("ts_ms", func(e *r) int64 { return unixMilli(e.Time) }),
		col("kind", func(e *r) string { return e.Kind.String() }),
		col("source", func(e *r) string { return e.Source }),
		col("site_id", func(e *r) string { return e.SiteID }),
		col("lat", func(e *r) float64 { return e.Lat }),
		col("lon", func(e *r) float64 { return e.Lon }),
		col("has_pos", func(e *r) uint8 { return u8(e.HasPos) }),
		col("load_kg", func(e *r) float64 { return e.LoadKg }),
		col("has_load", func(e *r) uint8 { return u8(e.HasLoad) }),
		col("cover_closed", func(e *r) uint8 { return u8(e.CoverClosed) }),
		col("has_cover", func(e *r) uint8 { return u8(e.HasCover) }),
		col("confidence", func(e *r) float32 { return e.Confidence }),
		col("topic", func(e *r) string { return e.Src.Topic }),
		col("kafka_partition", func(e *r) int32 { return e.Src.Partition }),
		col("kafka_offset", func(e *r) int64 { return e.Src.Offset }),
		nowCol[r]("ingested_at"),
	)
}

func officerColumns() []colSpec[record.OfficerPosition] {
	type r = record.OfficerPosition
	return bind(tables.OfficerPositions,
		col("officer_id", func(o *r) string { return o.OfficerID }),
		col("ts", func(o *r) int64 { return clampUnix(o.Time) }),
		col("ts_ms", func(o *r) int64 { return unixMilli(o.Time) }),
		col("lat", func(o *r) float64 { return o.Lat }),
		col("lon", func(o *r) float64 { return o.Lon }),
		col("available", func(o *r) uint8 { return u8(o.Available) }),
		col("topic", func(o *r) string { return o.Src.Topic }),
		col("kafka_partition", func(o *r) int32 { return o.Src.Partition }),
		col("kafka_offset", func(o *r) int64 { return o.Src.Offset }),
		nowCol[r]("ingested_at"),
	)
}

func rejectColumns() []colSpec[record.Reject] {
	type r = record.Reject
	return bind(tables.Rejects,
		col("topic", func(j *r) string { return j.Src.Topic }),
		col("kafka_partition", func(j *r) int32 { return j.Src.Partition }),
		col("kafka_offset", func(j *r) int64 { return j.Src.Offset }),
		col("reason", func(j *r) string { return string(j.Reason) }),
		col("detail", func(j *r) string { return j.Detail }),
		col("key", func(j *r) string { return string(j.Key) }),
		col("value", func(j *r) string { return string(j.Value) }),
		col("received_at", func(j *r) int64 { return clampUnix(j.Received) }),
		col("received_ms", func(j *r) int64 { return unixMilli(j.Received) }),
	)
}

// alertSnapshotColumns are the columns of the alert snapshot that alerts and alert_changes share.
func alertSnapshotColumns() []colSpec[detectors.Change] {
	type r = detectors.Change
	return []colSpec[r]{
		col("rule", func(c *r) string { return string(c.Alert.Rule) }),
		col("severity", func(c *r) string { return string(c.Alert.Severity) }),
		col("phase", func(c *r) string { return string(c.Alert.Phase) }),
		col("status", func(c *r) string { return string(c.Alert.Status) }),
		col("vehicle_id", func(c *r) string { return c.Alert.VehicleID }),
		col("company", func(c *r) string { return c.Alert.Company }),
		col("permit_id", func(c *r) string { return c.Alert.PermitID }),
		col("place", func(c *r) string { return c.Alert.Place }),
		col("district", func(c *r) string { return c.Alert.District }),
		col("start_time", func(c *r) int64 { return clampUnix(c.Alert.Start) }),
		col("start_ms", func(c *r) int64 { return unixMilli(c.Alert.Start) }),
		col("end_time", func(c *r) int64 { return clampUnix(c.Alert.End) }),
		col("end_ms", func(c *r) int64 { return unixMilli(c.Alert.End) }),
		col("lat", func(c *r) float64 { return c.Alert.Lat }),
		col("lon", func(c *r) float64 { return c.Alert.Lon }),
		col("value", func(c *r) float64 { return c.Alert.Value }),
		col("limit_value", func(c *r) float64 { return c.Alert.Limit }),
		col("evidence", func(c *r) string { return c.Alert.Evidence }),
	}
}

func alertColumns() []colSpec[detectors.Change] {
	type r = detectors.Change
	cols := []colSpec[r]{col("id", func(c *r) string { return c.Alert.ID })}
	cols = append(cols, alertSnapshotColumns()...)
	return bind(tables.Alerts, append(cols,
		col("version", func(c *r) uint64 { return c.Alert.Version }),
		col("updated_at", func(c *r) int64 { return clampUnix(c.Alert.Updated) }),
		col("updated_ms", func(c *r) int64 { return unixMilli(c.Alert.Updated) }),
	)...)
}

func changeColumns() []colSpec[detectors.Change] {
	type r = detectors.Change
	cols := []colSpec[r]{
		col("alert_id", func(c *r) string { return c.Alert.ID }),
		col("version", func(c *r) uint64 { return c.Alert.Version }),
		col("kind", func(c *r) string { return string(c.Kind) }),
		col("changed_at", func(c *r) int64 { return clampUnix(c.Alert.Updated) }),
		col("changed_ms", func(c *r) int64 { return unixMilli(c.Alert.Updated) }),
	}
	return bind(tables.AlertChanges, append(cols, alertSnapshotColumns()...)...)
}
