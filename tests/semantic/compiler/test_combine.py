"""semantic.compiler.combine: aggregations merged on their keys, then ordered and limited."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import exp

from semantic.compiler.combine import combine_ctes, order_limit
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_combined_keys_keep_rows_present_in_one_aggregation_only(duck: Any, dialect: str) -> None:
    """Keys of every CTE appear (NULL-safe matching), with NULL where a CTE has none: the
    union of keys and (Spark's form, run here on DuckDB) the GROUP BY over a UNION ALL of the
    aggregations' rows."""
    ctes = [
        ("a", exp.select("k", "x").from_("(VALUES ('p', 1), (NULL, 2)) AS t(k, x)")),
        ("b", exp.select("k", "y").from_("(VALUES ('q', 3), (NULL, 4)) AS t(k, y)")),
        ("c", exp.select("k", "z").from_("(VALUES ('q', 5), ('r', 6)) AS t(k, z)")),
    ]
    combined = combine_ctes(ctes, ["k"], dialect)
    select = exp.select("combined.k", "combined.x", "combined.y", "combined.z").from_(combined)
    select.set(
        "with_",
        exp.With(
            expressions=[
                exp.CTE(this=c, alias=exp.TableAlias(this=exp.to_identifier(n))) for n, c in ctes
            ]
        ),
    )
    rows = duck.execute(select.sql("duckdb") + " ORDER BY 1 NULLS FIRST").fetchall()
    assert rows == [
        (None, 2, 4, None),
        ("p", 1, None, None),
        ("q", None, 3, 5),
        ("r", None, None, 6),
    ]
    joins = {join.side for join in combined.find_all(exp.Join)}
    assert joins == (set() if dialect == "spark" else {"LEFT"})


def test_a_single_aggregation_without_keys_is_read_as_is() -> None:
    """No keys and one CTE: nothing to join."""
    combined = combine_ctes([("a", exp.select("1"))], [])
    assert exp.select("*").from_(combined).sql() == "SELECT * FROM (SELECT * FROM a) AS combined"


def test_order_limit_sorts_descending_with_a_minus_and_limits() -> None:
    """`-name` sorts descending; the limit follows."""
    select = exp.select("k", "v").from_("t")
    query = MetricQuery(metrics=("v",), order_by=("-v", "k"), limit=3)
    assert order_limit(select, query, ["k"]).sql() == (
        "SELECT k, v FROM t ORDER BY v DESC, k ASC NULLS LAST LIMIT 3"
    )


def test_order_by_an_unknown_column_is_refused_with_a_suggestion() -> None:
    """Only group-by items and requested metrics can order the result."""
    query = MetricQuery(metrics=("revenue",), order_by=("revenu",))
    with pytest.raises(QueryError) as info:
        order_limit(exp.select("revenue").from_("t"), query, [])
    assert info.value.code == "bad_order_by"
    assert info.value.hint == "did you mean 'revenue'?"
