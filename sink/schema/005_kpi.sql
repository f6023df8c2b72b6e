-- 005 the handling KPIs' and the scorecards' roll-up (docs/kpis.md).
--
-- vehicle_km_daily: the kilometres each vehicle drove on each day (in the city's time zone),
-- rolled up from positions once the day is over, so that a scorecard of a year reads some
-- thousand rows per vehicle instead of every fix. A day's km is the sum of the distances
-- between the vehicle's consecutive fixes of that day, in time order; a step faster than
-- 150 km/h (a GPS jump) counts nothing. fixes is the number of fixes summed. The API rolls up
-- the days that ended more than an hour ago and are missing (api.kpi.rollup_days at a time);
-- a day rolled up again replaces its rows (the newest rolled_at wins), so the roll-up is
-- idempotent and any instance may run it. The days not rolled up yet are computed from
-- positions when a scorecard needs them.
--
--   SELECT vehicle_id, sum(km) FROM (SELECT day, vehicle_id, argMax(km, rolled_at) AS km
--     FROM {db}.vehicle_km_daily WHERE day >= '2026-11-01' AND day < '2026-12-01'
--     GROUP BY day, vehicle_id) GROUP BY vehicle_id
CREATE TABLE IF NOT EXISTS {db}.vehicle_km_daily (
    day        Date,
    vehicle_id String,
    km         Float64,
    fixes      UInt64,
    rolled_at  DateTime
) ENGINE = ReplacingMergeTree(rolled_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, vehicle_id);

-- alert_handling: the handling of every alert, one row per alert, by the day (city's zone) it
-- started, rolled up from alerts and alert_actions once the day has settled (api.kpi.
-- handling_settle after its end, 7 days by default), so that the handling KPIs of a year read
-- one narrow row per alert instead of joining every alert version with every action. The
-- columns are those of the per-alert query of docs/kpis.md: k_id is cityHash64 of the alert's
-- id, k_start its start (ms), k_district its newest version's district, k_deadline its
-- deadline (ms, by the severity it opened with, as configured at the roll-up), h_* the ms of
-- the first action of each kind (0: none), the dismissal's reason, the resolution's outcome and
-- the officer dispatched last. A row of k_id 0 marks a day rolled up. Actions taken after the
-- roll-up of their alert's day are not in it.
CREATE TABLE IF NOT EXISTS {db}.alert_handling (
    day        Date,
    k_id       UInt64,
    k_time     DateTime,
    k_start    Int64,
    k_district String,
    k_deadline Int64,
    h_first    Int64,
    h_dispatch Int64,
    h_ack      Int64,
    h_resolve  Int64,
    h_dismiss  Int64,
    h_reason   String,
    h_outcome  String,
    h_officer  String,
    rolled_at  DateTime
) ENGINE = ReplacingMergeTree(rolled_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, k_id);
