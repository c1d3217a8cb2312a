"""join_to_timespine's rows are MetricFlow's: a filter on the agg time also bounds the spine,
a query filter on grouped-by items is applied again after the spine join, and grouping by
the measure's own agg_time_dimension fills the spine as metric_time does (issue 16: Tally
returned every spine day in MetricFlow's itests simple_join_to_time_spine_with_queried_filter
and test_constraint_on_measure_selected_in_group_by, and no spine row for
simple_fill_nulls_with_0_agg_time_dim)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery

ORDERS = {
    "name": "orders",
    "model": "ref('orders')",
    "defaults": {"agg_time_dimension": "ordered_at"},
    "entities": [{"name": "order", "type": "primary", "expr": "id"}],
    "dimensions": [
        {"name": "ordered_at", "type": "time", "type_params": {"time_granularity": "day"}},
        {"name": "is_gift", "type": "categorical"},
    ],
    "measures": [{"name": "orders", "agg": "count", "expr": "id"}],
}
FILLED = {"name": "orders", "fill_nulls_with": 0, "join_to_timespine": True}
METRICS: list[dict[str, Any]] = [
    {"name": "orders_filled", "type": "simple", "type_params": {"measure": FILLED}},
    {
        "name": "orders_filled_since_10th",
        "type": "simple",
        "type_params": {"measure": FILLED},
        "filter": "{{ TimeDimension('metric_time', 'day') }} >= '2026-01-10'",
    },
]
SPINE = {
    "node_relation": {"alias": "spine_day", "schema_name": "main"},
    "primary_column": {"name": "date_day", "time_granularity": "day"},
}
JAN = [dt.date(2026, 1, d) for d in range(1, 32)]


def _manifest() -> Manifest:
    rows: list[tuple[str, str, Any, str]] = [("semantic_model", "orders", ORDERS, "1")]
    rows += [("metric", m["name"], m, "1") for m in METRICS]
    rows.append(("project", "default", {"time_spines": [SPINE]}, "1"))
    return build_manifest(rows)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Orders on the 5th (a gift and not), the 12th (not) and the 20th (a gift).
    con.execute(
        "CREATE TABLE orders AS SELECT * FROM (VALUES (1, TIMESTAMP '2026-01-05 10:00', true), "
        "(2, TIMESTAMP '2026-01-05 11:00', false), (3, TIMESTAMP '2026-01-12 09:00', false), "
        "(4, TIMESTAMP '2026-01-20 17:00', true)) t(id, ordered_at, is_gift)"
    )
    con.execute(
        "CREATE TABLE spine_day AS SELECT CAST(d AS DATE) AS date_day FROM "
        "range(TIMESTAMP '2026-01-01', TIMESTAMP '2026-02-01', INTERVAL 1 DAY) t(d)"
    )
    return con


def _rows(con: duckdb.DuckDBPyConnection, **kwargs: Any) -> list[tuple[Any, ...]]:
    kwargs.setdefault("metrics", ("orders_filled",))
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    query = MetricQuery(**fields)
    rows = con.execute(compile_query(query, _manifest()).sql).fetchall()
    return sorted(
        (tuple(v.date() if isinstance(v, dt.datetime) else v for v in r) for r in rows),
        key=lambda r: (r[0], repr(r[1:])),
    )


@pytest.mark.parametrize(
    "where",
    [
        "{{ TimeDimension('metric_time', 'day') }} >= '2026-01-10'",
        "metric_time__day >= '2026-01-10'",
        "{{ TimeDimension('order__ordered_at', 'day') }} >= '2026-01-10'",
    ],
)
def test_a_filter_on_the_agg_time_bounds_the_spine(
    con: duckdb.DuckDBPyConnection, where: str
) -> None:
    """Days the filter excludes are not filled: 22 days from the 10th, zeros but two."""
    rows = _rows(con, group_by=["metric_time__day"], where=[where])
    assert [r[0] for r in rows] == JAN[9:]
    assert {r[0]: r[1] for r in rows if r[1]} == {dt.date(2026, 1, 12): 1, dt.date(2026, 1, 20): 1}
    assert all(r[1] == 0 for r in rows if r[0] not in (dt.date(2026, 1, 12), dt.date(2026, 1, 20)))


def test_a_definition_filter_on_metric_time_bounds_the_spine(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """The metric's own filter on metric_time bounds its spine as a query filter does."""
    rows = _rows(con, metrics=["orders_filled_since_10th"], group_by=["metric_time__day"])
    assert [r[0] for r in rows] == JAN[9:]


def test_without_a_filter_every_spine_day_is_filled(con: duckdb.DuckDBPyConnection) -> None:
    """The control: all 31 days, four orders in all."""
    rows = _rows(con, group_by=["metric_time__day"])
    assert [r[0] for r in rows] == JAN and sum(r[1] for r in rows) == 4


def test_the_agg_time_dimension_fills_the_spine_like_metric_time(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Grouped by order__ordered_at__day (the measure's agg_time_dimension), every spine day
    gets a row, as grouped by metric_time__day; the column keeps the item's name."""
    by_dim = _rows(con, group_by=["order__ordered_at__day"])
    assert by_dim == _rows(con, group_by=["metric_time__day"])
    query = MetricQuery(metrics=("orders_filled",), group_by=("order__ordered_at",))
    assert compile_query(query, _manifest()).columns[0] == "order__ordered_at__day"


def test_a_filter_on_a_grouped_item_is_applied_again_after_the_spine(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Grouped by is_gift and filtered on it: only the gift rows, no spine day with a NULL
    is_gift (the filter does not accept NULL)."""
    rows = _rows(
        con,
        group_by=["metric_time__day", "order__is_gift"],
        where=["{{ Dimension('order__is_gift') }}"],
    )
    assert rows == [(dt.date(2026, 1, 5), True, 1), (dt.date(2026, 1, 20), True, 1)]


def test_a_filter_on_an_item_not_grouped_stays_inside(con: duckdb.DuckDBPyConnection) -> None:
    """Filtered on is_gift but not grouped by it: every day, the gift orders counted."""
    rows = _rows(con, group_by=["metric_time__day"], where=["{{ Dimension('order__is_gift') }}"])
    assert [r[0] for r in rows] == JAN and sum(r[1] for r in rows) == 2


def test_a_mixed_filter_on_grouped_items_is_applied_again(con: duckdb.DuckDBPyConnection) -> None:
    """A filter on metric_time and a grouped item is re-applied after the join as a whole."""
    rows = _rows(
        con,
        group_by=["metric_time__day", "order__is_gift"],
        where=["{{ Dimension('order__is_gift') }} = false OR metric_time__day = '2026-01-20'"],
    )
    assert rows == [
        (dt.date(2026, 1, 5), False, 1),
        (dt.date(2026, 1, 12), False, 1),
        (dt.date(2026, 1, 20), True, 1),
    ]
