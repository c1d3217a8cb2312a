"""Date parts mean the same on DuckDB, PostgreSQL and MariaDB (issue 17).

The engines number days of the week and weeks of the year differently when left alone
(PostgreSQL's DOW is 0 for Sunday, MariaDB's DAYOFWEEK is 1 for Sunday and its WEEK() starts
on Sundays); Tally renders each engine's functions so that every one gives ISO numbers:
day of week 1 = Monday … 7 = Sunday, ISO week 1–53. These tests compare every engine's rows
with Python's ``isoweekday()`` and ``isocalendar()``, and with each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.execute import execute
from tests.conftest import demo_on_engines, demo_warehouse_at
from tests.integration.test_engines import manifest_for

ENGINES = ("duckdb", "postgres", "mysql")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    path: Path = tmp_path_factory.mktemp("date_parts") / "demo.duckdb"
    demo_warehouse_at(path, events=5_000, seed=7)
    with demo_on_engines(path, "i17_date_parts") as loaded:
        yield loaded


def _rows(engines: dict, engine: str, query: MetricQuery) -> list[dict]:
    config, schema = engines[engine]
    compiled = compile_query(
        MetricQuery(**{**query.__dict__, "dialect": config.dialect}), manifest_for(schema)
    )
    return [
        dict(zip(compiled.columns, row, strict=True)) for row in execute(config, compiled.sql).rows
    ]


def _day(value: object) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value  # type: ignore[return-value]


@pytest.mark.parametrize("engine", ENGINES)
def test_dow_and_week_are_iso_on_every_engine(engine: str, engines: dict) -> None:
    """Each day's extract_dow is its ISO weekday (Monday 1, Sunday 7) and extract_week its
    ISO week, on each engine; year, quarter, month, day and doy agree with the calendar."""
    query = MetricQuery(
        metrics=("events_tracked",),
        group_by=(
            "metric_time__day",
            "metric_time__extract_dow",
            "TimeDimension('metric_time', date_part_name='week')",
            "metric_time__extract_doy",
            "metric_time__extract_year",
            "metric_time__extract_quarter",
            "metric_time__extract_month",
            "metric_time__extract_day",
        ),
    )
    rows = _rows(engines, engine, query)
    assert len(rows) > 300
    seen_dows = set()
    for row in rows:
        day = _day(row["metric_time__day"])
        dow, week = int(row["metric_time__extract_dow"]), int(row["metric_time__extract_week"])
        seen_dows.add(dow)
        assert dow == day.isoweekday(), (engine, day, dow)
        assert week == day.isocalendar().week, (engine, day, week)
        assert int(row["metric_time__extract_doy"]) == day.timetuple().tm_yday
        parts = ("year", "quarter", "month", "day")
        assert tuple(int(row[f"metric_time__extract_{p}"]) for p in parts) == (
            day.year,
            (day.month - 1) // 3 + 1,
            day.month,
            day.day,
        )
    assert seen_dows == {1, 2, 3, 4, 5, 6, 7}


def test_date_parts_in_group_by_where_and_order_give_equal_rows(engines: dict) -> None:
    """Grouped by day of week through a join, filtered on Sundays' complement and a year, and
    ordered by a date part: the three engines return the same rows."""
    query = MetricQuery(
        metrics=("events_tracked",),
        group_by=("metric_time__extract_dow", "user__account__region"),
        where=(
            "{{ TimeDimension('metric_time', date_part_name='dow') }} <> 7",
            "{{ TimeDimension('metric_time', date_part_name='year') }} >= 2020",
        ),
        order_by=("-metric_time__extract_dow", "user__account__region"),
    )
    results = {engine: _rows(engines, engine, query) for engine in ENGINES}
    normalised = {
        engine: [
            (
                int(r["metric_time__extract_dow"]),
                r["user__account__region"],
                int(r["events_tracked"]),
            )
            for r in rows
        ]
        for engine, rows in results.items()
    }
    assert normalised["duckdb"], "no rows"
    assert {row[0] for row in normalised["duckdb"]} == {1, 2, 3, 4, 5, 6}
    assert normalised["duckdb"][0][0] == 6  # ordered by dow descending
    assert normalised["postgres"] == normalised["duckdb"]
    assert normalised["mysql"] == normalised["duckdb"]
