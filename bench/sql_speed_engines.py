"""The engines of ``python -m bench sql_speed --engine``: the demo warehouse copied from
DuckDB into ClickHouse embedded (chdb) or Spark local, and hand-written SQL for each.

The hand SQL answers the same rows as Tally's SQL for the case (checked before timing, as on
DuckDB) and uses what a careful analyst would write on that engine: ClickHouse's
``toStartOfMonth``/``argMax``/``ARRAY JOIN``, Spark's ``max_by`` and ``date_sub``. Both read
the tables of database ``main``, where the copy puts them (the schema fixtures/ name).

MetricFlow's SQL is DuckDB's (recorded on DuckDB), so off DuckDB a case's baseline is its
hand SQL only, and only cases with hand SQL for the engine are run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# --engine name -> the WAREHOUSE_URL scheme of its embedded form.
SCHEME = {"clickhouse": "chdb", "spark": "spark"}

CLICKHOUSE_HAND_SQL: dict[str, str] = {
    "revenue_by_month": """
        SELECT toStartOfMonth(issued_at) AS metric_time__month, SUM(amount) AS revenue
        FROM main.invoices
        WHERE status = 'paid'
        GROUP BY 1
    """,
    "events_by_user_account_region": """
        SELECT CAST(a.churned_at IS NOT NULL AS Bool) AS account__is_churned,
               ua.region AS user__account__region,
               COUNT(DISTINCT e.event_id) AS events_tracked,
               COUNT(DISTINCT e.user_id) AS daily_active_users
        FROM main.events AS e
        LEFT JOIN main.accounts AS a ON e.account_id = a.id
        LEFT JOIN main.users AS u ON e.user_id = u.id
        LEFT JOIN main.accounts AS ua ON u.account_id = ua.id
        GROUP BY 1, 2
    """,
    "cumulative_revenue_by_month": """
        SELECT month AS metric_time__month,
               SUM(revenue) OVER (ORDER BY month) AS cumulative_revenue
        FROM (
          SELECT toStartOfMonth(issued_at) AS month, SUM(amount) AS revenue
          FROM main.invoices
          WHERE status = 'paid'
          GROUP BY 1
        )
    """,
    # Each distinct (day, user) counts for its own day and the six after it.
    "weekly_active_users_by_day": """
        SELECT d AS metric_time__day, COUNT(DISTINCT user_id) AS weekly_active_users
        FROM (
          SELECT DISTINCT toDate(occurred_at) AS day, user_id
          FROM main.events
          WHERE occurred_at >= '2026-04-25' AND occurred_at < '2026-06-12'
        )
        ARRAY JOIN arrayMap(i -> day + i, range(7)) AS d
        WHERE d BETWEEN toDate('2026-05-01') AND toDate('2026-06-11')
        GROUP BY d
    """,
    "activation_rate_7d_by_month": """
        WITH signups AS (
          SELECT account_id, toDate(occurred_at) AS d, toStartOfMonth(occurred_at) AS m
          FROM main.events WHERE event_type = 'signup'
        ), reports AS (
          SELECT DISTINCT account_id, toDate(occurred_at) AS d
          FROM main.events WHERE event_type = 'report_created'
        ), credited AS (
          SELECT r.account_id, argMax(s.m, s.d) AS m
          FROM reports AS r
          INNER JOIN signups AS s
            ON s.account_id = r.account_id AND s.d <= r.d AND s.d > r.d - 7
          GROUP BY r.account_id, r.d
        )
        SELECT b.m AS metric_time__month,
               toFloat64(COALESCE(c.n, 0)) / toFloat64(NULLIF(b.n, 0)) AS activation_rate_7d
        FROM (SELECT m, COUNT(DISTINCT account_id) AS n FROM signups GROUP BY 1) AS b
        LEFT JOIN (SELECT m, COUNT(DISTINCT account_id) AS n FROM credited GROUP BY 1) AS c
          ON c.m = b.m
    """,
    "revenue_7d_by_day": """
        WITH daily AS (
          SELECT toDate(issued_at) AS d, SUM(amount) AS v
          FROM main.invoices WHERE status = 'paid' GROUP BY 1
        )
        SELECT metric_time__day, revenue_7d FROM (
          SELECT s.date_day AS metric_time__day,
                 SUM(d.v) OVER w AS revenue_7d, COUNT(d.v) OVER w AS n
          FROM main.time_spine AS s LEFT JOIN daily AS d ON d.d = s.date_day
          WINDOW w AS (ORDER BY s.date_day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
        ) WHERE n > 0
    """,
    "emea_events_by_quarter": """
        SELECT toStartOfQuarter(e.occurred_at) AS metric_time__quarter,
               COUNT(DISTINCT e.event_id) AS events_tracked,
               COUNT(DISTINCT e.user_id) AS daily_active_users
        FROM main.events AS e
        INNER JOIN main.users AS u ON e.user_id = u.id
        INNER JOIN main.accounts AS a ON u.account_id = a.id
        WHERE a.region = 'EMEA'
        GROUP BY 1
    """,
}

SPARK_HAND_SQL: dict[str, str] = {
    "revenue_by_month": """
        SELECT DATE_TRUNC('MONTH', issued_at) AS metric_time__month, SUM(amount) AS revenue
        FROM main.invoices
        WHERE status = 'paid'
        GROUP BY 1
    """,
    "events_by_user_account_region": """
        SELECT a.churned_at IS NOT NULL AS account__is_churned,
               ua.region AS user__account__region,
               COUNT(DISTINCT e.event_id) AS events_tracked,
               COUNT(DISTINCT e.user_id) AS daily_active_users
        FROM main.events AS e
        LEFT JOIN main.accounts AS a ON e.account_id = a.id
        LEFT JOIN main.users AS u ON e.user_id = u.id
        LEFT JOIN main.accounts AS ua ON u.account_id = ua.id
        GROUP BY 1, 2
    """,
    "cumulative_revenue_by_month": """
        SELECT month AS metric_time__month,
               SUM(revenue) OVER (ORDER BY month) AS cumulative_revenue
        FROM (
          SELECT DATE_TRUNC('MONTH', issued_at) AS month, SUM(amount) AS revenue
          FROM main.invoices
          WHERE status = 'paid'
          GROUP BY 1
        )
    """,
    # Each distinct (day, user) counts for its own day and the six after it.
    "weekly_active_users_by_day": """
        SELECT d AS metric_time__day, COUNT(DISTINCT user_id) AS weekly_active_users
        FROM (
          SELECT DISTINCT CAST(occurred_at AS DATE) AS day, user_id
          FROM main.events
          WHERE occurred_at >= TIMESTAMP '2026-04-25' AND occurred_at < TIMESTAMP '2026-06-12'
        ) LATERAL VIEW explode(sequence(day, date_add(day, 6))) AS d
        WHERE d BETWEEN DATE '2026-05-01' AND DATE '2026-06-11'
        GROUP BY d
    """,
    "activation_rate_7d_by_month": """
        WITH signups AS (
          SELECT account_id, CAST(occurred_at AS DATE) AS d,
                 DATE_TRUNC('MONTH', occurred_at) AS m
          FROM main.events WHERE event_type = 'signup'
        ), reports AS (
          SELECT DISTINCT account_id, CAST(occurred_at AS DATE) AS d
          FROM main.events WHERE event_type = 'report_created'
        ), credited AS (
          SELECT r.account_id, max_by(s.m, s.d) AS m
          FROM reports AS r
          JOIN signups AS s
            ON s.account_id = r.account_id AND s.d <= r.d AND s.d > date_sub(r.d, 7)
          GROUP BY r.account_id, r.d
        )
        SELECT b.m AS metric_time__month,
               CAST(COALESCE(c.n, 0) AS DOUBLE) / CAST(NULLIF(b.n, 0) AS DOUBLE)
                 AS activation_rate_7d
        FROM (SELECT m, COUNT(DISTINCT account_id) AS n FROM signups GROUP BY 1) AS b
        LEFT JOIN (SELECT m, COUNT(DISTINCT account_id) AS n FROM credited GROUP BY 1) AS c
          ON c.m = b.m
    """,
    "revenue_7d_by_day": """
        WITH daily AS (
          SELECT CAST(issued_at AS DATE) AS d, SUM(amount) AS v
          FROM main.invoices WHERE status = 'paid' GROUP BY 1
        )
        SELECT metric_time__day, revenue_7d FROM (
          SELECT s.date_day AS metric_time__day,
                 SUM(d.v) OVER w AS revenue_7d, COUNT(d.v) OVER w AS n
          FROM main.time_spine AS s LEFT JOIN daily AS d ON d.d = s.date_day
          WINDOW w AS (ORDER BY s.date_day ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
        ) WHERE n > 0
    """,
    "emea_events_by_quarter": """
        SELECT DATE_TRUNC('QUARTER', e.occurred_at) AS metric_time__quarter,
               COUNT(DISTINCT e.event_id) AS events_tracked,
               COUNT(DISTINCT e.user_id) AS daily_active_users
        FROM main.events AS e
        JOIN main.users AS u ON e.user_id = u.id
        JOIN main.accounts AS a ON u.account_id = a.id
        WHERE a.region = 'EMEA'
        GROUP BY 1
    """,
}

HAND_SQL = {"clickhouse": CLICKHOUSE_HAND_SQL, "spark": SPARK_HAND_SQL}


@dataclass(frozen=True)
class Target:
    """An engine the bench times SQL on."""

    engine: str
    dialect: str
    # sql -> (column names, rows)
    run: Callable[[str], tuple[list[str], list[Any]]]
    note: str


def open_target(engine: str, source: Path, path: Path) -> Target:
    """``engine``'s warehouse at ``path``, copied from the DuckDB file ``source`` first
    when ``path`` does not exist (a chdb data directory or a Spark Parquet warehouse)."""
    from semantic.warehouse.config import parse_warehouse_url
    from semantic.warehouse.connections import warehouse_ping
    from semantic.warehouse.execute import execute
    from semantic.warehouse.loader import copy_duckdb_tables

    config = parse_warehouse_url(f"{SCHEME[engine]}:///{path.resolve()}", base_dir=Path("/"))
    if not path.exists():
        print(f"copying {source} into {config.display_url} ...", flush=True)
        copy_duckdb_tables(source, config, schema="main")
    warehouse_ping(config, timeout_s=600)

    def run(sql: str) -> tuple[list[str], list[Any]]:
        result = execute(config, sql, timeout_s=3600)
        return [c.name for c in result.columns], list(result.rows)

    return Target(
        engine, config.dialect, run, f"{engine} ({config.display_url}): {_version(engine)}"
    )


def _version(engine: str) -> str:
    if engine == "clickhouse":
        import chdb

        return f"chdb {chdb.__version__}"
    import pyspark

    return f"pyspark {pyspark.__version__} local"


def cpu_clock() -> float:
    """CPU seconds of this process (DuckDB's and chdb's threads) and of its live descendants
    (Spark local's JVM): on a shared machine, the work a query costs rather than its wait."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for pid in _descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            pending += children
    return found
