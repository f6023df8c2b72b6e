package tables

import "slices"

// Column types.
const (
	typeString   = "String"
	typeDateTime = "DateTime"
	typeInt64    = "Int64"
	typeInt32    = "Int32"
	typeUInt8    = "UInt8"
	typeUInt16   = "UInt16"
	typeUInt32   = "UInt32"
	typeUInt64   = "UInt64"
	typeFloat32  = "Float32"
	typeFloat64  = "Float64"
)

func str(name string) Column      { return Column{Name: name, Type: typeString} }
func i64(name string) Column      { return Column{Name: name, Type: typeInt64} }
func f64(name string) Column      { return Column{Name: name, Type: typeFloat64} }
func typed(name, t string) Column { return Column{Name: name, Type: t} }

// seconds is a DateTime column holding column ms in whole seconds.
func seconds(name, ms string) Column { return Column{Name: name, Type: typeDateTime, Seconds: ms} }

// dateTime is a DateTime column of its own (no milliseconds beside it).
func dateTime(name string) Column { return Column{Name: name, Type: typeDateTime} }

func fixed(c Column) Column { c.Fixed = true; return c }

// provenance are the columns pointing back at the Kafka record a row came from.
func provenance() []Column {
	return []Column{str("topic"), typed("kafka_partition", typeInt32), i64("kafka_offset")}
}

