"""semantic.compiler.time: truncation, period bounds, day ranges and the time spine."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlglot import exp

from semantic.compiler.manifest import Manifest
from semantic.compiler.resolve import parse_group_by
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import (
    day_range,
    metric_time_item,
    period_bounds,
    spine_periods,
    trunc,
    unbounded,
)

D = dt.date


@pytest.mark.parametrize(
    ("grain", "expected"),
    [
        ("day", (D(2026, 2, 11), D(2026, 5, 20))),
        ("week", (D(2026, 2, 9), D(2026, 5, 24))),
        ("month", (D(2026, 2, 1), D(2026, 5, 31))),
        ("quarter", (D(2026, 1, 1), D(2026, 6, 30))),
        ("year", (D(2026, 1, 1), D(2026, 12, 31))),
    ],
)
def test_period_bounds_widen_to_whole_periods(grain: str, expected: tuple[D, D]) -> None:
    """A range by month reads whole months, as MetricFlow does (weeks start on Monday)."""
    assert period_bounds(D(2026, 2, 11), D(2026, 5, 20), grain) == expected


def test_period_bounds_of_an_open_end_run_to_the_last_date() -> None:
    """9999-12-31 has no next period: the range ends at date.max instead of overflowing."""
    assert period_bounds(D(2026, 1, 5), D(9999, 12, 31), "month") == (D(2026, 1, 1), D.max)


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("duckdb", "DATE_TRUNC('MONTH', t.ts)"),
        ("postgres", "DATE_TRUNC('MONTH', t.ts)"),
        ("bigquery", "TIMESTAMP_TRUNC(t.ts, MONTH)"),
    ],
)
def test_trunc_is_one_node_every_dialect_renders(dialect: str, sql: str) -> None:
    """The compiler's one truncation helper: a TimestampTrunc node, rendered per dialect."""
    assert trunc(exp.column("ts", table="t"), "month").sql(dialect) == sql


def test_day_range_bounds_the_bare_column() -> None:
    """The column stays untruncated (storage pruning); the end is exclusive, one day later."""
    bounds = day_range(exp.column("ts", table="t"), D(2026, 1, 1), D(2026, 1, 31))
    assert [b.sql("duckdb") for b in bounds] == [
        "t.ts >= CAST('2026-01-01 00:00:00' AS TIMESTAMP)",
        "t.ts < CAST('2026-02-01 00:00:00' AS TIMESTAMP)",
    ]
    assert day_range(exp.column("ts"), None, None) == []


def test_unbounded_drops_only_the_time_range() -> None:
    """Offset inputs read before the range: the same query without start and end."""
    query = MetricQuery(
        metrics=("revenue",), group_by=("metric_time__month",), start_time="2026-01-01", limit=5
    )
    assert unbounded(query) == MetricQuery(
        metrics=("revenue",), group_by=("metric_time__month",), limit=5
    )


def test_metric_time_item_finds_metric_time_among_the_items() -> None:
    """Only metric_time counts, not another time dimension."""
    items = [parse_group_by("account__created_at__month", "g"), parse_group_by("metric_time", "g")]
    assert metric_time_item(items) == items[1]
    assert metric_time_item(items[:1]) is None


def test_spine_periods_list_each_period_of_the_range_once(manifest: Manifest, duck: Any) -> None:
    """The spine's months within the widened range, read from the warehouse's spine table."""
    query = MetricQuery(metrics=("revenue",), start_time="2025-01-15", end_time="2025-03-02")
    rows = duck.execute(spine_periods(manifest, "month", query).sql("duckdb")).fetchall()
    assert sorted(r[0].date() for r in rows) == [D(2025, 1, 1), D(2025, 2, 1), D(2025, 3, 1)]
