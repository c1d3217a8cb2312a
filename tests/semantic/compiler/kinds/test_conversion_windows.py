"""The window join of conversion metrics (issue 17's speed): conversions are matched to base
events on the entity and on the period (week, month, quarter or year, per the window) of the
conversion or the one before, which must give exactly the rows of the plain range join."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from semantic.compiler.api import compile_query
from semantic.compiler.kinds.conversion import bucketed_conversions, is_not_null, window_bucket
from semantic.compiler.manifest import Manifest, Measure, build_manifest
from semantic.compiler.spec import MetricQuery

WINDOWS = ("1 day", "7 days", "10 days", "4 weeks", "1 month", "2 months", "1 year", "2 years")

EVENTS = {
    "name": "events",
    "model": "ref('events')",
    "defaults": {"agg_time_dimension": "happened_at"},
    "entities": [
        {"name": "event", "type": "primary", "expr": "id"},
        {"name": "account", "type": "foreign", "expr": "account_id"},
    ],
    "dimensions": [
        {"name": "happened_at", "type": "time", "type_params": {"time_granularity": "day"}},
        {"name": "kind", "type": "categorical"},
    ],
    "measures": [
        {"name": "starts", "agg": "count_distinct", "expr": "CASE WHEN kind = 'start' THEN id END"},
        {"name": "buys", "agg": "count", "expr": "CASE WHEN kind = 'buy' THEN id END"},
    ],
}


def _metric(window: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "entity": "account",
        "calculation": "conversions",
        # Base events are rows of the model (MetricFlow): the filter makes them the starts.
        "base_measure": {"name": "starts", "filter": "{{ Dimension('event__kind') }} = 'start'"},
        "conversion_measure": "buys",
    }
    if window:
        params["window"] = window
    return {
        "name": f"buys_{(window or 'ever').replace(' ', '_')}",
        "type": "conversion",
        "type_params": {"conversion_type_params": params},
    }


def _manifest() -> Manifest:
    rows: list[tuple[str, str, Any, str]] = [("semantic_model", "events", EVENTS, "1")]
    rows += [("metric", m["name"], m, "1") for m in map(_metric, (*WINDOWS, None))]
    spine = {
        "node_relation": {"alias": "spine", "schema_name": "main"},
        "primary_column": {"name": "date_day", "time_granularity": "day"},
    }
    rows.append(("project", "default", {"time_spines": [spine]}, "1"))
    return build_manifest(rows)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    # 40 accounts, a start or a buy every few days over three years (seeded, so the same every
    # run): pairs that straddle week, month, quarter and year boundaries, several per account.
    con = duckdb.connect()
    con.execute("SELECT setseed(0.17)")
    con.execute(
        "CREATE TABLE events AS SELECT i AS id, i % 40 AS account_id, "
        "CASE WHEN random() < 0.4 THEN 'start' ELSE 'buy' END AS kind, "
        "TIMESTAMP '2023-12-20 00:00:00' + INTERVAL (CAST(random() * 1100 AS INTEGER)) DAY "
        "+ INTERVAL (CAST(random() * 86000 AS INTEGER)) SECOND AS happened_at FROM range(3000) t(i)"
    )
    return con


def _range_join(window: str | None) -> str:
    """MetricFlow's semantics without any bucketing: each buy is credited to the latest start
    of its account on or before its day and inside the window, counted by that start's month."""
    inside = f"AND b.d > c.d - INTERVAL {window}" if window else ""
    return f"""
        WITH b AS (SELECT account_id, CAST(happened_at AS DATE) AS d, DATE_TRUNC('month', happened_at) AS m
                   FROM events WHERE kind = 'start'),
        c AS (SELECT id, account_id, CAST(happened_at AS DATE) AS d FROM events WHERE kind = 'buy'),
        matched AS (
          SELECT b.m, ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY b.d DESC) AS r
          FROM c JOIN b ON b.account_id = c.account_id AND b.d <= c.d {inside})
        SELECT m, COUNT(*) FROM matched WHERE r = 1 GROUP BY 1 ORDER BY 1"""


@pytest.mark.parametrize("window", [*WINDOWS, None])
def test_bucketed_window_join_gives_the_range_join_rows(
    con: duckdb.DuckDBPyConnection, window: str | None
) -> None:
    """Every window length, with and without a bucket grain, gives the range join's counts."""
    name = _metric(window)["name"]
    sql = compile_query(
        MetricQuery(metrics=(name,), group_by=("metric_time__month",)), _manifest()
    ).sql
    got = [(m, n) for m, n in sorted(con.execute(sql).fetchall()) if n]
    expected = con.execute(_range_join(window)).fetchall()
    assert got == expected and sum(n for _, n in expected) > 40
    assert ("window_bucket" in sql) == (window_bucket(_parsed(window)) is not None)


def _parsed(window: str | None) -> tuple[int, str] | None:
    if window is None:
        return None
    count, unit = window.split()
    return int(count), unit.rstrip("s")


def test_window_bucket_is_the_shortest_grain_whose_periods_hold_the_window() -> None:
    """A base event inside the window is in the conversion's period or the one before only
    if the window is at most one day longer than the shortest period (February: 28 days)."""
    assert [window_bucket(_parsed(w)) for w in WINDOWS] == [
        "week",
        "week",
        "month",
        "month",
        "quarter",
        "quarter",
        "year",
        None,
    ]
    assert window_bucket(None) is None
    assert (window_bucket((8, "day")), window_bucket((9, "day"))) == ("week", "month")
    assert (window_bucket((29, "day")), window_bucket((30, "day"))) == ("month", "quarter")


def test_is_not_null_keeps_a_case_with_an_else_as_it_is() -> None:
    """Only a CASE with one branch and no ELSE is NULL exactly when its condition fails."""
    other = sqlglot.parse_one("CASE WHEN t = 'a' THEN id ELSE 0 END")
    assert is_not_null(other).sql() == "NOT CASE WHEN t = 'a' THEN id ELSE 0 END IS NULL"


@pytest.mark.parametrize("grain", ["week", "month", "quarter", "year"])
def test_spark_explode_buckets_are_the_cross_join_buckets(
    con: duckdb.DuckDBPyConnection, grain: str
) -> None:
    """Spark's EXPLODE of the two periods gives each conversion row the buckets the CROSS
    JOIN to the two shifts gives (both run here on DuckDB, where EXPLODE is UNNEST)."""
    measure = Measure("starts", "count_distinct", "id", "events", "happened_at")
    rows = sqlglot.parse_one(
        "SELECT CAST(happened_at AS DATE) AS conversion_day, account_id AS entity_key, "
        "id AS conversion_value FROM events"
    )
    assert isinstance(rows, exp.Select)
    found = {}
    for dialect in ("duckdb", "spark"):
        select = bucketed_conversions(rows.copy(), measure, 0, grain, dialect)
        assert ("EXPLODE" in select.sql("spark")) == (dialect == "spark")
        found[dialect] = sorted(con.execute(select.sql("duckdb")).fetchall())
    assert found["spark"] == found["duckdb"] and len(found["duckdb"]) == 6000
