-- case: simple_by_month
-- guards: A count_distinct metric by month: one scan, DATE_TRUNC per dialect.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__month"], "limit": null, "metrics": ["events_tracked"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0
WITH agg_0_events AS (
  SELECT
    toDateTime64(dateTrunc('MONTH', events.occurred_at), 6) AS metric_time__month,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM main.events AS events
  GROUP BY
    1
)
SELECT
  combined.metric_time__month AS metric_time__month,
  combined.events_tracked AS events_tracked
FROM (
  SELECT
    *
  FROM agg_0_events
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
