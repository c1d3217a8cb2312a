-- case: metric_in_where
-- guards: A Metric() filter: revenue per account as one CTE, LEFT JOINed on the events' account.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__month"], "limit": null, "metrics": ["events_tracked"], "order_by": [], "start_time": null, "where": ["{{ Metric('revenue', group_by=['account']) }} > 5000"]}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0
WITH filter_revenue_by_account__agg_0_invoices AS (
  SELECT
    invoices.account_id AS account,
    SUM(invoices.amount) AS invoice_amount__fa1190297
  FROM main.invoices AS invoices
  WHERE
    invoices.status = 'paid'
  GROUP BY
    1
), filter_revenue_by_account AS (
  SELECT
    combined.account AS account,
    combined.invoice_amount__fa1190297 AS revenue
  FROM (
    SELECT
      *
    FROM filter_revenue_by_account__agg_0_invoices AS agg_0_invoices
  ) AS combined
), agg_0_events AS (
  SELECT
    toDateTime64(dateTrunc('MONTH', events.occurred_at), 6) AS metric_time__month,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM main.events AS events
  LEFT JOIN filter_revenue_by_account
    ON events.account_id = filter_revenue_by_account.account
  WHERE
    filter_revenue_by_account.revenue > 5000
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
