-- case: two_hops_and_time_range
-- guards: A two-hop dimension (events → users → accounts) with an inclusive time range.
-- query: {"dialect": "databricks", "end_time": "2026-03-31", "group_by": ["user__account__region", "metric_time__week"], "limit": null, "metrics": ["events_tracked"], "order_by": [], "start_time": "2026-01-01", "where": []}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0
WITH agg_0_events AS (
  SELECT
    DATE_TRUNC('WEEK', events.occurred_at) AS metric_time__week,
    user__account__accounts.region AS user__account__region,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM main.events AS events
  LEFT JOIN main.users AS user__users
    ON events.user_id = user__users.id
  LEFT JOIN main.accounts AS user__account__accounts
    ON user__users.account_id = user__account__accounts.id
  WHERE
    events.occurred_at >= CAST('2025-12-29 00:00:00' AS TIMESTAMP)
    AND events.occurred_at < CAST('2026-04-06 00:00:00' AS TIMESTAMP)
  GROUP BY
    1,
    2
)
SELECT
  combined.metric_time__week,
  combined.user__account__region,
  combined.events_tracked AS events_tracked
FROM (
  SELECT
    *
  FROM agg_0_events
) AS combined;
