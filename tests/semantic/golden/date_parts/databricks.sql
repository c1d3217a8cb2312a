-- case: date_parts
-- guards: Date parts (issue 17) in group-by, where and order-by, on metric_time and on a time dimension through a join: each engine's EXTRACT normalised to ISO dow and week.
-- query: {"dialect": "databricks", "end_time": null, "group_by": ["metric_time__extract_year", "TimeDimension('metric_time', date_part_name='dow')", "metric_time__extract_week", "user__account__created_at__extract_quarter"], "limit": null, "metrics": ["events_tracked"], "order_by": ["-metric_time__extract_dow"], "start_time": null, "where": ["{{ TimeDimension('metric_time', date_part_name='doy') }} <= 200"]}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0
WITH agg_0_events AS (
  SELECT
    (
      (
        DAYOFWEEK(events.occurred_at) + 5
      ) % 7 + 1
    ) AS metric_time__extract_dow,
    WEEKOFYEAR(events.occurred_at) AS metric_time__extract_week,
    YEAR(events.occurred_at) AS metric_time__extract_year,
    QUARTER(user__account__accounts.created_at) AS user__account__created_at__extract_quarter,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM main.events AS events
  LEFT JOIN main.users AS user__users
    ON events.user_id = user__users.id
  LEFT JOIN main.accounts AS user__account__accounts
    ON user__users.account_id = user__account__accounts.id
  WHERE
    DAYOFYEAR(events.occurred_at) <= 200
  GROUP BY
    1,
    2,
    3,
    4
)
SELECT
  combined.metric_time__extract_dow,
  combined.metric_time__extract_week,
  combined.metric_time__extract_year,
  combined.user__account__created_at__extract_quarter,
  combined.events_tracked AS events_tracked
FROM (
  SELECT
    *
  FROM agg_0_events
) AS combined
ORDER BY
  metric_time__extract_dow DESC;
