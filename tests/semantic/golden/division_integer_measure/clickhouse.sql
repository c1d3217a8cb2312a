-- case: division_integer_measure
-- guards: Integer / integer in measure and dimension exprs (seats / 2, seats / (id % 4), seats / 4): the dividend cast to each engine's DOUBLE (no truncation on PostgreSQL, Trino, T-SQL; no 4 decimals on MariaDB), a column divisor wrapped in NULLIF(…, 0).
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__year", "account_ratio__seat_quarters"], "limit": null, "metrics": ["half_seats", "seats_per_bucket"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: half_seats@1.0, seats_per_bucket@1.0
WITH agg_0_account_ratios AS (
  SELECT
    toDateTime64(dateTrunc('YEAR', account_ratios.created_at), 6) AS metric_time__year,
    CAST(account_ratios.seats AS Float64) / 4 AS account_ratio__seat_quarters,
    SUM(CAST(account_ratios.seats AS Float64) / 2) AS half_seats,
    SUM(CAST(account_ratios.seats AS Float64) / nullIf((
      account_ratios.id % 4
    ), 0)) AS seats_per_bucket
  FROM main.accounts AS account_ratios
  GROUP BY
    1,
    2
)
SELECT
  combined.metric_time__year AS metric_time__year,
  combined.account_ratio__seat_quarters AS account_ratio__seat_quarters,
  combined.half_seats AS half_seats,
  combined.seats_per_bucket AS seats_per_bucket
FROM (
  SELECT
    *
  FROM agg_0_account_ratios
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
