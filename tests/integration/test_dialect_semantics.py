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
