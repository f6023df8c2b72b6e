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
