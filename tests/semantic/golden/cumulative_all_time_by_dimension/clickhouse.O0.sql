-- case: cumulative_all_time_by_dimension
-- guards: All-time cumulative by a dimension: daily partial sums, a running window, spine runs.
-- query: {"dialect": "clickhouse", "end_time": "2026-06-30", "group_by": ["metric_time__month", "account__plan"], "limit": null, "metrics": ["accounts_created_to_date"], "order_by": [], "start_time": "2026-01-01", "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: accounts_created_to_date@1.0
WITH agg_0_accounts AS (
  SELECT
    toDateTime64(dateTrunc('MONTH', daily.spine_day), 6) AS metric_time__month,
    daily.account__plan AS account__plan,
    daily.new_accounts__all_last AS new_accounts__all_last
  FROM (
    SELECT
      spine.date_day AS spine_day,
      source_rows.account__plan AS account__plan,
      MAX(source_rows.value_0) AS new_accounts__all_last
    FROM (
      SELECT
        MAX(spine_days.date_day) AS date_day
      FROM main.time_spine AS spine_days
      WHERE
        spine_days.date_day >= CAST('2026-01-01 00:00:00' AS DateTime)
        AND spine_days.date_day <= CAST('2026-06-30 00:00:00' AS DateTime)
      GROUP BY
        toDateTime64(dateTrunc('MONTH', spine_days.date_day), 6)
    ) AS spine
    INNER JOIN (
      SELECT
        row_day,
        account__plan,
        lead(toNullable(row_day)) OVER (PARTITION BY account__plan ORDER BY row_day) AS next_day,
        SUM(value_0) OVER (
          PARTITION BY account__plan
          ORDER BY row_day
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS value_0
      FROM (
        SELECT
          CAST(accounts.created_at AS DATE) AS row_day,
          accounts.plan AS account__plan,
          COUNT(accounts.id) AS value_0
        FROM main.accounts AS accounts
        WHERE
          accounts.created_at < CAST('2026-07-01 00:00:00' AS DateTime)
        GROUP BY
          1,
          2
      ) AS daily_rows
      WHERE
        NOT (
          row_day IS NULL
        )
    ) AS source_rows
      ON source_rows.row_day <= CAST(spine.date_day AS DATE)
      AND (
        source_rows.next_day IS NULL
        OR source_rows.next_day > CAST(spine.date_day AS DATE)
      )
    WHERE
      spine.date_day >= CAST('2026-01-01 00:00:00' AS DateTime)
      AND spine.date_day <= CAST('2026-06-30 00:00:00' AS DateTime)
    GROUP BY
      1,
      2
  ) AS daily
)
SELECT
  combined.metric_time__month AS metric_time__month,
  combined.account__plan AS account__plan,
  combined.new_accounts__all_last AS accounts_created_to_date
FROM (
  SELECT
    *
  FROM agg_0_accounts
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
