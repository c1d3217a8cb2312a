-- case: offset_to_grain_by_week
-- guards: offset_to_grain month by week: each week reads the first day of its Monday's month (spine days kept where DATE_TRUNC(week, day) = day), beside revenue by week.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__week"], "limit": null, "metrics": ["revenue_since_month_start"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: revenue_since_month_start@1.0
WITH agg_0_invoices AS MATERIALIZED (
  SELECT
    toDateTime64(dateTrunc('WEEK', invoices.issued_at), 6) AS metric_time__week,
    SUM(invoices.amount) AS invoice_amount__fa1190297
  FROM main.invoices AS invoices
  WHERE
    invoices.status = 'paid'
  GROUP BY
    1
), agg_1_invoices AS MATERIALIZED (
  SELECT
    toDateTime64(dateTrunc('WEEK', time_spine.period), 6) AS metric_time__week,
    SUM(agg.invoice_amount__fa1190297__offset_month) AS invoice_amount__fa1190297__offset_month
  FROM (
    SELECT
      spine.date_day AS period,
      toDateTime64(dateTrunc('MONTH', spine.date_day), 6) AS source_day
    FROM main.time_spine AS spine
  ) AS time_spine
  INNER JOIN (
    SELECT
      toDateTime64(dateTrunc('DAY', invoices.issued_at), 6) AS metric_time__day,
      invoices.amount AS invoice_amount__fa1190297__offset_month
    FROM main.invoices AS invoices
    WHERE
      invoices.status = 'paid'
  ) AS agg
    ON time_spine.source_day = agg.metric_time__day
  WHERE
    toDateTime64(dateTrunc('WEEK', time_spine.period), 6) = time_spine.period
  GROUP BY
    1
)
SELECT
  combined.metric_time__week AS metric_time__week,
  combined.invoice_amount__fa1190297 - combined.invoice_amount__fa1190297__offset_month AS revenue_since_month_start
FROM (
  SELECT
    all_keys.metric_time__week AS metric_time__week,
    agg_0_invoices.invoice_amount__fa1190297 AS invoice_amount__fa1190297,
    agg_1_invoices.invoice_amount__fa1190297__offset_month AS invoice_amount__fa1190297__offset_month
  FROM (
    SELECT
      metric_time__week
    FROM agg_0_invoices
    UNION DISTINCT
    SELECT
      metric_time__week
    FROM agg_1_invoices
  ) AS all_keys
  LEFT JOIN agg_0_invoices
    ON all_keys.metric_time__week IS NOT DISTINCT FROM agg_0_invoices.metric_time__week
  LEFT JOIN agg_1_invoices
    ON all_keys.metric_time__week IS NOT DISTINCT FROM agg_1_invoices.metric_time__week
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
