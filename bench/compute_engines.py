"""Hand SQL of ``python -m bench compute --engine clickhouse|spark``: one grouped scan per
source, as bench/compute.py's DuckDB SQL, written for ClickHouse (chdb) and Spark.

Same sources, columns and order as the DuckDB SQL (bench.compute checks three of them
against the stored values); ``{range}`` is the source's time range.
"""

from __future__ import annotations

CLICKHOUSE_HAND_SQL: dict[str, str] = {
    "events": """
        SELECT toDate(occurred_at) AS day,
          COUNT(DISTINCT account_id) AS active_accounts,
          COUNT(DISTINCT user_id) AS daily_active_users,
          COUNT(*) AS event_rows,
          COUNT(DISTINCT event_id) AS events_tracked,
          COUNT(DISTINCT CASE WHEN event_type = 'feature_used' THEN account_id END)
            AS feature_adopting_accounts,
          MIN(occurred_at) AS first_event_at,
          MIN(CASE WHEN event_type = 'report_created' THEN occurred_at END) AS first_value_at,
          COUNT(DISTINCT CASE WHEN event_type = 'invite_sent' THEN event_id END)
            AS invites_sent,
          SUM(toInt32(toDate(received_at) > toDate(occurred_at))) AS late_events,
          COUNT(DISTINCT CASE WHEN event_type = 'report_created' THEN event_id END)
            AS reports_created,
          SUM(CASE WHEN event_type IN ('purchase', 'plan_upgraded') THEN revenue END)
            AS tracked_revenue,
          COUNT(DISTINCT CASE WHEN event_type = 'trial_started' THEN event_id END)
            AS trials_started
        FROM main.events WHERE {range} GROUP BY 1
    """,
    "invoices": """
        SELECT toDate(issued_at) AS day, AVG(amount), COUNT(invoice_id),
          quantileExactInclusive(0.5)(toFloat64(amount)),
          SUM(CASE WHEN status = 'open' THEN amount ELSE 0 END),
          quantileExactInclusive(0.9)(toFloat64(amount)),
          COUNT(DISTINCT CASE WHEN status = 'paid' THEN account_id END),
          SUM(CASE WHEN status = 'paid' THEN amount END) AS revenue
        FROM main.invoices WHERE {range} GROUP BY 1
    """,
    "invoices/paid_at": "SELECT toDate(paid_at), COUNT(paid_at) FROM main.invoices "
    "WHERE {range} GROUP BY 1",
    "accounts": "SELECT toDate(created_at), AVG(seats), COUNT(id), MAX(seats) "
    "FROM main.accounts WHERE {range} GROUP BY 1",
    "accounts/churned_at": "SELECT toDate(churned_at), COUNT(churned_at) "
    "FROM main.accounts WHERE {range} GROUP BY 1",
    "subscriptions": "SELECT toDate(started_at), SUM(mrr) FROM main.subscriptions "
    "WHERE {range} GROUP BY 1",
    "subscriptions/ended_at": "SELECT toDate(ended_at), "
    "SUM(CASE WHEN ended_at IS NOT NULL THEN mrr ELSE 0 END) FROM main.subscriptions "
    "WHERE {range} GROUP BY 1",
    "users": "SELECT toDate(signed_up_at) AS day, COUNT(id) AS signups FROM main.users "
    "WHERE {range} GROUP BY 1",
}

SPARK_HAND_SQL: dict[str, str] = {
    "events": """
        SELECT CAST(occurred_at AS DATE) AS day,
          COUNT(DISTINCT account_id) AS active_accounts,
          COUNT(DISTINCT user_id) AS daily_active_users,
          COUNT(*) AS event_rows,
          COUNT(DISTINCT event_id) AS events_tracked,
          COUNT(DISTINCT CASE WHEN event_type = 'feature_used' THEN account_id END)
            AS feature_adopting_accounts,
          MIN(occurred_at) AS first_event_at,
          MIN(CASE WHEN event_type = 'report_created' THEN occurred_at END) AS first_value_at,
          COUNT(DISTINCT CASE WHEN event_type = 'invite_sent' THEN event_id END)
            AS invites_sent,
          SUM(CAST(CAST(received_at AS DATE) > CAST(occurred_at AS DATE) AS INT))
            AS late_events,
          COUNT(DISTINCT CASE WHEN event_type = 'report_created' THEN event_id END)
            AS reports_created,
          SUM(CASE WHEN event_type IN ('purchase', 'plan_upgraded') THEN revenue END)
            AS tracked_revenue,
          COUNT(DISTINCT CASE WHEN event_type = 'trial_started' THEN event_id END)
            AS trials_started
        FROM main.events WHERE {range} GROUP BY 1
    """,
    "invoices": """
        SELECT CAST(issued_at AS DATE) AS day, AVG(amount), COUNT(invoice_id),
          percentile(amount, 0.5),
          SUM(CASE WHEN status = 'open' THEN amount ELSE 0 END),
          percentile(amount, 0.9),
          COUNT(DISTINCT CASE WHEN status = 'paid' THEN account_id END),
          SUM(CASE WHEN status = 'paid' THEN amount END) AS revenue
        FROM main.invoices WHERE {range} GROUP BY 1
    """,
    "invoices/paid_at": "SELECT CAST(paid_at AS DATE), COUNT(paid_at) FROM main.invoices "
    "WHERE {range} GROUP BY 1",
    "accounts": "SELECT CAST(created_at AS DATE), AVG(seats), COUNT(id), MAX(seats) "
    "FROM main.accounts WHERE {range} GROUP BY 1",
    "accounts/churned_at": "SELECT CAST(churned_at AS DATE), COUNT(churned_at) "
    "FROM main.accounts WHERE {range} GROUP BY 1",
    "subscriptions": "SELECT CAST(started_at AS DATE), SUM(mrr) FROM main.subscriptions "
    "WHERE {range} GROUP BY 1",
    "subscriptions/ended_at": "SELECT CAST(ended_at AS DATE), "
    "SUM(CASE WHEN ended_at IS NOT NULL THEN mrr ELSE 0 END) FROM main.subscriptions "
    "WHERE {range} GROUP BY 1",
    "users": "SELECT CAST(signed_up_at AS DATE) AS day, COUNT(id) AS signups FROM main.users "
    "WHERE {range} GROUP BY 1",
}

HAND_SQL = {"clickhouse": CLICKHOUSE_HAND_SQL, "spark": SPARK_HAND_SQL}
