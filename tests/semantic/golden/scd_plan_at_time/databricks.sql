-- case: scd_plan_at_time
-- guards: An SCD type II dimension (plan_history, natural entity account): each event and each new account under the plan the account had at that time, a LEFT JOIN on the key and the validity window (start <= t AND (t < end OR end IS NULL)), filtered on it too; account__plan still resolves to accounts alone (issue #16).
-- query: {"dialect": "databricks", "end_time": null, "group_by": ["metric_time__month", "account__plan_at_time", "account__plan"], "limit": null, "metrics": ["events_tracked", "new_accounts"], "order_by": [], "start_time": null, "where": ["{{ Dimension('account__is_paid_at_time') }}"]}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0, new_accounts@1.0
WITH agg_0_accounts AS (
  SELECT
    time_spine.period AS metric_time__month,
    agg.account__plan AS account__plan,
    agg.account__plan_at_time AS account__plan_at_time,
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
      account__plan_history.plan AS account__plan_at_time,
      COUNT(accounts.id) AS new_accounts__spine
    FROM main.accounts AS accounts
    LEFT JOIN main.subscriptions AS account__plan_history
      ON accounts.id = account__plan_history.account_id
      AND (
        DATE_TRUNC('DAY', account__plan_history.started_at) <= DATE_TRUNC('DAY', accounts.created_at)
        AND (
          DATE_TRUNC('DAY', accounts.created_at) < DATE_TRUNC('DAY', account__plan_history.ended_at)
          OR DATE_TRUNC('DAY', account__plan_history.ended_at) IS NULL
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
), agg_1_events AS (
  SELECT
    DATE_TRUNC('MONTH', events.occurred_at) AS metric_time__month,
    account__accounts.plan AS account__plan,
    account__plan_history.plan AS account__plan_at_time,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM main.events AS events
  LEFT JOIN main.accounts AS account__accounts
    ON events.account_id = account__accounts.id
  LEFT JOIN main.subscriptions AS account__plan_history
    ON events.account_id = account__plan_history.account_id
    AND (
      DATE_TRUNC('DAY', account__plan_history.started_at) <= DATE_TRUNC('DAY', events.occurred_at)
      AND (
        DATE_TRUNC('DAY', events.occurred_at) < DATE_TRUNC('DAY', account__plan_history.ended_at)
        OR DATE_TRUNC('DAY', account__plan_history.ended_at) IS NULL
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
  combined.metric_time__month,
  combined.account__plan,
  combined.account__plan_at_time,
  combined.events_tracked AS events_tracked,
  COALESCE(combined.new_accounts__spine, 0) AS new_accounts
FROM (
  SELECT
    all_rows.metric_time__month,
    all_rows.account__plan,
    all_rows.account__plan_at_time,
    MAX(all_rows.new_accounts__spine) AS new_accounts__spine,
    MAX(all_rows.events_tracked) AS events_tracked
  FROM (
    SELECT
      metric_time__month,
      account__plan,
      account__plan_at_time,
      new_accounts__spine,
      NULL AS events_tracked
    FROM agg_0_accounts
    UNION ALL
    SELECT
      metric_time__month,
      account__plan,
      account__plan_at_time,
      NULL AS new_accounts__spine,
      events_tracked
    FROM agg_1_events
  ) AS all_rows
  GROUP BY
    all_rows.metric_time__month,
    all_rows.account__plan,
    all_rows.account__plan_at_time
) AS combined;
