-- case: ratio_and_percentile
-- guards: A percentile measure (WITHIN GROUP) next to averages, no group-by.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": [], "limit": null, "metrics": ["p90_invoice_amount", "average_invoice_amount"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: p90_invoice_amount@1.0, average_invoice_amount@1.0
WITH agg_0_invoices AS (
  SELECT
    quantileExactInclusive(0.9)(toFloat64(invoices.amount)) AS p90_invoice_amount,
    AVG(invoices.amount) AS average_invoice_amount
  FROM main.invoices AS invoices
)
SELECT
  combined.p90_invoice_amount AS p90_invoice_amount,
  combined.average_invoice_amount AS average_invoice_amount
FROM (
  SELECT
    *
  FROM agg_0_invoices
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
