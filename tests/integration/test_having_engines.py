"""Having gives DuckDB's rows on PostgreSQL, MariaDB and ClickHouse (chdb), each compiled for
the engine's dialect: the wrapped combined SELECT, its WHERE before ORDER BY and LIMIT; and
DuckDB's rows are the unfiltered rows filtered in Python (tests/semantic/compiler/test_having.py
holds the property over many queries)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.config import WarehouseConfig, parse_warehouse_url
from semantic.warehouse.execute import execute
from tests.conformance.normalize import row_sort_key, rows_equal
from tests.conftest import ROOT, demo_on_engines, demo_warehouse_at
from tests.integration.test_engines import DIGITS, _comparable, manifest_for

CASES: dict[str, MetricQuery] = {
    # Two aggregations (the combine's join or, on Spark, its UNION ALL) and a group-by item.
    "two_metrics_and_an_item": MetricQuery(
        metrics=("revenue", "new_accounts"),
        group_by=("metric_time__month", "account__plan"),
        having=("revenue > 20000 AND {{ Dimension('account__plan') }} <> 'free'",),
    ),
    # Order and limit after the having: the top rows of those that passed.
    "ordered_and_limited": MetricQuery(
        metrics=("revenue",),
        group_by=("account",),
        having=("revenue >= 1000", "revenue < 50000"),
        order_by=("-revenue", "account"),
        limit=7,
    ),
    # A derived metric's computed value; NULLs pass nothing.
    "derived": MetricQuery(
        metrics=("arpa", "net_new_accounts"),
        group_by=("metric_time__quarter",),
        having=("arpa > 5000 OR net_new_accounts < 0",),
    ),
}


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    path: Path = tmp_path_factory.mktemp("having_engines") / "demo.duckdb"
    demo_warehouse_at(path, events=20_000, seed=42)
    with demo_on_engines(path, "tally_having") as loaded:
        yield loaded


def _rows(config: WarehouseConfig, schema: str, query: MetricQuery, digits: int) -> list:
    query = MetricQuery(**{**query.__dict__, "dialect": config.dialect})
    compiled = compile_query(query, manifest_for(schema))
    rows = _comparable(list(execute(config, compiled.sql, timeout_s=300).rows), digits)
    return rows if query.order_by else sorted(rows, key=row_sort_key)


def _expected(engines: dict[str, Any], case: str, digits: int) -> list:
    """DuckDB's rows, checked against the unfiltered rows filtered by the same having."""
    duck, schema = engines["duckdb"]
    rows = _rows(duck, schema, CASES[case], digits)
    assert rows, f"{case}: no row passes, nothing is compared"
    unfiltered = _rows(
        duck, schema, MetricQuery(**{**CASES[case].__dict__, "having": (), "limit": None}), digits
    )
    assert len(rows) < len(unfiltered), f"{case}: every row passes, nothing is filtered"
    return rows


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_having_rows_equal_duckdb_rows(case: str, engine: str, engines: dict[str, Any]) -> None:
    expected = _expected(engines, case, DIGITS[engine])
    config, schema = engines[engine]
    got = _rows(config, schema, CASES[case], DIGITS[engine])
    assert rows_equal(expected, got), f"{engine}: {expected[:3]} != {got[:3]}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_having_rows_on_clickhouse_equal_duckdb_rows(
    case: str, chdb_warehouse: WarehouseConfig, embedded_demo: Path
) -> None:
    duck = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    expected = _rows(duck, "main", CASES[case], 10)
    assert expected, case
    got = _rows(chdb_warehouse, "main", CASES[case], 10)
    assert rows_equal(expected, got), f"chdb: {expected[:3]} != {got[:3]}"
