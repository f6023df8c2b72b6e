-- 002 alerts and their lifecycle.
--
-- alert_changes is the feed: one row per change of an alert (opened, escalated, updated,
-- resolved) with the full snapshot after it, the same content as a muck.alerts message, so the
-- feed can be replayed from ClickHouse. alerts keeps one row per alert version and collapses to
-- the latest version of each alert (ReplacingMergeTree(version)).
--
-- Open alerts have end_time = 1970-01-01 00:00:00 and end_ms = 0.
-- limit_value is the limit the value was judged against (`limit` is an SQL keyword).
-- An alert's id is derived from its rule, vehicle and start, so rule, vehicle_id and start_time
-- never change for an id: that makes (rule, vehicle_id, id) a safe replacing key, ordered the way
-- analysts filter, and toYYYYMM(start_time) a partition that holds every version of an alert.
--
-- Latest state of every alert, exact before merges:
--   SELECT id, argMax(status, version) AS status FROM {db}.alerts GROUP BY id
-- or SELECT … FROM {db}.alerts FINAL.

CREATE TABLE IF NOT EXISTS {db}.alerts (
    id          String,
    rule        String,
    severity    String,
    phase       String,
    status      String,
    vehicle_id  String,
    company     String,
    permit_id   String,
    place       String,
    district    String,
    start_time  DateTime,
    start_ms    Int64,
    end_time    DateTime,
    end_ms      Int64,
    lat         Float64,
    lon         Float64,
    value       Float64,
    limit_value Float64,
    evidence    String,
    version     UInt64,
    updated_at  DateTime,
    updated_ms  Int64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(start_time)
ORDER BY (rule, vehicle_id, id);

-- alert_changes: one row per (alert_id, version); kind is opened, escalated, updated or resolved;
-- changed_at/changed_ms is the event time of the change.
CREATE TABLE IF NOT EXISTS {db}.alert_changes (
    alert_id    String,
    version     UInt64,
    kind        String,
    rule        String,
    severity    String,
    phase       String,
    status      String,
    vehicle_id  String,
    company     String,
    permit_id   String,
    place       String,
    district    String,
    changed_at  DateTime,
    changed_ms  Int64,
    start_time  DateTime,
    start_ms    Int64,
    end_time    DateTime,
    end_ms      Int64,
    lat         Float64,
    lon         Float64,
    value       Float64,
    limit_value Float64,
    evidence    String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(start_time)
ORDER BY (alert_id, version);
