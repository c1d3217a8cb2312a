"""Constructs whose meaning differs between engines give DuckDB's answer on ClickHouse (chdb)
and Spark once semantic.compiler.dialects renders them (issue 20): exact percentiles, ->> on
missing keys, JSON nulls and numbers, DATEDIFF by unit on timestamps, lead past the last row,
and an unordered ROW_NUMBER."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlglot

from semantic.compiler.dialects import render
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.execute import execute
from tests.conftest import ROOT
from tests.integration.test_engines import _comparable

# Written in DuckDB's dialect, as definitions are; each query's rows are compared sorted.
QUERIES = {
    "percentiles": (
        "SELECT status, percentile_disc(0.9) WITHIN GROUP (ORDER BY amount) AS p90_disc, "
        "percentile_disc(0.5) WITHIN GROUP (ORDER BY amount) AS median_disc, "
        "percentile_cont(0.25) WITHIN GROUP (ORDER BY amount) AS p25_cont "
        "FROM main.invoices GROUP BY status"
    ),
    "json_text": (
        "SELECT properties ->> '$.feature' AS feature, properties ->> '$.missing' AS missing, "
        "count(*) AS n FROM main.events GROUP BY 1, 2"
    ),
    "date_differences": (
        "SELECT date_diff('day', issued_at, due_at) AS days, "
        "date_diff('week', issued_at, due_at) AS weeks, "
        "date_diff('month', issued_at, due_at) AS months, "
        "date_diff('hour', issued_at, due_at) AS hours, count(*) AS n "
        "FROM main.invoices GROUP BY 1, 2, 3, 4"
    ),
    "lead_past_the_end": (
        "SELECT day, lead(day) OVER (ORDER BY day) IS NULL AS last FROM "
        "(SELECT DISTINCT date_trunc('month', issued_at) AS day FROM main.invoices) AS d"
    ),
    "row_number_unordered": (
        "SELECT count(DISTINCT n) = count(*) AS unique_numbers FROM "
        "(SELECT ROW_NUMBER() OVER () AS n FROM main.accounts) AS numbered"
    ),
    "outer_join_nulls": (
        "SELECT paid.amount IS NULL AS unpaid, count(*) AS n FROM main.accounts AS a "
        "LEFT JOIN (SELECT account_id, sum(amount) AS amount FROM main.invoices "
        "WHERE status = 'paid' GROUP BY 1) AS paid ON paid.account_id = a.id GROUP BY 1"
    ),
    "cast_keeps_null": (
        "SELECT CAST(churned_at AS DATE) AS churned_on, count(*) AS n FROM main.accounts GROUP BY 1"
    ),
    "days_in_utc": (
        "SELECT CAST(occurred_at AS DATE) AS day, date_trunc('month', occurred_at) AS month, "
        "count(*) AS n FROM main.events GROUP BY 1, 2"
    ),
}
ENGINES = ["chdb", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_rendered_sql_means_what_it_means_on_duckdb(
    name: str, engine: str, request: pytest.FixtureRequest, embedded_demo: Path
) -> None:
    config: Any = request.getfixturevalue(f"{engine}_warehouse")
    duck = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    sql = QUERIES[name]
    rendered = render(sqlglot.parse_one(sql, read="duckdb"), config.dialect)
    reference = execute(duck, sql)
    expected = _comparable(list(reference.rows), 10)
    result = execute(config, rendered, timeout_s=300)
    got = _comparable(list(result.rows), 10)
    assert sorted(got, key=repr) == sorted(expected, key=repr), rendered
    # Booleans stay booleans (ClickHouse computes predicates as UInt8); numeric types may
    # differ between engines (normalised above).
    booleans = [c.kind == "boolean" for c in reference.columns]
    assert [c.kind == "boolean" for c in result.columns] == booleans, rendered


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_clickhouse_sql_carries_its_settings(
    name: str, chdb_warehouse: Any, embedded_demo: Path
) -> None:
    """Rendered ClickHouse SQL gives DuckDB's rows on a connection with ClickHouse's own
    defaults (as a BI tool or a published view's reader has): outer joins that fill
    defaults, CASTs that refuse NULL, another time zone. The query's SETTINGS clause sets
    what Tally's own sessions set."""
    from semantic.warehouse.engine_open import chdb_connect

    duck = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    sql = QUERIES[name]
    rendered = render(sqlglot.parse_one(sql, read="duckdb"), "clickhouse")
    expected = _comparable(list(execute(duck, sql).rows), 10)
    defaults = {
        "join_use_nulls": "0",
        "cast_keep_nullable": "0",
        "enable_materialized_cte": "0",
        "session_timezone": "America/New_York",
    }
    connection = chdb_connect(chdb_warehouse.path, user=False, settings=defaults)
    try:
        cursor = connection.cursor()
        cursor.execute(rendered)
        got = _comparable([tuple(row) for row in cursor.fetchall()], 10)
    finally:
        connection.close()
    assert sorted(got, key=repr) == sorted(expected, key=repr), rendered
