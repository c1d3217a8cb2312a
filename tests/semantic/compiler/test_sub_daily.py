"""Sub-daily grains (issue 17): hour, minute and second where a time dimension's
time_granularity allows, an hourly spine for join_to_timespine, ``grain_too_fine`` otherwise."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError

PINGS = {
    "name": "pings",
    "model": "ref('pings')",
    "defaults": {"agg_time_dimension": "pinged_at"},
    "entities": [{"name": "ping", "type": "primary", "expr": "id"}],
    "dimensions": [
        {"name": "pinged_at", "type": "time", "type_params": {"time_granularity": "minute"}}
    ],
    "measures": [{"name": "pings", "agg": "count", "expr": "id"}],
}
METRICS = [
    {"name": "pings", "type": "simple", "type_params": {"measure": "pings"}},
    {
        "name": "pings_last_2_hours",
        "type": "cumulative",
        "type_params": {"measure": "pings", "cumulative_type_params": {"window": "2 hours"}},
    },
    {
        "name": "pings_every_hour",
        "type": "simple",
        "type_params": {"measure": {"name": "pings", "join_to_timespine": True}},
    },
]
DAY_SPINE = {
    "node_relation": {"alias": "spine_day", "schema_name": "main"},
    "primary_column": {"name": "date_day", "time_granularity": "day"},
}
# Declared but never built here: choosing it for hours would fail the query.
SECOND_SPINE = {
    "node_relation": {"alias": "spine_second", "schema_name": "main"},
    "primary_column": {"name": "ts", "time_granularity": "second"},
}
HOUR_SPINE = {
    "node_relation": {"alias": "spine_hour", "schema_name": "main"},
    "primary_column": {"name": "ts_hour", "time_granularity": "hour"},
}


def _manifest(*spines: dict[str, Any]) -> Manifest:
    rows: list[tuple[str, str, Any, str]] = [("semantic_model", "pings", PINGS, "1")]
    rows += [("metric", m["name"], m, "1") for m in METRICS]
    rows.append(("project", "default", {"time_spines": list(spines)}, "1"))
    return build_manifest(rows)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE pings AS SELECT i AS id, TIMESTAMP '2026-03-01 00:00:00' + "
        "(i * 7) * INTERVAL 1 MINUTE AS pinged_at FROM range(100) t(i)"
    )
    con.execute(
        "CREATE TABLE spine_hour AS SELECT ts AS ts_hour FROM range(TIMESTAMP '2026-03-01', "
        "TIMESTAMP '2026-03-02', INTERVAL 1 HOUR) t(ts)"
    )
    con.execute(
        "CREATE TABLE spine_day AS SELECT CAST(ts AS DATE) AS date_day FROM range(TIMESTAMP "
        "'2026-02-01', TIMESTAMP '2026-04-01', INTERVAL 1 DAY) t(ts)"
    )
    return con


def test_hour_and_minute_on_minute_data(con: duckdb.DuckDBPyConnection) -> None:
    """metric_time__hour counts per hour as a hand-written GROUP BY does."""
    compiled = compile_query(
        MetricQuery(metrics=("pings",), group_by=("metric_time__hour",)), _manifest(DAY_SPINE)
    )
    got = sorted(con.execute(compiled.sql).fetchall())
    expected = con.execute(
        "SELECT date_trunc('hour', pinged_at), COUNT(id) FROM pings GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == expected and len(got) == 12
    minute = compile_query(
        MetricQuery(metrics=("pings",), group_by=("metric_time__minute",)), _manifest(DAY_SPINE)
    )
    assert len(con.execute(minute.sql).fetchall()) == 100


def test_second_on_minute_data_is_too_fine() -> None:
    """The data is at minute grain: seconds are refused with grain_too_fine, not a join error."""
    with pytest.raises(QueryError) as info:
        compile_query(
            MetricQuery(metrics=("pings",), group_by=("metric_time__second",)),
            _manifest(DAY_SPINE),
        )
    assert info.value.code == "grain_too_fine"
    assert "its data is at minute grain" in info.value.message


def test_join_to_timespine_by_hour_uses_the_hourly_spine(con: duckdb.DuckDBPyConnection) -> None:
    """Every hour of the hourly spine gets a row; without an hourly spine, a clear error."""
    query = MetricQuery(
        metrics=("pings_every_hour",),
        group_by=("metric_time__hour",),
        start_time="2026-03-01",
        end_time="2026-03-01",
    )
    rows = con.execute(compile_query(query, _manifest(DAY_SPINE, HOUR_SPINE)).sql).fetchall()
    assert len(rows) == 24 and sum(r[1] or 0 for r in rows) == 100
    with pytest.raises(QueryError) as info:
        compile_query(query, _manifest(DAY_SPINE))
    assert info.value.code == "missing_time_spine"


def test_hour_on_day_data_names_the_grain_not_an_entity(manifest: Manifest) -> None:
    """The issue's report: metric_time__hour on day-grain events said "no entity 'metric_time'"."""
    with pytest.raises(QueryError) as info:
        compile_query(
            MetricQuery(metrics=("events_tracked",), group_by=("metric_time__hour",)), manifest
        )
    assert (info.value.code, info.value.message) == (
        "grain_too_fine",
        "grain 'hour' is finer than 'metric_time__hour' allows: its data is at day grain",
    )


