-- case: two_models_one_join
-- guards: Metrics over events and accounts by plan: a LEFT JOIN to accounts, FULL OUTER combine.
-- query: {"dialect": "spark", "end_time": null, "group_by": ["metric_time__month", "account__plan"], "limit": 100, "metrics": ["events_tracked", "new_accounts"], "order_by": ["metric_time__month", "-events_tracked"], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0, new_accounts@1.0
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
), agg_1_events AS (
  SELECT
    DATE_TRUNC('MONTH', events.occurred_at) AS metric_time__month,
    account__accounts.plan AS account__plan,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM main.events AS events
  LEFT JOIN main.accounts AS account__accounts
    ON events.account_id = account__accounts.id
  GROUP BY
    1,
    2
)
SELECT
  combined.metric_time__month,
  combined.account__plan,
  combined.events_tracked AS events_tracked,
  COALESCE(combined.new_accounts__spine, 0) AS new_accounts
FROM (
  SELECT
    all_rows.metric_time__month,
    all_rows.account__plan,
    MAX(all_rows.new_accounts__spine) AS new_accounts__spine,
    MAX(all_rows.events_tracked) AS events_tracked
  FROM (
    SELECT
      metric_time__month,
      account__plan,
      new_accounts__spine,
      NULL AS events_tracked
    FROM agg_0_accounts
    UNION ALL
    SELECT
      metric_time__month,
      account__plan,
      NULL AS new_accounts__spine,
      events_tracked
    FROM agg_1_events
  ) AS all_rows
  GROUP BY
    all_rows.metric_time__month,
    all_rows.account__plan
) AS combined
ORDER BY
  metric_time__month ASC NULLS LAST,
  events_tracked DESC
LIMIT 100;
