-- 001 raw history: every fix, event, officer position and rejected record, for replay and review.
--
-- {db} is replaced by the configured database name when the migration runs.
-- Times: every `*_ms` column (Int64) holds the full device time in Unix milliseconds; the DateTime
-- column beside it holds the same instant in whole seconds (stored as UTC Unix seconds, shown in
-- the server's time zone) for partitioning, ordering and human-readable queries.
-- Booleans are UInt8 0/1. Kafka provenance (topic, kafka_partition, kafka_offset) points back at
-- the record each row came from.
--
-- Every table is a ReplacingMergeTree whose ORDER BY is the record's identity, so a record that is
-- written again after a crash or replay collapses into one row when ClickHouse merges the parts.
-- Until that merge, use FINAL (SELECT count() FROM {db}.positions FINAL) or uniqExact(fix_id)
-- when you need exact counts; OPTIMIZE TABLE {db}.positions FINAL forces the merge.

-- positions: every GPS fix of every truck (WGS-84), one row per fix_id.
CREATE TABLE IF NOT EXISTS {db}.positions (
    fix_id          String,
    vehicle_id      String,
    ts              DateTime,
    ts_ms           Int64,
    lat             Float64,
    lon             Float64,
    speed_kmh       Float32,
    has_speed       UInt8,
    heading         Float32,
    has_heading     UInt8,
    acc             UInt8,
    lifted          UInt8,
    alarm           UInt32,
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    ingested_at     DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (vehicle_id, ts, fix_id);

-- events: camera- and sensor-derived events (gate entry/exit, weighing, cover open, spillage, …).
-- kind is the wire name (gate_entry, gate_exit, weigh, cover_open, spillage, plate_capture,
-- muddy_wheels); source is the camera or station id. lat/lon are valid when has_pos = 1,
-- load_kg when has_load = 1, cover_closed when has_cover = 1.
CREATE TABLE IF NOT EXISTS {db}.events (
    event_id        String,
    vehicle_id      String,
    ts              DateTime,
    ts_ms           Int64,
    kind            String,
    source          String,
    site_id         String,
    lat             Float64,
    lon             Float64,
    has_pos         UInt8,
    load_kg         Float64,
    has_load        UInt8,
    cover_closed    UInt8,
    has_cover       UInt8,
    confidence      Float32,
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    ingested_at     DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (vehicle_id, ts, event_id);

-- officer_positions: enforcement officers' handheld positions. ts_ms is part of the key so that two
-- positions of one officer within the same second are both kept.
CREATE TABLE IF NOT EXISTS {db}.officer_positions (
    officer_id      String,
    ts              DateTime,
    ts_ms           Int64,
    lat             Float64,
    lon             Float64,
    available       UInt8,
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    ingested_at     DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (officer_id, ts, ts_ms);

-- rejects: the dead-letter records, with their original key and value bytes, why they were
-- rejected (reason, see ingest.AllReasons) and what exactly was wrong (detail). One row per Kafka
-- offset. received_at is when muckwatch received the record.
CREATE TABLE IF NOT EXISTS {db}.rejects (
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    reason          String,
    detail          String,
    key             String,
    value           String,
    received_at     DateTime,
    received_ms     Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, kafka_partition, kafka_offset);
