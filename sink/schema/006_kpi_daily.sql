-- 006 the KPIs' daily roll-ups (docs/kpis.md, "Speed"): so that a year's handling KPIs,
-- scorecards and rankings read some rows per day instead of every alert, action and gate exit.
--
-- Each table holds, per day of the city's zone, what the raw tables say about that day's alerts
-- or gate exits, summed by its key; the API rolls a day up once it has settled
-- (api.kpi.handling_settle after its end) and reads the days not rolled up from the raw tables.
-- A roll-up of a day writes its rows, then its mark in kpi_rollups (roll_up = the table, day,
-- rolled_at); a reader takes of each day only the rows of its newest mark:
--
--   WHERE (day, rolled_at) IN (SELECT day, max(rolled_at) FROM {db}.kpi_rollups
--                              WHERE roll_up = 'handling_daily' GROUP BY day)
--
-- so that a day rolled up again (after late actions) replaces its rows, keys that vanished
-- included. alert_handling (005, one row per alert) is superseded by handling_daily and no
-- longer written or read.
CREATE TABLE IF NOT EXISTS {db}.kpi_rollups (
    roll_up   String,
    day       Date,
    rolled_at DateTime
) ENGINE = ReplacingMergeTree(rolled_at)
ORDER BY (roll_up, day);

-- handling_daily: the handling of the alerts that started on day, by the district of their
-- newest version and the officer they were dispatched to last ('' when none): the counts of
-- docs/kpis.md's handling KPIs, with overdue as of rolled_at, and as arrays the values whose
-- quantiles or groups the KPIs take (exact when merged over any days): first_ms and resolve_ms
-- the ms from each alert's start to its first action and to its resolution, dismiss_reasons
-- the reason of each dismissal, pending_due the deadlines (ms) of the alerts with no action
-- whose deadline had not passed at rolled_at (they are overdue once it has). An alert's
-- deadline is the api.ack_within of the severity it opened with, as configured at the roll-up.
CREATE TABLE IF NOT EXISTS {db}.handling_daily (
    day             Date,
    district        String,
    officer         String,
    raised          UInt64,
    dispatched      UInt64,
    acknowledged    UInt64,
    resolved        UInt64,
    dismissed       UInt64,
    acted           UInt64,
    within_deadline UInt64,
    overdue         UInt64,
    closed_loop     UInt64,
    pending_due     Array(Int64),
    first_ms        Array(Int64),
    resolve_ms      Array(Int64),
    dismiss_reasons Array(String),
    rolled_at       DateTime
) ENGINE = ReplacingMergeTree(rolled_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, district, officer);

-- vehicle_violations_daily: the distinct alerts that started on day, by vehicle and rule, with
-- the company of the newest of them (its newest version's) and that alert's start (ms), so that
-- the newest alert of any number of days is argMax(company, last_start).
CREATE TABLE IF NOT EXISTS {db}.vehicle_violations_daily (
    day        Date,
    vehicle_id String,
    rule       String,
    alerts     UInt64,
    company    String,
    last_start Int64,
    rolled_at  DateTime
) ENGINE = ReplacingMergeTree(rolled_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, vehicle_id, rule);

-- vehicle_exits_daily: the distinct gate exits (events of kind gate_exit) of day, by vehicle,
-- counted by site: site_exits[i] left site_ids[i] (one row per truck and day); a scorecard's
-- trips are those from the city's construction sites.
CREATE TABLE IF NOT EXISTS {db}.vehicle_exits_daily (
    day        Date,
    vehicle_id String,
    site_ids   Array(String),
    site_exits Array(UInt64),
    rolled_at  DateTime
) ENGINE = ReplacingMergeTree(rolled_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, vehicle_id);
