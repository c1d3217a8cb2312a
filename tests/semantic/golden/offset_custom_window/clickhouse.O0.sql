-- case: offset_custom_window
-- guards: offset_window: 1 fiscal_quarter: each spine day moves to its position in the next fiscal quarter (LEAD over the periods' first and last days), by fiscal quarter.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__fiscal_quarter"], "limit": null, "metrics": ["revenue_last_fiscal_quarter"], "order_by": [], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: revenue_last_fiscal_quarter@1.0
WITH agg_0_invoices AS (
  SELECT
    time_spine.grain__fiscal_quarter AS metric_time__fiscal_quarter,
    SUM(agg.invoice_amount__fa1190297__offset_1_fiscal_quarter) AS invoice_amount__fa1190297__offset_1_fiscal_quarter
  FROM (
    SELECT
      pairs.period AS period,
      pairs.source_day AS source_day,
      report.fiscal_quarter_start AS grain__fiscal_quarter
    FROM (
      SELECT
        CASE
          WHEN DATE_ADD(DAY, CAST(days.day_number - 1 AS Int32), later.later_first) <= later.later_last
          THEN DATE_ADD(DAY, CAST(days.day_number - 1 AS Int32), later.later_first)
          ELSE later.later_last
        END AS period,
        days.spine_day AS source_day
      FROM (
        SELECT
          spine.date_day AS spine_day,
          spine.fiscal_quarter_start AS period_label,
          ROW_NUMBER() OVER (PARTITION BY spine.fiscal_quarter_start ORDER BY spine.date_day) AS day_number
        FROM main.time_spine AS spine
      ) AS days
      INNER JOIN (
        SELECT
          period_label,
          lead(toNullable(first_day), 1) OVER (ORDER BY first_day) AS later_first,
          lead(toNullable(last_day), 1) OVER (ORDER BY first_day) AS later_last
        FROM (
          SELECT
            spine.fiscal_quarter_start AS period_label,
            MIN(spine.date_day) AS first_day,
            MAX(spine.date_day) AS last_day
          FROM main.time_spine AS spine
          GROUP BY
            spine.fiscal_quarter_start
        ) AS bounds
      ) AS later
        ON days.period_label = later.period_label
      WHERE
        NOT (
          later.later_first IS NULL
        )
    ) AS pairs
    LEFT JOIN main.time_spine AS report
      ON report.date_day = pairs.period
  ) AS time_spine
  INNER JOIN (
    SELECT
      toDateTime64(dateTrunc('DAY', invoices.issued_at), 6) AS metric_time__day,
      invoices.amount AS invoice_amount__fa1190297__offset_1_fiscal_quarter
    FROM main.invoices AS invoices
    WHERE
      invoices.status = 'paid'
  ) AS agg
    ON time_spine.source_day = agg.metric_time__day
  GROUP BY
    1
)
SELECT
  combined.metric_time__fiscal_quarter AS metric_time__fiscal_quarter,
  combined.invoice_amount__fa1190297__offset_1_fiscal_quarter AS revenue_last_fiscal_quarter
FROM (
  SELECT
    *
  FROM agg_0_invoices
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
