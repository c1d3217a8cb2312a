"""A definition's ``/`` gives DuckDB's numbers on PostgreSQL, MariaDB, ClickHouse (chdb) and
Spark (issue 20): integer / integer is not truncated nor kept to 4 decimals (MariaDB: 7 / 3
= 2.3333), DECIMAL / integer not kept at the DECIMAL's scale (ClickHouse: 10.00 / 3 = 3.33),
and a zero divisor is NULL everywhere (DuckDB would sum to infinity, PostgreSQL and Spark
(ANSI) would fail). Measures and a dimension of tests/semantic/compiler/
test_definition_division.py, compiled per dialect, compared to 10 significant digits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.execute import execute
from tests.conformance.normalize import row_sort_key
from tests.conftest import ROOT, demo_on_engines, demo_warehouse_at
from tests.integration.test_engines import _comparable
from tests.semantic.compiler.test_definition_division import BY_HAND, division_manifest

QUERIES = {
    **{
        metric: MetricQuery(metrics=(metric,), group_by=("metric_time__year",))
        for metric in BY_HAND
    },
    # A division in a dimension's expr, as a group-by key (seats / 4: 2.25, 2.5, 2.75…).
    "seat_quarters": MetricQuery(
        metrics=("half_seats",), group_by=("account_ratio__seat_quarters",)
    ),
}
# The engines' float digits agree to far more than 10 significant digits; MariaDB's 4
# decimals and ClickHouse's kept scale differ within 5.
DIGITS = 10
EMBEDDED = ["chdb", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A small demo in DuckDB, PostgreSQL and MariaDB: engine → (config, schema)."""
    source = tmp_path_factory.mktemp("division") / "demo.duckdb"
    demo_warehouse_at(source, events=2_000, seed=42)
    with demo_on_engines(source, "tally_div") as loaded:
        yield loaded


def _rows(config: Any, schema: str, name: str) -> list:
    query = MetricQuery(**{**QUERIES[name].__dict__, "dialect": config.dialect})
    compiled = compile_query(query, division_manifest(schema))
    rows = _comparable(list(execute(config, compiled.sql, timeout_s=300).rows), DIGITS)
    return sorted(rows, key=row_sort_key)


def _check(got: list, expected: list, engine: str) -> None:
    assert expected, "no rows"
    assert got == expected, f"{engine}: {got[:4]} != {expected[:4]}"


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_definition_division_gives_duckdb_rows(name: str, engine: str, engines: dict) -> None:
    """PostgreSQL and MariaDB return DuckDB's rows for a definition's division."""
    duck_config, duck_schema = engines["duckdb"]
    config, schema = engines[engine]
    expected = _rows(duck_config, duck_schema, name)
    _check(_rows(config, schema, name), expected, engine)


@pytest.mark.parametrize("engine", EMBEDDED)
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_definition_division_gives_duckdb_rows_embedded(
    name: str, engine: str, request: pytest.FixtureRequest, embedded_demo: Path
) -> None:
    """ClickHouse (chdb) and Spark return DuckDB's rows for a definition's division."""
    config = request.getfixturevalue(f"{engine}_warehouse")
    duck = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    _check(_rows(config, "main", name), _rows(duck, "main", name), engine)
