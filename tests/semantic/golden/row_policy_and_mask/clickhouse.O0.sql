-- case: row_policy_and_mask
-- guards: A tenant's row policy on every read (accounts by the condition, users and events by a semi-join on account_id) and users.email masked as a salted MD5, salt by name only.
-- query: {"dialect": "clickhouse", "end_time": null, "group_by": ["metric_time__month", "account__region"], "limit": null, "metrics": ["events_tracked", "distinct_user_emails"], "order_by": [], "start_time": null, "where": ["{{ Dimension('account__plan') }} = 'pro'"]}
-- principal: {"attributes": {"tenant_id": "t1"}, "name": "token:golden", "unrestricted": false, "view_pii": false}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0, distinct_user_emails@1.0
WITH agg_0_events AS MATERIALIZED (
  SELECT
    toDateTime64(dateTrunc('MONTH', events.occurred_at), 6) AS metric_time__month,
    account__accounts.region AS account__region,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM (
    SELECT
      events.*
    FROM main.events AS events
    WHERE
      events.account_id IN (
        SELECT
          accounts.id AS id
        FROM main.accounts AS accounts
        WHERE
          accounts.tenant_id = 't1'
      )
  ) AS events
  LEFT JOIN (
    SELECT
      accounts.*
    FROM main.accounts AS accounts
    WHERE
      accounts.tenant_id = 't1'
  ) AS account__accounts
    ON events.account_id = account__accounts.id
  WHERE
    account__accounts.plan = 'pro'
  GROUP BY
    1,
    2
), agg_1_users AS MATERIALIZED (
  SELECT
    toDateTime64(dateTrunc('MONTH', users.signed_up_at), 6) AS metric_time__month,
    account__accounts.region AS account__region,
    COUNT(
      DISTINCT CASE
        WHEN users.email IS NULL
        THEN NULL
        ELSE LOWER(
          HEX(
            MD5(CONCAT({tally_pii_salt: Nullable(String)}, ':', CAST(users.email AS String)))
          )
        )
      END
    ) AS distinct_emails
  FROM (
    SELECT
      users.*
    FROM main.users AS users
    WHERE
      users.account_id IN (
        SELECT
          accounts.id AS id
        FROM main.accounts AS accounts
        WHERE
          accounts.tenant_id = 't1'
      )
  ) AS users
  LEFT JOIN (
    SELECT
      accounts.*
    FROM main.accounts AS accounts
    WHERE
      accounts.tenant_id = 't1'
  ) AS account__accounts
    ON users.account_id = account__accounts.id
  WHERE
    account__accounts.plan = 'pro'
  GROUP BY
    1,
    2
)
SELECT
  combined.metric_time__month AS metric_time__month,
  combined.account__region AS account__region,
  combined.events_tracked AS events_tracked,
  combined.distinct_emails AS distinct_user_emails
FROM (
  SELECT
    all_keys.metric_time__month AS metric_time__month,
    all_keys.account__region AS account__region,
    agg_0_events.events_tracked AS events_tracked,
    agg_1_users.distinct_emails AS distinct_emails
  FROM (
    SELECT
      metric_time__month,
      account__region
    FROM agg_0_events
    UNION DISTINCT
    SELECT
      metric_time__month,
      account__region
    FROM agg_1_users
  ) AS all_keys
  LEFT JOIN agg_0_events
    ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_0_events.metric_time__month
    AND all_keys.account__region IS NOT DISTINCT FROM agg_0_events.account__region
  LEFT JOIN agg_1_users
    ON all_keys.metric_time__month IS NOT DISTINCT FROM agg_1_users.metric_time__month
    AND all_keys.account__region IS NOT DISTINCT FROM agg_1_users.account__region
) AS combined
SETTINGS session_timezone = 'UTC', join_use_nulls = 1, cast_keep_nullable = 1, enable_materialized_cte = 1;
