-- case: row_policy_and_mask
-- guards: A tenant's row policy on every read (accounts by the condition, users and events by a semi-join on account_id) and users.email masked as a salted MD5, salt by name only.
-- query: {"dialect": "spark", "end_time": null, "group_by": ["metric_time__month", "account__region"], "limit": null, "metrics": ["events_tracked", "distinct_user_emails"], "order_by": [], "start_time": null, "where": ["{{ Dimension('account__plan') }} = 'pro'"]}
-- principal: {"attributes": {"tenant_id": "t1"}, "name": "token:golden", "unrestricted": false, "view_pii": false}
-- test: tests/semantic/golden/test_golden.py
-- tally release r1: events_tracked@1.0, distinct_user_emails@1.0
WITH agg_0_events AS (
  SELECT
    DATE_TRUNC('MONTH', events.occurred_at) AS metric_time__month,
    account__accounts.region AS account__region,
    COUNT(DISTINCT events.event_id) AS events_tracked
  FROM (
    SELECT
      events.*
    FROM main.events AS events
    WHERE
      events.account_id IN (
        SELECT
          accounts.id
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
), agg_1_users AS (
  SELECT
    DATE_TRUNC('MONTH', users.signed_up_at) AS metric_time__month,
    account__accounts.region AS account__region,
    COUNT(
      DISTINCT CASE
        WHEN users.email IS NULL
        THEN NULL
        ELSE MD5(CONCAT(system.session.tally_pii_salt, ':', CAST(users.email AS STRING)))
      END
    ) AS distinct_emails
  FROM (
    SELECT
      users.*
    FROM main.users AS users
    WHERE
      users.account_id IN (
        SELECT
          accounts.id
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
  combined.metric_time__month,
  combined.account__region,
  combined.events_tracked AS events_tracked,
  combined.distinct_emails AS distinct_user_emails
FROM (
  SELECT
    all_rows.metric_time__month,
    all_rows.account__region,
    MAX(all_rows.events_tracked) AS events_tracked,
    MAX(all_rows.distinct_emails) AS distinct_emails
  FROM (
    SELECT
      metric_time__month,
      account__region,
      events_tracked,
      NULL AS distinct_emails
    FROM agg_0_events
    UNION ALL
    SELECT
      metric_time__month,
      account__region,
      NULL AS events_tracked,
      distinct_emails
    FROM agg_1_users
  ) AS all_rows
  GROUP BY
    all_rows.metric_time__month,
    all_rows.account__region
) AS combined;
