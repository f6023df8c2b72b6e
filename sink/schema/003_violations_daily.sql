-- 003 violations_daily: distinct alerts per day, rule, severity, company and district.
--
-- Fed by violations_daily_mv from every 'opened' change written to alert_changes. It keeps the
-- set of alert ids (uniqExactState), not a count, so an opened change that is written again after
-- a replay does not count twice. day is the day the violation started, in the server's time zone;
-- severity is the severity the alert opened with.
--
--   SELECT day, rule, uniqExactMerge(alerts) AS alerts
--   FROM {db}.violations_daily
--   WHERE day >= today() - 30
--   GROUP BY day, rule
--   ORDER BY day, rule

CREATE TABLE IF NOT EXISTS {db}.violations_daily (
    day      Date,
    rule     String,
    severity String,
    company  String,
    district String,
    alerts   AggregateFunction(uniqExact, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, rule, severity, company, district);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.violations_daily_mv TO {db}.violations_daily AS
SELECT
    toDate(start_time) AS day,
    rule,
    severity,
    company,
    district,
    uniqExactState(alert_id) AS alerts
FROM {db}.alert_changes
WHERE kind = 'opened'
GROUP BY day, rule, severity, company, district;
