-- case: two_models_one_join
-- guards: Metrics over events and accounts by plan: a LEFT JOIN to accounts, FULL OUTER combine.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__month", "account__plan"], "limit": 100, "metrics": ["events_tracked", "new_accounts"], "order_by": ["metric_time__month", "-events_tracked"], "start_time": null, "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0, new_accounts@1.0
WITH agg_0_accounts AS MATERIALIZED (
  SELECT
    time_spine.period AS metric_time__month,
    agg.account__plan AS account__plan,
    agg.new_accounts__spine AS new_accounts__spine
  FROM (
    SELECT DISTINCT
      toDateTime64(dateTrunc('MONTH', spine.date_day), 6) AS period
    FROM main.time_spine AS spine
  ) AS time_spine
  LEFT JOIN (
    SELECT
      toDateTime64(dateTrunc('MONTH', accounts.created_at), 6) AS metric_time__month,
      accounts.plan AS account__plan,
      COUNT(accounts.id) AS new_accounts__spine
    FROM main.accounts AS accounts
    GROUP BY
      1,
      2
  ) AS agg
    ON time_spine.period = agg.metric_time__month
), agg_1_events AS MATERIALIZED (
  SELECT
    toDateTime64(dateTrunc('MONTH', events.occurred_at), 6) AS metric_time__month,
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
  combined.metric_time__month AS metric_time__month,
  combined.account__plan AS account__plan,
  combined.events_tracked AS events_tracked,
  COALESCE(combined.new_accounts__spine, 0) AS new_accounts
FROM (
  SELECT
    all_keys.metric_time__month AS metric_time__month,
    all_keys.account__plan AS account__plan,
    agg_0_accounts.new_accounts__spine AS new_accounts__spine,
    agg_1_events.events_tracked AS events_tracked
  FROM (
    SELECT
      metric_time__month,
      account__plan
    FROM agg_0_accounts
    UNION DISTINCT
    SELECT
      metric_time__month,
      account__plan
    FROM agg_1_events
  ) AS all_keys
  LEFT JOIN agg_0_accounts
    ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_0_accounts.metric_time__month
    AND all_keys.account__plan IS NOT DISTINCT FROM agg_0_accounts.account__plan
  LEFT JOIN agg_1_events
    ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_1_events.metric_time__month
    AND all_keys.account__plan IS NOT DISTINCT FROM agg_1_events.account__plan
) AS combined
ORDER BY
  metric_time__month ASC,
  events_tracked DESC
LIMIT 100
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
