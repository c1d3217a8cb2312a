-- case: scd_plan_at_time
-- guards: An SCD type II dimension (plan_history, natural entity account): each event and each new account under the plan the account had at that time, a LEFT JOIN on the key and the validity window (start <= t AND (t < end OR end IS NULL)), filtered on it too; account__plan still resolves to accounts alone (issue #16).
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__month", "account__plan_at_time", "account__plan"], "limit": null, "metrics": ["events_tracked", "new_accounts"], "order_by": [], "start_time": null, "where": ["{{ Dimension('account__is_paid_at_time') }}"]}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0, new_accounts@1.0
WITH agg_0_accounts AS MATERIALIZED (
  SELECT
    time_spine.period AS metric_time__month,
    agg.account__plan AS account__plan,
    agg.account__plan_at_time AS account__plan_at_time,
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
      account__plan_history.plan AS account__plan_at_time,
      COUNT(accounts.id) AS new_accounts__spine
    FROM main.accounts AS accounts
    LEFT JOIN main.subscriptions AS account__plan_history
      ON accounts.id = account__plan_history.account_id
      AND (
        toDateTime64(dateTrunc('DAY', account__plan_history.started_at), 6) <= toDateTime64(dateTrunc('DAY', accounts.created_at), 6)
        AND (
          toDateTime64(dateTrunc('DAY', accounts.created_at), 6) < toDateTime64(dateTrunc('DAY', account__plan_history.ended_at), 6)
          OR toDateTime64(dateTrunc('DAY', account__plan_history.ended_at), 6) IS NULL
        )
      )
    WHERE
      (
        account__plan_history.mrr > 0
      )
    GROUP BY
      1,
      2,
      3
  ) AS agg
    ON time_spine.period = agg.metric_time__month
), agg_1_events AS MATERIALIZED (
  SELECT
    toDateTime64(dateTrunc('MONTH', events.occurred_at), 6) AS metric_time__month,
    account__accounts.plan AS account__plan,
    account__plan_history.plan AS account__plan_at_time,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM main.events AS events
  LEFT JOIN main.accounts AS account__accounts
    ON events.account_id = account__accounts.id
  LEFT JOIN main.subscriptions AS account__plan_history
    ON events.account_id = account__plan_history.account_id
    AND (
      toDateTime64(dateTrunc('DAY', account__plan_history.started_at), 6) <= toDateTime64(dateTrunc('DAY', events.occurred_at), 6)
      AND (
        toDateTime64(dateTrunc('DAY', events.occurred_at), 6) < toDateTime64(dateTrunc('DAY', account__plan_history.ended_at), 6)
        OR toDateTime64(dateTrunc('DAY', account__plan_history.ended_at), 6) IS NULL
      )
    )
  WHERE
    (
      account__plan_history.mrr > 0
    )
  GROUP BY
    1,
    2,
    3
)
SELECT
  combined.metric_time__month AS metric_time__month,
  combined.account__plan AS account__plan,
  combined.account__plan_at_time AS account__plan_at_time,
  combined.events_tracked AS events_tracked,
  COALESCE(combined.new_accounts__spine, 0) AS new_accounts
FROM (
  SELECT
    all_keys.metric_time__month AS metric_time__month,
    all_keys.account__plan AS account__plan,
    all_keys.account__plan_at_time AS account__plan_at_time,
    agg_0_accounts.new_accounts__spine AS new_accounts__spine,
    agg_1_events.events_tracked AS events_tracked
  FROM (
    SELECT
      metric_time__month,
      account__plan,
      account__plan_at_time
    FROM agg_0_accounts
    UNION DISTINCT
    SELECT
      metric_time__month,
      account__plan,
      account__plan_at_time
    FROM agg_1_events
  ) AS all_keys
  LEFT JOIN agg_0_accounts
    ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_0_accounts.metric_time__month
    AND all_keys.account__plan IS NOT DISTINCT FROM agg_0_accounts.account__plan
    AND all_keys.account__plan_at_time IS NOT DISTINCT FROM agg_0_accounts.account__plan_at_time
  LEFT JOIN agg_1_events
    ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_1_events.metric_time__month
    AND all_keys.account__plan IS NOT DISTINCT FROM agg_1_events.account__plan
    AND all_keys.account__plan_at_time IS NOT DISTINCT FROM agg_1_events.account__plan_at_time
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
