"""SELECT on tally.metrics → MetricQuery (Django-free), and the refusals' texts."""

from __future__ import annotations

import pytest
import sqlglot

from semantic.compiler.api import compile_query
from semantic.compiler.spec import MAX_LIMIT, MetricQuery
from semantic.sqlapi.table import SqlTable, sql_table_build
from semantic.sqlapi.translate import (
    HINT_METRIC_IN_WHERE,
    MSG_BAD_LIMIT,
    MSG_HAVING_NOT_GROUPED,
    MSG_METRIC_IN_WHERE,
    MSG_UNKNOWN_COLUMN,
    MSG_UNSUPPORTED,
    SqlApiError,
    bind_parameters,
    map_select,
)
from tests.semantic.conftest import fixtures_manifest


@pytest.fixture(scope="module")
def table() -> SqlTable:
    return sql_table_build(fixtures_manifest())


def mapped(sql: str, table: SqlTable, params: list[object] | None = None) -> MetricQuery:
    tree = sqlglot.parse_one(sql, read="postgres")
    if params is not None:
        tree = bind_parameters(tree, params)
    return map_select(tree, table, dialect="duckdb").query


def test_table_has_group_by_items_at_each_grain_and_metrics(table: SqlTable) -> None:
    """Columns: entities, dimensions, time dimensions per grain, then one per metric."""
    names = [c.name for c in table.columns]
    assert {f"metric_time__{g}" for g in ("day", "week", "month", "quarter", "year")} <= set(names)
    assert table.column("revenue") is not None and table.column("revenue").role == "metric"
    assert table.column("account__plan").filter_call == "Dimension('account__plan')"
    assert table.column("metric_time__month").filter_call == "TimeDimension('metric_time', 'month')"
    assert table.column("account").role == "entity"
    assert table.column("signups").pg_type == "int8"
    assert table.column("revenue").description == "Amount of paid invoices, by invoice issue date."


def test_issue_example_maps_to_metricflow_query(table: SqlTable) -> None:
    """The issue's BI query: MEASURE(), WHERE on a dimension, positional GROUP/ORDER BY."""
    query = mapped(
        "SELECT metric_time__month, account__plan, MEASURE(revenue) FROM metrics "
        "WHERE account__region = 'EU' GROUP BY 1, 2 ORDER BY 1",
        table,
    )
    assert query == MetricQuery(
        metrics=("revenue",),
        group_by=("metric_time__month", "account__plan"),
        where=("{{ Dimension('account__region') }} = 'EU'",),
        order_by=("metric_time__month",),
    )


def test_sum_and_bare_metric_forms_are_the_same_query(table: SqlTable) -> None:
    """SUM(revenue), MEASURE(revenue) and bare revenue all mean the metric itself."""
    forms = [
        "SELECT tally.metrics.account__plan, SUM(revenue) FROM tally.metrics GROUP BY 1",
        "SELECT account__plan, MEASURE(revenue) FROM metrics GROUP BY account__plan",
        "SELECT account__plan, revenue FROM metrics",
    ]
    queries = {mapped(sql, table) for sql in forms}
    assert len(queries) == 1


def test_where_becomes_checked_filters_and_parameters_bind_as_literals(table: SqlTable) -> None:
    """Each AND-ed condition is one filter; a parameter is a quoted literal, never SQL."""
    query = mapped(
        "SELECT revenue FROM metrics WHERE (account__plan IN ($1, 'pro') OR account__region = $2)"
        " AND metric_time__day >= $3 LIMIT $4",
        table,
        ["x' OR 1=1 --", "EMEA", "2025-01-01", 5],
    )
    assert query.where == (
        "{{ Dimension('account__plan') }} IN ('x'' OR 1=1 --', 'pro') "
        "OR {{ Dimension('account__region') }} = 'EMEA'",
        "{{ TimeDimension('metric_time', 'day') }} >= '2025-01-01'",
    )
    assert query.limit == 5
    # The compiler accepts the filters (its own allow-list) and quotes the literal.
    sql = compile_query(query, fixtures_manifest()).sql
    assert "'x'' OR 1=1 --'" in sql


def test_order_by_alias_and_metric_descending(table: SqlTable) -> None:
    query = mapped("SELECT account__plan AS p, revenue AS r FROM metrics ORDER BY r DESC, p", table)
    assert query.order_by == ("-revenue", "account__plan")


