-- case: offset_to_grain_by_week
-- guards: offset_to_grain month by week: each week reads the first day of its Monday's month (spine days kept where DATE_TRUNC(week, day) = day), beside revenue by week.
-- query: {"dialect": "databricks", "end_time": null, "group_by": ["metric_time__week"], "limit": null, "metrics": ["revenue_since_month_start"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: revenue_since_month_start@1.0
WITH agg_0_invoices AS (
  SELECT
    DATE_TRUNC('WEEK', invoices.issued_at) AS metric_time__week,
    SUM(invoices.amount) AS invoice_amount__fa1190297
  FROM main.invoices AS invoices
  WHERE
    invoices.status = 'paid'
  GROUP BY
    1
), agg_1_invoices AS (
  SELECT
    DATE_TRUNC('WEEK', time_spine.period) AS metric_time__week,
    SUM(agg.invoice_amount__fa1190297__offset_month) AS invoice_amount__fa1190297__offset_month
  FROM (
    SELECT
      spine.date_day AS period,
      DATE_TRUNC('MONTH', spine.date_day) AS source_day
    FROM main.time_spine AS spine
  ) AS time_spine
  INNER JOIN (
    SELECT
      DATE_TRUNC('DAY', invoices.issued_at) AS metric_time__day,
      invoices.amount AS invoice_amount__fa1190297__offset_month
    FROM main.invoices AS invoices
    WHERE
      invoices.status = 'paid'
  ) AS agg
    ON time_spine.source_day = agg.metric_time__day
  WHERE
    DATE_TRUNC('WEEK', time_spine.period) = time_spine.period
  GROUP BY
    1
)
SELECT
  combined.metric_time__week,
  combined.invoice_amount__fa1190297 - combined.invoice_amount__fa1190297__offset_month AS revenue_since_month_start
FROM (
  SELECT
    all_rows.metric_time__week,
    MAX(all_rows.invoice_amount__fa1190297) AS invoice_amount__fa1190297,
    MAX(all_rows.invoice_amount__fa1190297__offset_month) AS invoice_amount__fa1190297__offset_month
  FROM (
    SELECT
      metric_time__week,
      invoice_amount__fa1190297,
      NULL AS invoice_amount__fa1190297__offset_month
    FROM agg_0_invoices
    UNION ALL
    SELECT
      metric_time__week,
      NULL AS invoice_amount__fa1190297,
      invoice_amount__fa1190297__offset_month
    FROM agg_1_invoices
  ) AS all_rows
  GROUP BY
    all_rows.metric_time__week
) AS combined;
