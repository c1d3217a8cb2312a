-- case: division_decimal_measure
-- guards: DECIMAL / integer and DECIMAL / DECIMAL in measure exprs (amount / 3, amount / (amount + 1)): a DOUBLE quotient on every engine, as on DuckDB (ClickHouse would keep the DECIMAL's scale, Snowflake 6 decimals).
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__year"], "limit": null, "metrics": ["amount_thirds", "amount_share"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: amount_thirds@1.0, amount_share@1.0
WITH agg_0_invoice_ratios AS (
  SELECT
    toDateTime64(dateTrunc('YEAR', invoice_ratios.issued_at), 6) AS metric_time__year,
    SUM(CAST(invoice_ratios.amount AS Float64) / 3) AS amount_thirds,
    SUM(
      CAST(invoice_ratios.amount AS Float64) / nullIf((
        invoice_ratios.amount + 1
      ), 0)
    ) AS amount_share
  FROM main.invoices AS invoice_ratios
  GROUP BY
    1
)
SELECT
  combined.metric_time__year AS metric_time__year,
  combined.amount_thirds AS amount_thirds,
  combined.amount_share AS amount_share
FROM (
  SELECT
    *
  FROM agg_0_invoice_ratios
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
