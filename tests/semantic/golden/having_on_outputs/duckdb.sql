-- case: having_on_outputs
-- guards: Having on two metrics' combined result (two aggregations) and a group-by item: the combined SELECT wrapped, its WHERE before ORDER BY and LIMIT, CTEs on the outer query.
-- query: {"dialect": "duckdb", "end_time": null, "group_by": ["metric_time__month", "account__plan"], "having": ["revenue > 1000 AND {{ Dimension('account__plan') }} <> 'free'"], "limit": 10, "metrics": ["revenue", "new_accounts"], "order_by": ["-revenue"], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: revenue@1.0, new_accounts@1.0
WITH agg_0_accounts AS (
  SELECT
    time_spine.period AS metric_time__month,
    agg.account__plan AS account__plan,
    agg.new_accounts__spine
  FROM (
    SELECT DISTINCT
      DATE_TRUNC('MONTH', spine.date_day) AS period
    FROM main.time_spine AS spine
  ) AS time_spine
  LEFT JOIN (
    SELECT
      DATE_TRUNC('MONTH', accounts.created_at) AS metric_time__month,
      accounts.plan AS account__plan,
      COUNT(accounts.id) AS new_accounts__spine
    FROM main.accounts AS accounts
    GROUP BY
      1,
      2
  ) AS agg
    ON time_spine.period = agg.metric_time__month
), agg_1_invoices AS (
  SELECT
    DATE_TRUNC('MONTH', invoices.issued_at) AS metric_time__month,
    account__accounts.plan AS account__plan,
    SUM(invoices.amount) AS invoice_amount__fa1190297
  FROM main.invoices AS invoices
  LEFT JOIN main.accounts AS account__accounts
    ON invoices.account_id = account__accounts.id
  WHERE
    invoices.status = 'paid'
  GROUP BY
    1,
    2
)
SELECT
  having_input.metric_time__month,
  having_input.account__plan,
  having_input.revenue,
  having_input.new_accounts
FROM (
  SELECT
    combined.metric_time__month,
    combined.account__plan,
    combined.invoice_amount__fa1190297 AS revenue,
    COALESCE(combined.new_accounts__spine, 0) AS new_accounts
  FROM (
    SELECT
      all_keys.metric_time__month,
      all_keys.account__plan,
      agg_0_accounts.new_accounts__spine,
      agg_1_invoices.invoice_amount__fa1190297
    FROM (
      SELECT
        metric_time__month,
        account__plan
      FROM agg_0_accounts
      UNION
      SELECT
        metric_time__month,
        account__plan
      FROM agg_1_invoices
    ) AS all_keys
    LEFT JOIN agg_0_accounts
      ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_0_accounts.metric_time__month
      AND all_keys.account__plan IS NOT DISTINCT FROM agg_0_accounts.account__plan
    LEFT JOIN agg_1_invoices
      ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_1_invoices.metric_time__month
      AND all_keys.account__plan IS NOT DISTINCT FROM agg_1_invoices.account__plan
  ) AS combined
) AS having_input
WHERE
  having_input.revenue > 1000 AND having_input.account__plan <> 'free'
ORDER BY
  revenue DESC
LIMIT 10;
