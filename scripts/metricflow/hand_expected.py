"""Hand-written DuckDB SQL for the queries where MetricFlow is known to answer wrongly.

Each entry of HAND answers one query of tests/conformance/queries.yml marked ``mf_wrong``
(its ``expected.hand_sql`` names the key). The SQL reads the demo warehouse directly
(schema ``main``) and returns MetricFlow's columns in MetricFlow's order, so record.py can
store the rows as ``hand_rows`` next to MetricFlow's ``rows``.

Every SQL is a template with ``{placeholders}`` and two fillings:

- ``right``: the correct answer, stored as ``hand_rows``;
- ``mf``: the same SQL with MetricFlow's defect put back in (e.g. the dropped filter
  replaced by ``TRUE``). record.py checks that this variant reproduces MetricFlow's rows,
  which shows the hand SQL models MetricFlow's semantics (time spine joins, period_agg,
  NULL handling, which rows exist) exactly, apart from the defect.

    python scripts/metricflow/hand_expected.py --warehouse /tmp/conf/warehouse.duckdb [NAME ...]

prints the hand-computed rows. Needs only duckdb (either virtualenv has it).

Semantics copied from MetricFlow (checked by the ``mf`` variants):

- all-time cumulative at day d = measure over the rows whose agg time, truncated to the
  day, is <= d; a time-spine day without any such row has no row (inner join);
- at a coarser grain with ``period_agg: last`` the value is the one of the last time-spine
  day of the period (the spine ends 2026-10-31, so the last period is partial);
- a derived metric is NULL when one of its inputs has no row; rows of several metrics
  are combined with a FULL OUTER JOIN on the group-by keys.

Defects covered here (see docs/conformance.md for the ones the fixtures cannot show):

- same_metric_ratio: a ratio of ``revenue`` over ``revenue`` with a filter on the numerator
  and no alias (tests/conformance/extra_metrics.yml). MetricFlow names both inputs
  ``revenue`` and the ratio comes out as 1.0 in every quarter.
- cumulative_measure_filter: MetricFlow 0.213.0 ignores the ``filter:`` of a cumulative
  metric's input measure (``type_params.measure.filter``): cumulative_revenue and
  revenue_month_to_date count every invoice instead of the paid ones, and
  paid_subscriptions_started_to_date / _ended_to_date every subscription instead of the
  paid ones (so paid_subscriptions and arpa are wrong too).
- scd_window_grain: MetricFlow 0.213.0 joins an SCD type II model on the measure's time
  truncated to the day against the *untruncated* validity columns
  (``metric_time__day >= started_at``): a row valid from 08:00 is not found for an event at
  09:00 the same day, so the event lands in the NULL group although a plan held. The right
  answer compares both sides at the validity dimensions' declared grain (day).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

PAID_INVOICE = {"right": "i.status = 'paid'", "mf": "TRUE"}
PAID_SUBSCRIPTION = {"right": "s.mrr > 0", "mf": "TRUE"}

_QUARTERS = """
    periods AS (
      SELECT CAST(DATE_TRUNC('quarter', date_day) AS TIMESTAMP) AS metric_time__quarter,
             MAX(date_day) AS last_day
      FROM main.time_spine GROUP BY 1
    )"""
_MONTHS = """
    periods AS (
      SELECT CAST(DATE_TRUNC('month', date_day) AS TIMESTAMP) AS metric_time__month,
             MAX(date_day) AS last_day
      FROM main.time_spine GROUP BY 1
    )"""

HAND: dict[str, dict[str, Any]] = {
    # revenue = SUM(amount) of paid invoices by issue date; the numerator keeps invoices of
    # accounts on the pro plan (invoices.account_id -> accounts.id). Ratio in DOUBLE with
    # NULLIF on the denominator, as MetricFlow's ratio SQL; NULL if a quarter had no pro
    # revenue. MetricFlow's defect: the numerator is the unfiltered revenue.
    "pro_revenue_share_by_quarter": {
        "defect": "same_metric_ratio",
        "sql": """
            SELECT
              CAST(DATE_TRUNC('quarter', i.issued_at) AS TIMESTAMP) AS metric_time__quarter,
              CAST(SUM(CASE WHEN {pro} THEN i.amount END) AS DOUBLE)
                / CAST(NULLIF(SUM(i.amount), 0) AS DOUBLE) AS pro_revenue_share
            FROM main.invoices AS i
            LEFT JOIN main.accounts AS a ON i.account_id = a.id
            WHERE i.status = 'paid'
            GROUP BY 1
        """,
        "right": {"pro": "a.plan = 'pro'"},
        "mf": {"pro": "TRUE"},
    },
    # cumulative_revenue (all time, period_agg last) per month.
    "cumulative_revenue_by_month": {
        "defect": "cumulative_measure_filter",
        "sql": f"""
            WITH {_MONTHS},
            paid AS (
              SELECT CAST(i.issued_at AS DATE) AS day, i.amount
              FROM main.invoices AS i WHERE {{paid}}
            )
            SELECT p.metric_time__month, SUM(x.amount) AS cumulative_revenue
            FROM periods AS p JOIN paid AS x ON x.day <= p.last_day
            GROUP BY 1
        """,
        "right": {"paid": PAID_INVOICE["right"]},
        "mf": {"paid": PAID_INVOICE["mf"]},
    },
    # revenue_month_to_date (grain_to_date month) per day, 2026-04-20 .. 2026-05-10.
    "revenue_month_to_date_by_day": {
        "defect": "cumulative_measure_filter",
        "sql": """
            SELECT CAST(s.date_day AS TIMESTAMP) AS metric_time__day,
                   SUM(i.amount) AS revenue_month_to_date
            FROM main.time_spine AS s
            JOIN main.invoices AS i
              ON CAST(i.issued_at AS DATE) <= s.date_day
             AND CAST(i.issued_at AS DATE) >= DATE_TRUNC('month', s.date_day)
            WHERE {paid} AND s.date_day BETWEEN DATE '2026-04-20' AND DATE '2026-05-10'
            GROUP BY 1
        """,
        "right": {"paid": PAID_INVOICE["right"]},
        "mf": {"paid": PAID_INVOICE["mf"]},
    },
    # cumulative_revenue per quarter and region, query filter account__plan = 'enterprise'.
    "cumulative_revenue_enterprise_by_quarter": {
        "defect": "cumulative_measure_filter",
        "sql": f"""
            WITH {_QUARTERS},
            paid AS (
              SELECT CAST(i.issued_at AS DATE) AS day, i.amount, a.region
              FROM main.invoices AS i LEFT JOIN main.accounts AS a ON i.account_id = a.id
              WHERE {{paid}} AND a.plan = 'enterprise'
            )
            SELECT p.metric_time__quarter, x.region AS account__region,
                   SUM(x.amount) AS cumulative_revenue
            FROM periods AS p JOIN paid AS x ON x.day <= p.last_day
            GROUP BY 1, 2
        """,
        "right": {"paid": PAID_INVOICE["right"]},
        "mf": {"paid": PAID_INVOICE["mf"]},
    },
    # paid_subscriptions = paid started to date - paid ended to date, per quarter.
    "paid_subscriptions_by_quarter": {
        "defect": "cumulative_measure_filter",
        "sql": f"""
            WITH {_QUARTERS},
            subs AS (SELECT * FROM main.subscriptions AS s WHERE {{paid}}),
            started AS (
              SELECT p.metric_time__quarter, COUNT(*) AS n
              FROM periods AS p JOIN subs AS s ON CAST(s.started_at AS DATE) <= p.last_day
              GROUP BY 1
            ),
            ended AS (
              SELECT p.metric_time__quarter, COUNT(*) AS n
              FROM periods AS p JOIN subs AS s ON CAST(s.ended_at AS DATE) <= p.last_day
              GROUP BY 1
            )
            SELECT COALESCE(a.metric_time__quarter, b.metric_time__quarter) AS metric_time__quarter,
                   a.n - b.n AS paid_subscriptions,
                   a.n AS paid_subscriptions_started_to_date,
                   b.n AS paid_subscriptions_ended_to_date
            FROM started AS a FULL JOIN ended AS b ON a.metric_time__quarter = b.metric_time__quarter
        """,
        "right": {"paid": PAID_SUBSCRIPTION["right"]},
        "mf": {"paid": PAID_SUBSCRIPTION["mf"]},
    },
    # Saved query monthly_revenue_by_plan: revenue (simple, right in MetricFlow), mrr
    # (all-time cumulatives without filters, right) and arpa = mrr / paid_subscriptions
    # (wrong in MetricFlow through the paid filter), by month and the account's plan,
    # ordered by month then plan. The free plan has no paid subscription at all, so its
    # paid_subscriptions has no row and its arpa is NULL.
    "saved_monthly_revenue_by_plan": {
        "defect": "cumulative_measure_filter",
        "sql": f"""
            WITH {_MONTHS},
            subs AS (
              SELECT s.*, a.plan AS account__plan
              FROM main.subscriptions AS s LEFT JOIN main.accounts AS a ON s.account_id = a.id
            ),
            revenue AS (
              SELECT CAST(DATE_TRUNC('month', i.issued_at) AS TIMESTAMP) AS metric_time__month,
                     a.plan AS account__plan, SUM(i.amount) AS v
              FROM main.invoices AS i LEFT JOIN main.accounts AS a ON i.account_id = a.id
              WHERE i.status = 'paid'
              GROUP BY 1, 2
            ),
            mrr_started AS (
              SELECT p.metric_time__month, s.account__plan, SUM(s.mrr) AS v
              FROM periods AS p JOIN subs AS s ON CAST(s.started_at AS DATE) <= p.last_day
              GROUP BY 1, 2
            ),
            mrr_ended AS (
              SELECT p.metric_time__month, s.account__plan,
                     SUM(CASE WHEN s.ended_at IS NOT NULL THEN s.mrr ELSE 0 END) AS v
              FROM periods AS p JOIN subs AS s ON CAST(s.ended_at AS DATE) <= p.last_day
              GROUP BY 1, 2
            ),
            paid_started AS (
              SELECT p.metric_time__month, s.account__plan, COUNT(*) AS v
              FROM periods AS p JOIN subs AS s ON CAST(s.started_at AS DATE) <= p.last_day
              WHERE {{paid}}
              GROUP BY 1, 2
            ),
            paid_ended AS (
              SELECT p.metric_time__month, s.account__plan, COUNT(*) AS v
              FROM periods AS p JOIN subs AS s ON CAST(s.ended_at AS DATE) <= p.last_day
              WHERE {{paid}}
              GROUP BY 1, 2
            ),
            keys AS (
              SELECT metric_time__month, account__plan FROM revenue
              UNION SELECT metric_time__month, account__plan FROM mrr_started
              UNION SELECT metric_time__month, account__plan FROM mrr_ended
              UNION SELECT metric_time__month, account__plan FROM paid_started
              UNION SELECT metric_time__month, account__plan FROM paid_ended
            ),
            joined AS (
              SELECT k.metric_time__month, k.account__plan, r.v AS revenue,
                     ms.v - me.v AS mrr, ps.v - pe.v AS paid_subscriptions
              FROM keys AS k
              LEFT JOIN revenue AS r USING (metric_time__month, account__plan)
              LEFT JOIN mrr_started AS ms USING (metric_time__month, account__plan)
              LEFT JOIN mrr_ended AS me USING (metric_time__month, account__plan)
              LEFT JOIN paid_started AS ps USING (metric_time__month, account__plan)
              LEFT JOIN paid_ended AS pe USING (metric_time__month, account__plan)
            )
            SELECT metric_time__month, account__plan, revenue, mrr,
                   mrr * 1.0 / NULLIF(paid_subscriptions, 0) AS arpa
            FROM joined
            ORDER BY metric_time__month, account__plan
        """,
        "right": {"paid": PAID_SUBSCRIPTION["right"]},
        "mf": {"paid": PAID_SUBSCRIPTION["mf"]},
    },
}


def _window(time: str) -> dict[str, str]:
    """The SCD validity condition on subscriptions ``s`` at ``time``: right, and as
    MetricFlow writes it (scd_window_grain)."""
    day = f"DATE_TRUNC('day', {time})"
    return {
        "right": {
            "window": f"DATE_TRUNC('day', s.started_at) <= {day} AND ({day} < "
            "DATE_TRUNC('day', s.ended_at) OR s.ended_at IS NULL)"
        },
        "mf": {"window": f"{day} >= s.started_at AND ({day} < s.ended_at OR s.ended_at IS NULL)"},
    }


# The account's plan at the time (plan_history: subscriptions as an SCD type II model).
HAND.update(
    {
        "event_rows_by_plan_at_time": {
            "defect": "scd_window_grain",
            "sql": """
                SELECT s.plan AS account__plan_at_time, SUM(1) AS event_rows
                FROM main.events AS e
                LEFT JOIN main.subscriptions AS s
                  ON e.account_id = s.account_id AND {window}
                GROUP BY 1
            """,
            **_window("e.occurred_at"),
        },
        "event_rows_by_user_account_plan_at_time": {
            "defect": "scd_window_grain",
            "sql": """
                SELECT s.plan AS user__account__plan_at_time, SUM(1) AS event_rows
                FROM main.events AS e
                LEFT JOIN main.users AS u ON e.user_id = u.id
                LEFT JOIN main.subscriptions AS s
                  ON u.account_id = s.account_id AND {window}
                GROUP BY 1
            """,
            **_window("e.occurred_at"),
        },
        "signups_by_plan_at_time": {
            "defect": "scd_window_grain",
            "sql": """
                SELECT s.plan AS account__plan_at_time, COUNT(u.id) AS signups
                FROM main.users AS u
                LEFT JOIN main.subscriptions AS s
                  ON u.account_id = s.account_id AND {window}
                GROUP BY 1
            """,
            **_window("u.signed_up_at"),
        },
    }
)
HAND_SQL = sorted(HAND)


def hand_sql(name: str, variant: str = "right") -> str:
    """The hand SQL of ``name``: ``right`` answer, or ``mf`` with MetricFlow's defect."""
    entry = HAND[name]
    return entry["sql"].format(**entry[variant])


def hand_result(
    connection: Any, name: str, variant: str = "right"
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(columns, raw rows) of the hand SQL ``name`` on a DuckDB connection."""
    cursor = connection.execute(hand_sql(name, variant))
    columns = [description[0] for description in cursor.description]
    return columns, cursor.fetchall()


def main(argv: list[str] | None = None) -> None:
    import duckdb

    parser = argparse.ArgumentParser(description="Print the hand-computed expectations.")
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--variant", choices=("right", "mf"), default="right")
    parser.add_argument("names", nargs="*", help=f"default: all of {HAND_SQL}")
    args = parser.parse_args(argv)
    connection = duckdb.connect(str(args.warehouse), read_only=True)
    for name in args.names or HAND_SQL:
        columns, rows = hand_result(connection, name, args.variant)
        print(f"# {name} ({HAND[name]['defect']}, {args.variant})")
        print(columns)
        for row in rows:
            print(row)


if __name__ == "__main__":
    main()
