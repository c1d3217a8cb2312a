-- case: offset_month_window_by_quarter
-- guards: A 1-month window by quarter: each spine day's rows move a month forward (CAST(day + 1 month AS DATE), clamped to the month's end), each day counted once, by the later day's quarter.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__quarter"], "limit": null, "metrics": ["revenue_1_month_ago"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: revenue_1_month_ago@1.0
WITH agg_0_invoices AS (
  SELECT
    toDateTime64(dateTrunc('QUARTER', time_spine.period), 6) AS metric_time__quarter,
    SUM(agg.invoice_amount__fa1190297__offset_1_month) AS invoice_amount__fa1190297__offset_1_month
  FROM (
    SELECT
      pairs.period AS period,
      pairs.source_day AS source_day
    FROM (
      SELECT
        CAST(spine.date_day + INTERVAL '1' MONTH AS DATE) AS period,
        spine.date_day AS source_day
      FROM main.time_spine AS spine
    ) AS pairs
  ) AS time_spine
  INNER JOIN (
    SELECT
      toDateTime64(dateTrunc('DAY', invoices.issued_at), 6) AS metric_time__day,
      invoices.amount AS invoice_amount__fa1190297__offset_1_month
    FROM main.invoices AS invoices
    WHERE
      invoices.status = 'paid'
  ) AS agg
    ON time_spine.source_day = agg.metric_time__day
  GROUP BY
    1
)
SELECT
  combined.metric_time__quarter AS metric_time__quarter,
  combined.invoice_amount__fa1190297__offset_1_month AS revenue_1_month_ago
FROM (
  SELECT
    *
  FROM agg_0_invoices
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
