"""Queries without metrics (semantic/compiler/dimension_query.py): the distinct combinations
of group-by items, read as MetricFlow reads a group-by-only query, checked against plain SQL
on the demo warehouse."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest
import sqlglot

from semantic.compiler.api import compile_query
from semantic.compiler.full_join_union import full_join_chain_union
from semantic.compiler.manifest import Manifest
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError
from tests.semantic.compiler.test_row_policies import MANIFEST, SALT


def _rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    return sorted(con.execute(sql, list(params)).fetchall(), key=repr)


def _query(manifest: Manifest, *group_by: str, **extra: Any) -> Any:
    return compile_query(MetricQuery(metrics=(), group_by=group_by, **extra), manifest)


def test_items_of_one_model_are_its_distinct_combinations(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    compiled = _query(manifest, "account__plan", "account__region")
    assert compiled.columns == ("account__plan", "account__region")
    assert _rows(duck, compiled.sql) == _rows(duck, "SELECT DISTINCT plan, region FROM accounts")


def test_items_of_two_models_are_full_outer_joined(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """An account without users keeps its plan (country NULL), as MetricFlow's FULL OUTER
    JOIN gives it; the base model is users, the one that reaches both items."""
    compiled = _query(manifest, "user__country", "account__plan")
    assert "FULL JOIN" in compiled.sql
    expected = _rows(
        duck,
        "SELECT DISTINCT u.country, a.plan FROM users u FULL JOIN accounts a "
        "ON u.account_id = a.id",
    )
    assert _rows(duck, compiled.sql) == expected


def test_a_filter_applies_to_the_joined_rows(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    compiled = _query(
        manifest, "user__country", where=("{{ Dimension('account__plan') }} = 'enterprise'",)
    )
    expected = _rows(
        duck,
        "SELECT DISTINCT u.country FROM users u FULL JOIN accounts a ON u.account_id = a.id "
        "WHERE a.plan = 'enterprise'",
    )
    assert expected and _rows(duck, compiled.sql) == expected


def test_a_bare_time_dimension_is_read_and_named_at_its_grain(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    compiled = _query(manifest, "user__signed_up_at")
    assert compiled.columns == ("user__signed_up_at__day",)
    expected = _rows(duck, "SELECT DISTINCT DATE_TRUNC('day', signed_up_at) FROM users")
    assert _rows(duck, compiled.sql) == expected


def test_row_policies_hold(duck: duckdb.DuckDBPyConnection) -> None:
    """A tenant sees only the plans of its own accounts."""
    tenant = duck.execute("SELECT MIN(tenant_id) FROM accounts").fetchone()[0]
    principal = Principal("user:t", {"tenant_id": tenant, "regions": ["EU", "US", "APAC"]})
    compiled = compile_query(
        MetricQuery(metrics=(), group_by=("account__plan",)), MANIFEST, principal=principal
    )
    if compiled.parameters:
        duck.execute("SET VARIABLE tally_pii_salt = $1", [SALT])
    got = _rows(duck, compiled.sql)
    assert got == _rows(duck, "SELECT DISTINCT plan FROM accounts WHERE tenant_id = ?", tenant)
    assert got != _rows(duck, "SELECT DISTINCT plan FROM accounts")


def test_metric_time_alone_reads_the_spine_and_crosses_other_items(manifest: Manifest) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE time_spine AS SELECT CAST(d AS DATE) AS date_day, "
        "CAST(DATE_TRUNC('year', d) AS DATE) AS fiscal_year_start, "
        "CAST(DATE_TRUNC('quarter', d) AS DATE) AS fiscal_quarter_start "
        "FROM range(DATE '2026-01-01', DATE '2026-03-01', INTERVAL 1 DAY) AS t(d)"
    )
    con.execute("CREATE TABLE accounts AS SELECT 1 AS id, 'pro' AS plan UNION ALL SELECT 2, 'free'")
    months = _query(manifest, "metric_time__month")
    assert months.columns == ("metric_time__month",)
    assert [r[0].date() for r in _rows(con, months.sql)] == [
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
    ]
    bare = _query(manifest, "metric_time", start_time="2026-02-27", end_time="2026-02-28")
    assert bare.columns == ("metric_time__day",)
    assert _rows(con, bare.sql) == [(dt.date(2026, 2, 27),), (dt.date(2026, 2, 28),)]
    crossed = _query(manifest, "metric_time__month", "account__plan")
    assert len(_rows(con, crossed.sql)) == 4
    dow = _query(manifest, "metric_time__extract_dow", "metric_time__fiscal_quarter")
    assert {r[0] for r in _rows(con, dow.sql)} == set(range(1, 8))


def test_metric_time_with_a_filter_on_a_model_reads_the_days_of_its_passing_rows(
    manifest: Manifest,
) -> None:
    """MetricFlow's itest test_no_metrics_with_custom_granularity_filter: metric_time with a
    filter on accounts only is read from accounts (the model holding the filter's item)
    CROSS JOINed with the spine: every month while some account passes the filter, none
    when none does, and each passing account's month without GROUP BY. Was refused
    (unsupported_query)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE time_spine AS SELECT CAST(d AS DATE) AS date_day "
        "FROM range(DATE '2026-01-01', DATE '2026-03-01', INTERVAL 1 DAY) AS t(d)"
    )
    con.execute(
        "CREATE TABLE accounts AS SELECT * FROM (VALUES (1, 'pro'), (2, 'pro'), (3, 'free')) "
        "AS t(id, plan)"
    )

    def months(plan: str, **extra: Any) -> list[tuple[Any, ...]]:
        where = (f"{{{{ Dimension('account__plan') }}}} = '{plan}'",)
        compiled = _query(manifest, "metric_time__month", where=where, **extra)
        assert "FROM main.accounts AS accounts" in compiled.sql
        return _rows(con, compiled.sql)

    assert [m[0].date() for m in months("pro")] == [dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
    assert months("enterprise") == []
    # One row per day of the spine and passing account, each day at its month.
    assert len(months("pro", apply_group_by=False)) == 2 * (31 + 28)


@pytest.mark.parametrize(
    ("query", "code", "text"),
    [
        ({"group_by": ("account__plan",), "start_time": "2026-01-01"}, "bad_time_range", "add"),
        (
            {
                "group_by": ("metric_time",),
                "where": ("{{ TimeDimension('metric_time', 'day') }} >= '2026-01-01'",),
            },
            "unsupported_query",
            "needs an item of a semantic model",
        ),
        ({"group_by": ("account__nope",)}, "unknown_dimension", "nope"),
        ({"group_by": ("account__plan", "Account__Plan")}, "bad_group_by", "twice"),
        (
            {"group_by": ("user__country", "account__plan"), "dialect": "mysql"},
            "unsupported_join",
            "no FULL OUTER JOIN",
        ),
    ],
)
def test_what_it_refuses_it_says_clearly(
    manifest: Manifest, query: dict[str, Any], code: str, text: str
) -> None:
    with pytest.raises(QueryError) as caught:
        compile_query(MetricQuery(metrics=(), **query), manifest)
    assert caught.value.code == code and text in caught.value.message


def test_an_item_no_model_reaches_with_the_others_is_refused(manifest: Manifest) -> None:
    """invoice__status and user__country share no entity path from either side."""
    with pytest.raises(QueryError) as caught:
        _query(manifest, "invoice__status", "user__role")
    assert caught.value.code == "unreachable_dimension"
    assert "no semantic model reaches all of invoice__status, user__role" in caught.value.message


def test_an_item_of_no_model_is_named_with_a_suggestion(manifest: Manifest) -> None:
    """A misspelt entity is named, at its place in group_by and with did-you-mean, even beside
    a good item (the base search had said only that no model reaches both)."""
    with pytest.raises(QueryError) as caught:
        _query(manifest, "user__country", "acount__plan")
    assert (caught.value.code, caught.value.location) == ("unknown_dimension", "group_by[1]")
    assert caught.value.message.startswith("no semantic model owns 'acount__plan'")
    assert caught.value.hint == "did you mean 'account'?"


def test_an_entity_is_read_from_the_model_whose_primary_entity_it_is(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """`account` alone lists the accounts table's ids (events and users also carry an account
    entity, as foreign keys; MetricFlow may pick any of them)."""
    compiled = _query(manifest, "account")
    assert compiled.columns == ("account",)
    assert "FROM main.accounts" in compiled.sql
    assert _rows(duck, compiled.sql) == _rows(duck, "SELECT DISTINCT id FROM accounts")


@pytest.mark.parametrize(
    "item", ["user__account__region", "subscription__account__plan", "user__account__plan"]
)
def test_one_item_s_full_join_chain_reads_as_a_union_of_left_join_chains(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection, item: str
) -> None:
    """MariaDB has no FULL OUTER JOIN (one item through joins was refused there): the UNION
    of the LEFT JOIN chains from each model of the chain lists the FULL JOIN's values, NULL
    included; checked on DuckDB, which runs both."""
    compiled = _query(manifest, item)
    assert "FULL JOIN" in compiled.sql
    body = "\n".join(line for line in compiled.sql.splitlines() if not line.startswith("--"))
    unioned = full_join_chain_union(sqlglot.parse_one(body, read="duckdb"))
    assert unioned is not None
    assert _rows(duck, unioned.sql("duckdb")) == _rows(duck, compiled.sql)
    mariadb = _query(manifest, item, dialect="mysql").sql
    assert "FULL" not in mariadb and "UNION" in mariadb


@pytest.mark.parametrize(
    "extra",
    [
        {"where": ("{{ Dimension('user__country') }} = 'DE'",)},
        {"apply_group_by": False},
    ],
)
def test_mariadb_refuses_what_a_union_of_left_joins_cannot_list(
    manifest: Manifest, extra: dict[str, Any]
) -> None:
    """A filter on the joined rows, or every joined row (duplicates kept), needs the FULL
    JOIN itself: still refused, with the reason."""
    with pytest.raises(QueryError) as caught:
        _query(manifest, "user__account__region", dialect="mysql", **extra)
    assert caught.value.code == "unsupported_join"
    assert "no FULL OUTER JOIN" in caught.value.message


def test_mariadb_applies_a_filter_on_the_item_s_own_model_in_every_branch(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """A filter on the columns of the item's own model passes a branch's row exactly as the
    FULL JOIN's row holding the same account: the union lists the filtered values."""
    where = ("{{ Dimension('user__account__plan') }} = 'enterprise'",)
    compiled = _query(manifest, "user__account__region", where=where)
    body = "\n".join(line for line in compiled.sql.splitlines() if not line.startswith("--"))
    unioned = full_join_chain_union(sqlglot.parse_one(body, read="duckdb"))
    assert unioned is not None
    expected = _rows(duck, compiled.sql)
    assert expected and _rows(duck, unioned.sql("duckdb")) == expected
    assert "UNION" in _query(manifest, "user__account__region", where=where, dialect="mysql").sql
