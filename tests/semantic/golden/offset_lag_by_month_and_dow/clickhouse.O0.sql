-- case: offset_lag_by_month_and_dow
-- guards: A 7-day lag by month and ISO day of week (issue 17): invoice rows joined to spine days 7 days later, summed by the later day's month and dow; the range applies to it.
-- query: {"dialect": "clickhouse", "end_time": "2026-03-31", "group_by": ["metric_time__month", "metric_time__extract_dow"], "limit": null, "metrics": ["revenue_7_days_ago"], "order_by": [], "start_time": "2026-01-01", "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: revenue_7_days_ago@1.0
WITH agg_0_invoices AS (
  SELECT
    toDayOfWeek(time_spine.period) AS metric_time__extract_dow,
    toDateTime64(dateTrunc('MONTH', time_spine.period), 6) AS metric_time__month,
    SUM(agg.invoice_amount__fa1190297__offset_7_days) AS invoice_amount__fa1190297__offset_7_days
  FROM (
    SELECT
      spine.date_day AS period,
      spine.date_day - INTERVAL '7' DAY AS source_day
    FROM main.time_spine AS spine
  ) AS time_spine
  INNER JOIN (
    SELECT
      toDateTime64(dateTrunc('DAY', invoices.issued_at), 6) AS metric_time__day,
      invoices.amount AS invoice_amount__fa1190297__offset_7_days
    FROM main.invoices AS invoices
    WHERE
      invoices.status = 'paid'
  ) AS agg
    ON time_spine.source_day = agg.metric_time__day
  WHERE
    time_spine.period >= CAST('2026-01-01 00:00:00' AS DateTime)
    AND time_spine.period <= CAST('2026-03-31 00:00:00' AS DateTime)
  GROUP BY
    1,
    2
)
SELECT
  combined.metric_time__extract_dow AS metric_time__extract_dow,
  combined.metric_time__month AS metric_time__month,
  combined.invoice_amount__fa1190297__offset_7_days AS revenue_7_days_ago
FROM (
  SELECT
    *
  FROM agg_0_invoices
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
