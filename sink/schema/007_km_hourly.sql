-- 007 the km driven per vehicle and hour (docs/kpis.md, "Speed"): so that a scorecard whose
-- window reaches a day not yet in vehicle_km_daily (today) reads that day's ended hours from
-- here and only the hour going on from positions, instead of every fix of the day.
--
-- vehicle_km_hourly: of each vehicle, hour (its start, whole UTC hours) and day of the city's
-- zone, km is the sum of the steps between the hour's consecutive fixes in time order (as in
-- vehicle_km_daily, a step faster than 150 km/h counts nothing), fixes the number of fixes, and
-- first_* and last_* the hour's first and last fix (ts_ms, lat, lon): a day's km is the sum of
-- its hours' km plus the steps from each hour's last fix to the next hour's first (the same
-- rule), equal to vehicle_km_daily's up to floating-point rounding. The API rolls up the hours
-- that ended more than api.kpi's hour settle ago of the days not in vehicle_km_daily yet; a row
-- of vehicle '' marks an hour rolled up, and an hour rolled up again replaces its rows (the
-- newest rolled_at wins, FINAL), so the roll-up is idempotent and any instance may run it.
CREATE TABLE IF NOT EXISTS {db}.vehicle_km_hourly (
    day        Date,
    hour       DateTime,
    vehicle_id String,
    km         Float64,
    fixes      UInt64,
    first_ms   Int64,
    first_lat  Float64,
    first_lon  Float64,
    last_ms    Int64,
    last_lat   Float64,
    last_lon   Float64,
    rolled_at  DateTime
) ENGINE = ReplacingMergeTree(rolled_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, hour, vehicle_id);
