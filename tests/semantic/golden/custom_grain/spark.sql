-- case: custom_grain
-- guards: A custom grain (issue 17): the spine's fiscal_quarter column joined on each row's day, a filter on fiscal_year, and a month-to-date cumulative rolled up by fiscal quarter.
-- query: {"dialect": "spark", "end_time": null, "group_by": ["metric_time__fiscal_quarter"], "limit": null, "metrics": ["revenue", "revenue_month_to_date"], "order_by": [], "start_time": null, "where": ["{{ TimeDimension('metric_time', 'fiscal_year') }} >= '2025-02-01'"]}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: revenue@1.0, revenue_month_to_date@1.0
WITH agg_0_invoices AS (
  SELECT
    invoices__issued_at__spine.fiscal_quarter_start AS metric_time__fiscal_quarter,
    SUM(invoices.amount) AS invoice_amount__fa1190297
  FROM main.invoices AS invoices
  LEFT JOIN main.time_spine AS invoices__issued_at__spine
    ON invoices__issued_at__spine.date_day = DATE_TRUNC('DAY', invoices.issued_at)
  WHERE
    invoices__issued_at__spine.fiscal_year_start >= '2025-02-01'
    AND invoices.status = 'paid'
  GROUP BY
    1
), agg_1_invoices AS (
  SELECT DISTINCT
    daily.spine_period_0 AS metric_time__fiscal_quarter,
    LAST_VALUE(daily.invoice_amount__fa1190297__tdmonth_last) OVER (
      PARTITION BY daily.spine_period_0
      ORDER BY daily.spine_day NULLS LAST
      ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
    ) AS invoice_amount__fa1190297__tdmonth_last
  FROM (
    SELECT
      spine_day,
      spine_period_0,
      spine_period_1,
      invoice_amount__fa1190297__tdmonth_last
    FROM (
      SELECT
        spine.date_day AS spine_day,
        spine.fiscal_quarter_start AS spine_period_0,
        spine.fiscal_year_start AS spine_period_1,
        SUM(source_rows.value_0) OVER (
          PARTITION BY DATE_TRUNC('MONTH', spine.date_day)
          ORDER BY spine.date_day NULLS LAST
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS invoice_amount__fa1190297__tdmonth_last,
        COUNT(source_rows.row_day) OVER (
          PARTITION BY DATE_TRUNC('MONTH', spine.date_day)
          ORDER BY spine.date_day NULLS LAST
          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
        ) AS rows_in_window
      FROM main.time_spine AS spine
      LEFT JOIN (
        SELECT
          CAST(invoices.issued_at AS DATE) AS row_day,
          SUM(invoices.amount) AS value_0
        FROM main.invoices AS invoices
        WHERE
          invoices.status = 'paid'
        GROUP BY
          1
      ) AS source_rows
        ON source_rows.row_day = CAST(spine.date_day AS DATE)
    ) AS windowed
    WHERE
      rows_in_window > 0
  ) AS daily
  WHERE
    daily.spine_period_1 >= '2025-02-01'
)
SELECT
  combined.metric_time__fiscal_quarter,
  combined.invoice_amount__fa1190297 AS revenue,
  combined.invoice_amount__fa1190297__tdmonth_last AS revenue_month_to_date
FROM (
  SELECT
    all_rows.metric_time__fiscal_quarter,
    MAX(all_rows.invoice_amount__fa1190297) AS invoice_amount__fa1190297,
    MAX(all_rows.invoice_amount__fa1190297__tdmonth_last) AS invoice_amount__fa1190297__tdmonth_last
  FROM (
    SELECT
      metric_time__fiscal_quarter,
      invoice_amount__fa1190297,
      NULL AS invoice_amount__fa1190297__tdmonth_last
    FROM agg_0_invoices
    UNION ALL
    SELECT
      metric_time__fiscal_quarter,
      NULL AS invoice_amount__fa1190297,
      invoice_amount__fa1190297__tdmonth_last
    FROM agg_1_invoices
  ) AS all_rows
  GROUP BY
    all_rows.metric_time__fiscal_quarter
) AS combined;