def test_cumulative_by_hour_reads_the_hourly_spine(con: duckdb.DuckDBPyConnection) -> None:
    """A 2-hour trailing count by metric_time__hour: each hour of the hourly spine (not the
    per-second one) whose window has pings, as a hand-written join over the hours gives it."""
    query = MetricQuery(metrics=("pings_last_2_hours",), group_by=("metric_time__hour",))
    manifest = _manifest(DAY_SPINE, SECOND_SPINE, HOUR_SPINE)
    got = sorted(con.execute(compile_query(query, manifest).sql).fetchall())
    expected = con.execute(
        "SELECT s.ts_hour, COUNT(p.id) FROM spine_hour AS s JOIN pings AS p "
        "ON date_trunc('hour', p.pinged_at) <= s.ts_hour "
        "AND date_trunc('hour', p.pinged_at) > s.ts_hour - INTERVAL 2 HOUR GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == expected and len(got) == 13


def test_millisecond_grain_on_millisecond_data(con: duckdb.DuckDBPyConnection) -> None:
    """MetricFlow's finest grain: a dimension at millisecond grain groups by the millisecond
    (DuckDB truncates to it); coarser data refuses it as too fine."""
    con.execute(
        "CREATE TABLE clicks AS SELECT i AS id, TIMESTAMP '2026-03-01 00:00:00' + "
        "(i * 700) * INTERVAL 1 MICROSECOND AS clicked_at FROM range(10) t(i)"
    )
    clicks = {
        "name": "clicks",
        "model": "ref('clicks')",
        "defaults": {"agg_time_dimension": "clicked_at"},
        "entities": [{"name": "click", "type": "primary", "expr": "id"}],
        "dimensions": [
            {
                "name": "clicked_at",
                "type": "time",
                "type_params": {"time_granularity": "millisecond"},
            }
        ],
        "measures": [{"name": "clicks", "agg": "count", "expr": "id"}],
    }
    rows: list[tuple[str, str, Any, str]] = [("semantic_model", "clicks", clicks, "1")]
    rows.append(
        (
            "metric",
            "clicks",
            {"name": "clicks", "type": "simple", "type_params": {"measure": "clicks"}},
            "1",
        )
    )
    rows.append(("project", "default", {"time_spines": [DAY_SPINE]}, "1"))
    compiled = compile_query(
        MetricQuery(metrics=("clicks",), group_by=("click__clicked_at__millisecond",)),
        build_manifest(rows),
    )
    got = sorted(con.execute(compiled.sql).fetchall())
    # 0, 700, 1400, … 6300 µs: milliseconds 0..6, with 2 clicks in 0, 1 (and so on).
    expected = con.execute(
        "SELECT date_trunc('millisecond', clicked_at), COUNT(*) FROM clicks GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == expected and len(got) == 7
    assert compiled.columns[0] == "click__clicked_at__millisecond"
    with pytest.raises(QueryError) as info:
        compile_query(
            MetricQuery(metrics=("pings",), group_by=("metric_time__millisecond",)),
            _manifest(DAY_SPINE),
        )
    assert info.value.code == "grain_too_fine"


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        # MetricFlow's itest_constraints cases: a range of instants, adjusted to whole hours.
        ("2026-03-01 02:00:00", "2026-03-01 05:00:00", 4),
        ("2026-03-01 02:00:25", "2026-03-01 05:00:53", 4),
        # A date alone keeps its whole day, as at every other grain.
        ("2026-03-01", "2026-03-01", 24),
    ],
)
def test_time_range_at_hour_grain_is_whole_hours(
    con: duckdb.DuckDBPyConnection, start: str, end: str, hours: int
) -> None:
    """The spine's hours and the pings counted are those of the hours containing the range's
    ends (the hour of 05:00:53 included), not the whole days they fall on."""
    query = MetricQuery(
        metrics=("pings_every_hour",),
        group_by=("metric_time__hour",),
        start_time=start,
        end_time=end,
    )
    rows = sorted(
        con.execute(compile_query(query, _manifest(DAY_SPINE, HOUR_SPINE)).sql).fetchall()
    )
    low, high = rows[0][0], rows[-1][0]
    (expected,) = con.execute(
        "SELECT COUNT(*) FROM pings WHERE pinged_at >= ? AND pinged_at < ? + INTERVAL 1 HOUR",
        [low, high],
    ).fetchall()
    assert len(rows) == hours and sum(r[1] or 0 for r in rows) == expected[0] > 0
    assert low == dt.datetime.fromisoformat(start[:13] + ":00" if " " in start else start)
    simple = MetricQuery(
        metrics=("pings",), group_by=("metric_time__hour",), start_time=start, end_time=end
    )
    counted = con.execute(compile_query(simple, _manifest(DAY_SPINE)).sql).fetchall()
    assert sum(n for _, n in counted) == expected[0]
