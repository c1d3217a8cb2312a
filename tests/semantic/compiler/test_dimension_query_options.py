"""MetricFlow's two options of a query without metrics (issue #16), checked against plain SQL
on the demo warehouse: ``min_max_only`` (the least and greatest value of the one group-by
item) and ``apply_group_by=False`` (every joined row, duplicates kept)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.resolve import MSG_APPLY_GROUP_BY, MSG_MIN_MAX_ONLY
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def _query(manifest: Manifest, *group_by: str, **extra: Any) -> Any:
    return compile_query(MetricQuery(metrics=(), group_by=group_by, **extra), manifest)


def test_min_max_only_gives_the_least_and_greatest_value_named_after_the_item(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    compiled = _query(manifest, "account__plan", min_max_only=True)
    assert compiled.columns == ("account__plan__min", "account__plan__max")
    assert (
        duck.execute(compiled.sql).fetchall()
        == duck.execute("SELECT MIN(plan), MAX(plan) FROM accounts").fetchall()
    )


def test_min_max_only_of_a_bare_time_dimension_is_at_its_grain(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """The item is read and named as without the option: user__signed_up_at__day."""
    compiled = _query(manifest, "user__signed_up_at", min_max_only=True)
    assert compiled.columns == ("user__signed_up_at__day__min", "user__signed_up_at__day__max")
    low, high = duck.execute(compiled.sql).fetchone()
    expected = duck.execute(
        "SELECT MIN(DATE_TRUNC('day', signed_up_at)), MAX(DATE_TRUNC('day', signed_up_at)) "
        "FROM users"
    ).fetchone()
    assert (low, high) == expected and low < high


def test_min_max_only_of_metric_time_reads_the_spine_in_the_time_range(manifest: Manifest) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE time_spine AS SELECT CAST(d AS DATE) AS date_day, "
        "CAST(DATE_TRUNC('year', d) AS DATE) AS fiscal_year_start, "
        "CAST(DATE_TRUNC('quarter', d) AS DATE) AS fiscal_quarter_start "
        "FROM range(DATE '2026-01-01', DATE '2026-03-01', INTERVAL 1 DAY) AS t(d)"
    )
    compiled = _query(
        manifest, "metric_time", min_max_only=True, start_time="2026-01-05", end_time="2026-02-10"
    )
    assert compiled.columns == ("metric_time__day__min", "metric_time__day__max")
    low, high = con.execute(compiled.sql).fetchone()
    assert (low, high) == (dt.date(2026, 1, 5), dt.date(2026, 2, 10))


def test_apply_group_by_false_lists_every_joined_row_with_duplicates(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """One row per user (plans repeat), where the default gives each plan once."""
    rows = _query(manifest, "user__country", "account__plan", apply_group_by=False)
    distinct = _query(manifest, "user__country", "account__plan")
    assert "GROUP BY" not in rows.sql and "GROUP BY" in distinct.sql
    got = duck.execute(rows.sql).fetchall()
    expected = duck.execute(
        "SELECT u.country, a.plan FROM users u FULL JOIN accounts a ON u.account_id = a.id"
    ).fetchall()
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    assert len(got) > len(duck.execute(distinct.sql).fetchall())


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ({"metrics": ("revenue",), "group_by": ("account__plan",)}, "metrics"),
        ({"group_by": ("account__plan", "account__region")}, "group_by"),
        ({"group_by": ()}, "group_by"),
        ({"group_by": ("account__plan",), "order_by": ("account__plan",)}, "order_by"),
        ({"group_by": ("account__plan",), "limit": 3}, "limit"),
    ],
)
def test_min_max_only_is_refused_where_metricflow_refuses_it(
    manifest: Manifest, query: dict[str, Any], location: str
) -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(MetricQuery(**{"metrics": (), **query, "min_max_only": True}), manifest)
    assert (caught.value.code, caught.value.location) == ("bad_query_option", location)
    assert caught.value.message == MSG_MIN_MAX_ONLY


def test_apply_group_by_false_with_metrics_is_refused(manifest: Manifest) -> None:
    """A metric is always aggregated by its group-by items: the option would mean nothing."""
    query = MetricQuery(metrics=("revenue",), group_by=("account__plan",), apply_group_by=False)
    with pytest.raises(QueryError) as caught:
        compile_query(query, manifest)
    assert (caught.value.code, caught.value.message) == ("bad_query_option", MSG_APPLY_GROUP_BY)


def test_the_options_are_part_of_the_cache_key() -> None:
    """A cached compile of the plain query must not answer the min/max or row query."""
    plain = MetricQuery(metrics=(), group_by=("account__plan",))
    keys = {
        plain.cache_key(),
        MetricQuery(metrics=(), group_by=("account__plan",), min_max_only=True).cache_key(),
        MetricQuery(metrics=(), group_by=("account__plan",), apply_group_by=False).cache_key(),
    }
    assert len(keys) == 3
