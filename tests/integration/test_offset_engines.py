"""Offsets joined to spine days give the same rows on DuckDB, PostgreSQL and MariaDB.

The shapes of ``semantic/compiler/kinds/offset_days.py``: a day lag by month and ISO day of
week (interval arithmetic on each engine's dates), an ``offset_to_grain`` by week (the first
day of each week), a window of one month by quarter (each day moved a month forward, to the
month's last day when it is shorter), and a window of one fiscal quarter (window functions
over the spine and a day added per position, ``DATE_ADD`` on MariaDB).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.execute import execute
from tests.conftest import demo_on_engines, demo_warehouse_at
from tests.semantic.compiler.kinds.test_offset_days import offset_manifest

ENGINES = ("duckdb", "postgres", "mysql")

QUERIES = {
    "day_lag_by_month_and_dow": MetricQuery(
        metrics=("revenue_7_days_ago", "events_tracked_7_days_ago"),
        group_by=("metric_time__month", "metric_time__extract_dow"),
    ),
    "to_grain_by_week": MetricQuery(
        metrics=("revenue_since_month_start",),
        group_by=("metric_time__week",),
        start_time="2025-06-01",
        end_time="2026-03-31",
    ),
    "month_window_by_quarter_and_month": MetricQuery(
        metrics=("revenue_1_month_ago",),
        group_by=("metric_time__quarter", "metric_time__extract_month"),
    ),
    "fiscal_quarter_window": MetricQuery(
        metrics=("revenue_last_fiscal_quarter",),
        group_by=("metric_time__fiscal_quarter", "metric_time__day"),
    ),
}


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    path: Path = tmp_path_factory.mktemp("offsets") / "demo.duckdb"
    demo_warehouse_at(path, events=5_000, seed=7)
    with demo_on_engines(path, "i17_offsets") as loaded:
        yield loaded


def _value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, (float, Decimal)):
        return round(float(value), 4)
    return value


def _rows(engines: dict, engine: str, query: MetricQuery) -> list[tuple]:
    config, schema = engines[engine]
    compiled = compile_query(
        MetricQuery(**{**query.__dict__, "dialect": config.dialect}), offset_manifest(schema)
    )
    rows = [tuple(_value(v) for v in row) for row in execute(config, compiled.sql).rows]
    return sorted(rows, key=repr)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_offset_rows_are_equal_on_every_engine(name: str, engines: dict) -> None:
    results = {engine: _rows(engines, engine, QUERIES[name]) for engine in ENGINES}
    assert len(results["duckdb"]) > 5, results["duckdb"]
    assert results["postgres"] == results["duckdb"]
    assert results["mysql"] == results["duckdb"]
