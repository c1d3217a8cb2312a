"""Partition joins (``is_partition``): two models with a partition dimension of one name are
joined on it as well as on the entity, across every hop of a multi-hop path as MetricFlow does
(itest_granularity's test_simple_metric_with_multi_hop_custom_granularity)."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query, queryable_items
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def _day(name: str, *, partition: bool = False) -> dict[str, Any]:
    dim: dict[str, Any] = {"name": name, "type": "time", "type_params": {"time_granularity": "day"}}
    if partition:
        dim["is_partition"] = True
    return dim


BOOKINGS = {
    "name": "bookings",
    "model": "ref('bookings')",
    "defaults": {"agg_time_dimension": "ds"},
    "entities": [
        {"name": "booking", "type": "primary", "expr": "id"},
        {"name": "listing", "type": "foreign", "expr": "listing_id"},
    ],
    "dimensions": [_day("ds"), _day("ds_partitioned", partition=True)],
    "measures": [{"name": "bookings", "agg": "sum", "expr": "1"}],
}
LISTINGS = {
    "name": "listings",
    "model": "ref('listings')",
    "entities": [
        {"name": "listing", "type": "primary", "expr": "listing_id"},
        {"name": "user", "type": "foreign", "expr": "user_id"},
    ],
    "dimensions": [{"name": "country", "type": "categorical"}],
}
# A daily snapshot: one row per user and partition day.
USERS = {
    "name": "users",
    "model": "ref('users')",
    "entities": [{"name": "user", "type": "primary", "expr": "user_id"}],
    "dimensions": [
        _day("ds_partitioned", partition=True),
        {"name": "state", "type": "categorical"},
    ],
}
SPINE = {
    "node_relation": {"alias": "spine", "schema_name": "main"},
    "primary_column": {"name": "date_day", "time_granularity": "day"},
}


def _manifest() -> Manifest:
    rows: list[tuple[str, str, Any, str]] = [
        ("semantic_model", m["name"], m, "1") for m in (BOOKINGS, LISTINGS, USERS)
    ]
    rows.append(
        (
            "metric",
            "bookings",
            {"name": "bookings", "type": "simple", "type_params": {"measure": "bookings"}},
            "1",
        )
    )
    rows.append(("project", "default", {"time_spines": [SPINE]}, "1"))
    return build_manifest(rows)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # 3 days of bookings, 2 per day on one listing; the user's snapshot has a row per day and
    # moves state on the third day.
    con.execute(
        "CREATE TABLE bookings AS SELECT i AS id, 1 AS listing_id, DATE '2026-01-01' + CAST(i // 2 AS INTEGER) "
        "AS ds, DATE '2026-01-01' + CAST(i // 2 AS INTEGER) AS ds_partitioned FROM range(6) t(i)"
    )
    con.execute("CREATE TABLE listings AS SELECT 1 AS listing_id, 7 AS user_id, 'FR' AS country")
    con.execute(
        "CREATE TABLE users AS SELECT 7 AS user_id, DATE '2026-01-01' + CAST(i AS INTEGER) AS ds_partitioned, "
        "CASE WHEN i < 2 THEN 'CA' ELSE 'NY' END AS state FROM range(3) t(i)"
    )
    return con


def test_two_hop_dimension_matches_the_measure_partition(con: duckdb.DuckDBPyConnection) -> None:
    """listing__user__state: the users snapshot is matched on the booking's partition day, so
    each booking counts once, under the state of its day (6 bookings: 4 CA, 2 NY), not once per
    snapshot row (18) as a join on the user key alone gives."""
    compiled = compile_query(
        MetricQuery(metrics=("bookings",), group_by=("listing__user__state",)), _manifest()
    )
    assert sorted(con.execute(compiled.sql).fetchall()) == [("CA", 4), ("NY", 2)]
    assert "bookings.ds_partitioned" in compiled.sql


def test_one_hop_without_partition_joins_on_the_key_alone(con: duckdb.DuckDBPyConnection) -> None:
    """listings has no partition dimension: its join is on the entity only."""
    compiled = compile_query(
        MetricQuery(metrics=("bookings",), group_by=("listing__country",)), _manifest()
    )
    assert con.execute(compiled.sql).fetchall() == [("FR", 6)]
    assert "ds_partitioned" not in compiled.sql


def test_a_partitioned_model_no_joined_model_matches_is_refused() -> None:
    """Bookings without a partition column reaching the daily users snapshot would count each
    booking once per snapshot day (MetricFlow's simple_manifest does this: revenue by
    user__home_state doubles); Tally refuses and says why."""
    unpartitioned = {
        **BOOKINGS,
        "dimensions": [_day("ds")],
    }
    rows: list[tuple[str, str, Any, str]] = [
        ("semantic_model", m["name"], m, "1") for m in (unpartitioned, LISTINGS, USERS)
    ]
    rows.append(
        (
            "metric",
            "bookings",
            {"name": "bookings", "type": "simple", "type_params": {"measure": "bookings"}},
            "1",
        )
    )
    rows.append(("project", "default", {"time_spines": [SPINE]}, "1"))
    manifest = build_manifest(rows)
    with pytest.raises(QueryError) as caught:
        compile_query(
            MetricQuery(metrics=("bookings",), group_by=("listing__user__state",)), manifest
        )
    assert caught.value.code == "fan_out"
    assert caught.value.message == (
        "'listing__user__state' is read from 'users', which holds one row per user and "
        "ds_partitioned; 'bookings' has no ds_partitioned to match, so each of its rows would "
        "be counted once per partition (a fan-out)"
    )
    # Lists and queries agree (issue 16): what the query refuses is not offered.
    items = queryable_items(manifest, "bookings")
    assert "listing__country" in items
    assert not [i for i in items if i.startswith("listing__user__")]


def test_items_the_partition_join_matches_are_listed() -> None:
    """With the booking's partition to match, the snapshot's items are offered and query."""
    items = queryable_items(_manifest(), "bookings")
    assert {"listing__user__state", "listing__user__ds_partitioned__month"} <= set(items)
    for item in [i for i in items if i.startswith("listing__user__")]:
        compile_query(MetricQuery(metrics=("bookings",), group_by=(item,)), _manifest())
