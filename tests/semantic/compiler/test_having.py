"""Having: conditions on a query's output columns after aggregation (semantic/compiler/having.py).

The reference is the unfiltered query's rows filtered in Python: a having keeps exactly the
rows whose outputs pass, before order and limit, on a real DuckDB demo warehouse.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st

from semantic.compiler.api import compile_query
from semantic.compiler.having import (
    HINT_HAVING_SUBQUERY,
    HINT_METRIC_CALL,
    MSG_METRIC_CALL,
    MSG_NOT_OUTPUT,
    parse_having,
)
from semantic.compiler.resolve import MSG_HAVING_WITHOUT_METRICS
from semantic.compiler.spec import DIALECTS, MetricQuery
from tally.errors import QueryError
from tests.conftest import demo_warehouse_at
from tests.semantic.compiler.test_properties import queries
from tests.semantic.conftest import fixtures_manifest

MANIFEST = fixtures_manifest()
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:

    path: Path = tmp_path_factory.mktemp("having") / "demo.duckdb"
    demo_warehouse_at(path, events=3_000, seed=5)
    connection = duckdb.connect(str(path), read_only=True)
    yield connection
    connection.close()


def _rows(con: duckdb.DuckDBPyConnection, query: MetricQuery, level: int | None = None) -> list:
    return con.execute(compile_query(query, MANIFEST, level=level).sql).fetchall()


def _with(query: MetricQuery, **changes: Any) -> MetricQuery:
    return MetricQuery(**{**query.__dict__, **changes})


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=queries(), data=st.data())
def test_having_keeps_exactly_the_unfiltered_rows_that_pass(
    query: MetricQuery, data: st.DataObject, con: duckdb.DuckDBPyConnection
) -> None:
    """For any query of the fixtures, ``having: <metric> <op> <n>`` returns the unfiltered
    result's rows whose metric passes the comparison in Python (NULL passes nothing), at
    every optimisation level."""
    query = _with(query, limit=None)
    try:
        unfiltered = _rows(con, query)
    except QueryError as refused:
        if refused.code != "unsupported_metric":
            raise
        reject()
    position = data.draw(st.sampled_from(range(len(query.metrics))))
    column = len(query.group_by) + position
    values = [row[column] for row in unfiltered if row[column] is not None]
    if not values or not all(isinstance(v, int | float | Decimal) for v in values):
        reject()  # no value, or min/max of a timestamp: compared with an integer nowhere
    threshold = math.floor(data.draw(st.sampled_from(values)))
    operator = data.draw(st.sampled_from(sorted(OPERATORS)))
    having = f"{query.metrics[position]} {operator} {threshold}"
    passes = OPERATORS[operator]
    expected = sorted(
        (row for row in unfiltered if row[column] is not None and passes(row[column], threshold)),
        key=repr,
    )
    # Shown by --hypothesis-show-statistics: how often the having actually removed rows.
    event(
        "kept none"
        if not expected
        else "kept all"
        if len(expected) == len(unfiltered)
        else "kept some"
    )
    for level in (None, 0):
        got = _rows(con, _with(query, having=(having,)), level)
        assert sorted(got, key=repr) == expected, (having, level)


def test_having_applies_before_order_and_limit(con: duckdb.DuckDBPyConnection) -> None:
    """The limit counts rows that passed: the top 2 of the kept rows, not the kept rows of
    the top 2; several items AND together, a group-by item as in where or by its name."""
    base = MetricQuery(metrics=("revenue", "new_accounts"), group_by=("account__plan",))
    rows = _rows(con, base)
    kept = [r for r in rows if r[1] is not None and r[1] < 50_000 and r[0] != "pro"]
    assert len(kept) >= 2 and len(kept) < len(rows)
    kept.sort(key=lambda r: r[1], reverse=True)
    for item in ("account__plan <> 'pro'", "{{ Dimension('account__plan') }} <> 'pro'"):
        query = _with(base, having=("revenue < 50000", item), order_by=("-revenue",), limit=2)
        assert _rows(con, query) == kept[:2]


def test_having_reads_derived_metrics_and_bare_metric_time(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """A derived metric is filtered on its computed value; a bare metric_time names the
    query's metric_time column at whatever grain it has."""
    base = MetricQuery(metrics=("arpa",), group_by=("metric_time__month",))
    rows = _rows(con, base)
    cut = sorted(r[1] for r in rows if r[1] is not None)[len(rows) // 2]
    query = _with(base, having=(f"arpa >= {cut} AND metric_time >= '2025-06-01'",))
    expected = [r for r in rows if r[1] is not None and r[1] >= cut and str(r[0]) >= "2025-06-01"]
    assert expected and len(expected) < len(rows)
    assert sorted(_rows(con, query), key=repr) == sorted(expected, key=repr)


def test_having_compiles_for_every_dialect() -> None:
    """The wrapped query parses back in every dialect, with the having as its outer WHERE."""
    import sqlglot

    query = MetricQuery(
        metrics=("revenue", "events_tracked"),
        group_by=("metric_time__month", "account__plan"),
        having=("revenue > 1000",),
        order_by=("-revenue",),
        limit=10,
    )
    for dialect in DIALECTS:
        sql = compile_query(_with(query, dialect=dialect), MANIFEST).sql
        tree = sqlglot.parse_one(sql, read=dialect)
        assert tree.args["where"].sql(dialect).endswith("revenue > 1000"), dialect


def test_having_is_part_of_the_cache_key() -> None:
    """Two queries differing only in having never share a compile; surrounding whitespace
    does not matter, the text inside does (as for where)."""
    base = MetricQuery(metrics=("revenue",), group_by=("account__plan",))
    a = _with(base, having=("revenue > 1",))
    assert a.cache_key() != base.cache_key()
    assert a.cache_key() == _with(base, having=("  revenue > 1 ",)).cache_key()
    assert a.cache_key() != _with(base, having=("revenue > 2",)).cache_key()


def _refusal(query: MetricQuery) -> QueryError:
    with pytest.raises(QueryError) as raised:
        compile_query(query, MANIFEST)
    return raised.value


BASE = MetricQuery(metrics=("revenue",), group_by=("account__plan",))
OUTPUTS = "revenue, account__plan"


@pytest.mark.parametrize(
    ("having", "location", "message", "hint"),
    [
        ("cost > 1", "having[0]:0-4", MSG_NOT_OUTPUT.format(name="cost"), None),
        ("new_accounts > 1", "having[0]:0-12", MSG_NOT_OUTPUT.format(name="new_accounts"), None),
        ("revenu > 1", "having[0]:0-6", MSG_NOT_OUTPUT.format(name="revenu"), "did you mean 'revenue'?"),
        ("{{ Dimension('account__region') }} = 'EU'", "having[0]:0-34", MSG_NOT_OUTPUT.format(name="{{ Dimension('account__region') }}"), None),
        ("{{ Metric('revenue', group_by=['account']) }} > 1", "having[0]:0-45", MSG_METRIC_CALL.format(text="{{ Metric('revenue', group_by=['account']) }}"), HINT_METRIC_CALL),
        ("revenue > (SELECT 1)", "having[0]:11-17", "subqueries are not allowed in filters", HINT_HAVING_SUBQUERY),
    ],
)  # fmt: skip
def test_a_bad_having_names_the_field_and_the_name(
    having: str, location: str, message: str, hint: str | None
) -> None:
    """Snapshot of each refusal: code bad_having, the having item and span, the name."""
    error = _refusal(_with(BASE, having=("revenue > 0", having)))
    assert error.code == "bad_having"
    assert error.location == location.replace("having[0]", "having[1]")
    assert error.message == message
    if hint is not None:
        assert error.hint == hint
    elif "Metric" not in having:
        assert error.hint is not None and OUTPUTS in error.hint


def test_functions_outside_the_where_allow_list_are_refused() -> None:
    """The where filter's allow-list applies as it is: no function beyond it."""
    error = _refusal(_with(BASE, having=("pg_sleep(revenue) > 1",)))
    assert (error.code, error.location) == ("bad_having", "having[0]:0-17")
    assert error.message == "function pg_sleep is not allowed in filters"


def test_having_needs_metrics() -> None:
    error = _refusal(MetricQuery(metrics=(), group_by=("account__plan",), having=("1 = 1",)))
    assert (error.code, error.location, error.message) == (
        "bad_having",
        "having",
        MSG_HAVING_WITHOUT_METRICS,
    )


def test_parse_having_returns_the_columns_it_reads() -> None:
    condition, used = parse_having(
        "metric_time > '2025-01-01' OR {{ TimeDimension('metric_time', 'month') }} IS NULL",
        location="having[0]",
        keys=["metric_time__month"],
        metrics=["revenue"],
    )
    assert used == ["metric_time__month"]
    assert condition.sql() == ("metric_time__month > '2025-01-01' OR metric_time__month IS NULL")
