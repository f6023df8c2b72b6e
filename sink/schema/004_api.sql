-- 004 the HTTP API's records: what people did with alerts, who looked up which vehicle, and the
-- journal of the live alert feed.
--
-- alert_actions: one row per lifecycle action (dispatch, acknowledge, resolve, dismiss) taken on
-- an alert through POST /api/v1/alerts/{id}/actions: who (actor, role), when (at, at_ms), the
-- state the alert moved to, the officer dispatched and the reason given.
CREATE TABLE IF NOT EXISTS {db}.alert_actions (
    alert_id    String,
    action      String,
    state       String,
    actor       String,
    role        String,
    officer_id  String,
    reason      String,
    at          DateTime,
    at_ms       Int64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (alert_id, at_ms, action);

-- api_audit: every vehicle lookup (who, when, which plate, the answer's HTTP status), for the
-- data-protection audit of who looked at which truck.
CREATE TABLE IF NOT EXISTS {db}.api_audit (
    at          DateTime,
    at_ms       Int64,
    actor       String,
    role        String,
    method      String,
    path        String,
    plate       String,
    status      UInt16,
    remote      String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(at)
ORDER BY (at, actor);

-- alert_feed: the live alert feed as served on /api/v1/alerts/stream, one row per item (seq is the
-- SSE event id), so that a client resuming with a Last-Event-ID older than the server's memory,
-- or after a restart, gets what it missed. item is the item's JSON.
CREATE TABLE IF NOT EXISTS {db}.alert_feed (
    seq         UInt64,
    change      String,
    alert_id    String,
    rule        String,
    severity    String,
    district    String,
    vehicle_id  String,
    item        String,
    written_at  DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(written_at)
ORDER BY seq;