func concat(parts ...[]Column) []Column {
	var out []Column
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// SchemaMigrations records the applied migrations (sink's bootstrap).
var SchemaMigrations = &Table{Name: "schema_migrations", Columns: []Column{
	typed("version", typeUInt32), str("name"), dateTime("applied_at"),
}}

// Positions holds every GPS fix of every truck, one row per fix_id (001_raw_history).
var Positions = &Table{Name: "positions", Columns: concat([]Column{
	str("fix_id"), str("vehicle_id"), seconds("ts", "ts_ms"), i64("ts_ms"), f64("lat"), f64("lon"),
	typed("speed_kmh", typeFloat32), typed("has_speed", typeUInt8), typed("heading", typeFloat32), typed("has_heading", typeUInt8),
	typed("acc", typeUInt8), typed("lifted", typeUInt8), typed("alarm", typeUInt32),
}, provenance(), []Column{dateTime("ingested_at")})}

// Events holds the camera- and sensor-derived events (001_raw_history).
var Events = &Table{Name: "events", Columns: concat([]Column{
	str("event_id"), str("vehicle_id"), seconds("ts", "ts_ms"), i64("ts_ms"), str("kind"), str("source"), str("site_id"),
	f64("lat"), f64("lon"), typed("has_pos", typeUInt8), f64("load_kg"), typed("has_load", typeUInt8),
	typed("cover_closed", typeUInt8), typed("has_cover", typeUInt8), typed("confidence", typeFloat32),
}, provenance(), []Column{dateTime("ingested_at")})}

// OfficerPositions holds the enforcement officers' handheld positions (001_raw_history).
var OfficerPositions = &Table{Name: "officer_positions", Columns: concat([]Column{
	str("officer_id"), seconds("ts", "ts_ms"), i64("ts_ms"), f64("lat"), f64("lon"), typed("available", typeUInt8),
}, provenance(), []Column{dateTime("ingested_at")})}

// Rejects holds the dead-letter records (001_raw_history).
var Rejects = &Table{Name: "rejects", Columns: concat(provenance(), []Column{
	str("reason"), str("detail"), str("key"), str("value"), seconds("received_at", "received_ms"), i64("received_ms"),
})}

// alertSnapshot are the columns of an alert's snapshot that alerts and alert_changes share, in
// the order of alerts.
func alertSnapshot() []Column {
	return []Column{
		fixed(str("rule")), str("severity"), str("phase"), str("status"), fixed(str("vehicle_id")), str("company"),
		str("permit_id"), str("place"), str("district"),
		fixed(seconds("start_time", "start_ms")), fixed(i64("start_ms")), seconds("end_time", "end_ms"), i64("end_ms"),
		f64("lat"), f64("lon"), f64("value"), f64("limit_value"), str("evidence"),
	}
}

// Alerts keeps one row per version of every alert (002_alerts). An alert's id is derived from
// its rule, vehicle and start, so those are Fixed.
var Alerts = &Table{Name: "alerts", Version: "version", Columns: concat(
	[]Column{fixed(str("id"))},
	alertSnapshot(),
	[]Column{typed("version", typeUInt64), seconds("updated_at", "updated_ms"), i64("updated_ms")},
)}

// AlertChanges is the feed: one row per change of an alert with the snapshot after it (002_alerts).
var AlertChanges = &Table{Name: "alert_changes", Columns: func() []Column {
	snap := alertSnapshot()
	at := slices.IndexFunc(snap, func(c Column) bool { return c.Name == "start_time" })
	return concat(
		[]Column{str("alert_id"), typed("version", typeUInt64), str("kind")},
		snap[:at], // what and where
		[]Column{seconds("changed_at", "changed_ms"), i64("changed_ms")},
		snap[at:], // when, and the measurement
	)
}()}

// ViolationsDaily counts distinct alerts per day, rule, severity, company and district, fed by a
// materialized view from alert_changes (003_violations_daily).
var ViolationsDaily = &Table{Name: "violations_daily", Columns: []Column{
	typed("day", "Date"), str("rule"), str("severity"), str("company"), str("district"),
	typed("alerts", "AggregateFunction(uniqExact, String)"),
}}

// AlertActions holds what people did with alerts through the API (004_api).
var AlertActions = &Table{Name: "alert_actions", Columns: []Column{
	str("alert_id"), str("action"), str("state"), str("actor"), str("role"), str("officer_id"), str("reason"),
	seconds("at", "at_ms"), i64("at_ms"),
}}

// APIAudit holds every vehicle lookup through the API (004_api).
var APIAudit = &Table{Name: "api_audit", Columns: []Column{
	seconds("at", "at_ms"), i64("at_ms"), str("actor"), str("role"), str("method"), str("path"), str("plate"),
	typed("status", typeUInt16), str("remote"),
}}

// AlertFeed journals the API's live alert feed, one row per item (004_api).
var AlertFeed = &Table{Name: "alert_feed", Columns: []Column{
	typed("seq", typeUInt64), str("change"), str("alert_id"), str("rule"), str("severity"), str("district"),
	str("vehicle_id"), str("item"), dateTime("written_at"),
}}

// VehicleKmDaily is the km each vehicle drove per day, rolled up from positions (005_kpi).
var VehicleKmDaily = &Table{Name: "vehicle_km_daily", Version: "rolled_at", Columns: []Column{
	typed("day", "Date"), str("vehicle_id"), f64("km"), typed("fixes", typeUInt64), dateTime("rolled_at"),
}}

// VehicleKmHourly is the km each vehicle drove per hour, with the hour's first and last fix,
// rolled up from positions for the days not in VehicleKmDaily yet (007_km_hourly).
var VehicleKmHourly = &Table{Name: "vehicle_km_hourly", Version: "rolled_at", Columns: []Column{
	typed("day", "Date"), dateTime("hour"), str("vehicle_id"), f64("km"), typed("fixes", typeUInt64),
	i64("first_ms"), f64("first_lat"), f64("first_lon"), i64("last_ms"), f64("last_lat"), f64("last_lon"), dateTime("rolled_at"),
}}

// AlertHandling is the handling of every alert, one row per alert by the day it started, rolled
// up from alerts and alert_actions once the day has settled (005_kpi). Superseded by HandlingDaily
// (006_kpi_daily): no longer written or read.
var AlertHandling = &Table{Name: "alert_handling", Version: "rolled_at", Columns: []Column{
	typed("day", "Date"), typed("k_id", typeUInt64), dateTime("k_time"), i64("k_start"), str("k_district"), i64("k_deadline"),
	i64("h_first"), i64("h_dispatch"), i64("h_ack"), i64("h_resolve"), i64("h_dismiss"), str("h_reason"), str("h_outcome"), str("h_officer"),
	dateTime("rolled_at"),
}}

// KPIRollups marks each day rolled up into one of the KPIs' daily roll-ups (006_kpi_daily): a
// reader takes of each day the rows of its newest mark.
var KPIRollups = &Table{Name: "kpi_rollups", Version: "rolled_at", Columns: []Column{
	str("roll_up"), typed("day", "Date"), dateTime("rolled_at"),
}}

// HandlingDaily is the handling of the alerts that started on a day, by district and the officer
// dispatched last (006_kpi_daily).
var HandlingDaily = &Table{Name: "handling_daily", Version: "rolled_at", Columns: []Column{
	typed("day", "Date"), str("district"), str("officer"),
	typed("raised", typeUInt64), typed("dispatched", typeUInt64), typed("acknowledged", typeUInt64), typed("resolved", typeUInt64),
	typed("dismissed", typeUInt64), typed("acted", typeUInt64), typed("within_deadline", typeUInt64), typed("overdue", typeUInt64),
	typed("closed_loop", typeUInt64), typed("pending_due", "Array(Int64)"), typed("first_ms", "Array(Int64)"), typed("resolve_ms", "Array(Int64)"),
	typed("dismiss_reasons", "Array(String)"), dateTime("rolled_at"),
}}

// VehicleViolationsDaily counts the alerts that started on a day by vehicle and rule
// (006_kpi_daily).
var VehicleViolationsDaily = &Table{Name: "vehicle_violations_daily", Version: "rolled_at", Columns: []Column{
	typed("day", "Date"), str("vehicle_id"), str("rule"), typed("alerts", typeUInt64), str("company"), i64("last_start"), dateTime("rolled_at"),
}}

// VehicleExitsDaily counts the gate exits of a day by vehicle, by site as arrays (006_kpi_daily).
var VehicleExitsDaily = &Table{Name: "vehicle_exits_daily", Version: "rolled_at", Columns: []Column{
	typed("day", "Date"), str("vehicle_id"), typed("site_ids", "Array(String)"), typed("site_exits", "Array(UInt64)"), dateTime("rolled_at"),
}}