@pytest.mark.parametrize(
    ("sql", "sqlstate", "message"),
    [
        ("SELECT * FROM metrics", "0A000", MSG_UNSUPPORTED.format(what="SELECT *", schema="tally", table="metrics")),
        ("SELECT revenue FROM metrics m JOIN metrics n ON TRUE", "0A000", MSG_UNSUPPORTED.format(what="JOIN", schema="tally", table="metrics")),
        ("SELECT account__plan, revenue FROM metrics GROUP BY 1 HAVING account__region = 'EU'", "42803", MSG_HAVING_NOT_GROUPED.format(name="account__region")),
        ("SELECT account__plan, revenue FROM metrics GROUP BY 1 HAVING revenue > (SELECT 1)", "0A000", MSG_UNSUPPORTED.format(what="a subquery", schema="tally", table="metrics")),
        ("SELECT account__plan, revenue FROM metrics GROUP BY 1 HAVING nope > 1", "42703", MSG_UNKNOWN_COLUMN.format(name="nope", schema="tally", table="metrics")),
        ("SELECT revenue FROM metrics LIMIT 5 OFFSET 'x'", "22023", MSG_BAD_LIMIT.format(clause="OFFSET", limit=MAX_LIMIT)),
        ("SELECT revenue FROM (SELECT 1) AS t", "0A000", MSG_UNSUPPORTED.format(what="a subquery", schema="tally", table="metrics")),
        ("SELECT revenue FROM metrics WHERE revenue > 1", "0A000", MSG_METRIC_IN_WHERE.format(name="revenue")),
        ("SELECT plan FROM metrics", "42703", MSG_UNKNOWN_COLUMN.format(name="plan", schema="tally", table="metrics")),
        ("SELECT SUM(account__plan) FROM metrics", "0A000", "SUM() of account__plan is not supported: account__plan is a group-by column"),
        ("SELECT revenue FROM metrics GROUP BY revenue", "42803", "cannot GROUP BY metric revenue"),
        ("SELECT revenue FROM metrics ORDER BY 3", "42P10", "position 3 is not in select list"),
        ("SELECT upper(account__plan) FROM metrics", "42883", "function UPPER() is not supported on tally.metrics"),
    ],
)  # fmt: skip
def test_refusals_name_the_construct(
    table: SqlTable, sql: str, sqlstate: str, message: str
) -> None:
    """Snapshot of each refusal's SQLSTATE and text."""
    with pytest.raises(SqlApiError) as caught:
        mapped(sql, table)
    assert (caught.value.sqlstate, caught.value.message) == (sqlstate, message)


SUPERSET_HAVING = (
    'SELECT account__plan AS account__plan, SUM(revenue) AS "SUM(revenue)" FROM tally.metrics '
    'GROUP BY account__plan HAVING SUM(revenue) > 1000 ORDER BY "SUM(revenue)" DESC LIMIT 10000'
)


def test_having_maps_onto_having_items_over_output_columns(table: SqlTable) -> None:
    """Superset's HAVING (its adhoc HAVING filters, each parenthesised) names the metric as
    SELECT does; SUM(), MEASURE(), the bare column and the alias are the same item."""
    query = mapped(SUPERSET_HAVING, table)
    assert query == MetricQuery(
        metrics=("revenue",),
        group_by=("account__plan",),
        having=("revenue > 1000",),
        order_by=("-revenue",),
        limit=10000,
    )
    spellings = ["MEASURE(revenue)", "revenue", '"SUM(revenue)"', "AGG(revenue)"]
    for spelling in spellings:
        other = SUPERSET_HAVING.replace(
            "HAVING SUM(revenue) > 1000", f"HAVING (({spelling} > 1000))"
        )
        assert mapped(other, table) == query, spelling
    both = mapped(
        "SELECT account__plan AS p, revenue FROM metrics GROUP BY 1 "
        "HAVING (revenue > 1 OR p = 'pro') AND MEASURE(new_accounts) >= 2",
        table,
    )
    # A metric only HAVING names is computed (not shown: the outputs are SELECT's).
    assert both.metrics == ("revenue", "new_accounts")
    assert both.having == ("revenue > 1 OR account__plan = 'pro'", "new_accounts >= 2")
    compile_query(both, fixtures_manifest())
    # A metric in WHERE is still refused, pointing at HAVING.
    with pytest.raises(SqlApiError) as caught:
        mapped("SELECT revenue FROM metrics WHERE revenue > 1", table)
    assert caught.value.hint == HINT_METRIC_IN_WHERE.format(name="revenue")


def test_date_part_columns_group_and_filter(table: SqlTable) -> None:
    """``metric_time__extract_year`` is an int8 column of tally.metrics (issue 17); a WHERE on
    a date part column becomes MetricFlow's TimeDimension(…, date_part_name=…) filter."""
    column = table.column("metric_time__extract_dow")
    assert column is not None and column.pg_type == "int8"
    assert column.filter_call == "TimeDimension('metric_time', date_part_name='dow')"
    query = mapped(
        "SELECT metric_time__extract_year, events_tracked FROM metrics "
        "WHERE metric_time__extract_dow = 1 GROUP BY 1",
        table,
    )
    assert query.group_by == ("metric_time__extract_year",)
    assert query.where == ("{{ TimeDimension('metric_time', date_part_name='dow') }} = 1",)
    sql = compile_query(query, fixtures_manifest()).sql
    assert "EXTRACT(ISODOW FROM events.occurred_at) = 1" in sql


def test_mapped_memo_keeps_a_mapping_per_values_and_release_table() -> None:
    """A prepared statement's memo answers only for the same bound values (by type and text:
    1, True and 1.0 bind differently) on the same release table; another table (a publish
    since) finds nothing and starts it afresh."""
    from semantic.sqlapi.session import MappedMemo

    table, other = object(), object()
    memo = MappedMemo()
    mapped = object()
    memo.put(table, [1, "EU"], mapped)  # type: ignore[arg-type]
    assert memo.get(table, [1, "EU"]) is mapped
    assert memo.get(table, [True, "EU"]) is None
    assert memo.get(table, [1.0, "EU"]) is None
    assert memo.get(table, ["1", "EU"]) is None
    assert memo.get(other, [1, "EU"]) is None
    memo.put(other, [2], mapped)  # type: ignore[arg-type]
    assert memo.get(table, [1, "EU"]) is None
