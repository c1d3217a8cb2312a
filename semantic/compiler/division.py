"""One meaning of ``/`` on every engine: DuckDB's real division, NULL for a zero divisor.

Definitions (semantic.compiler.definition_sql, kinds.derived) and user filters
(semantic.compiler.where, so queries, saved queries, the SQL API's WHERE, metric filters and
row policies) are rewritten by the same function: a filter and a measure agree on what
``seats / 4`` is, whichever engine runs them.
"""

from __future__ import annotations

from sqlglot import exp

_DOUBLE = exp.DataType.build("DOUBLE")


def real_division(tree: exp.Expr) -> exp.Expr:
    """Writes each division with one meaning on every engine (changed in place): a
    definition's, and a user filter's (semantic.compiler.where), so that a filter selects
    the same rows on every engine.

    ``a / b`` is DuckDB's (the definition dialect's) real division: the dividend is cast to
    DOUBLE, so integers are not truncated (PostgreSQL, Trino, T-SQL, Redshift would), nor
    decimals rounded to a fixed scale (MariaDB keeps 4 decimals, Snowflake 6, ClickHouse the
    dividend's DECIMAL scale, Spark and BigQuery their DECIMAL precision rules); DuckDB itself
    gives a DOUBLE for integer and DECIMAL operands alike. ``a // b`` stays integer division
    (it truncates toward zero on every engine for integers). A zero divisor gives NULL on
    every engine, as a ratio or derived metric's division does: DuckDB would give infinity or
    NaN (an error for ``//``), MariaDB NULL, PostgreSQL, Spark (ANSI), Snowflake, BigQuery and
    T-SQL would fail the query. A nonzero number literal divisor needs no NULLIF.

    Example:
        >>> real_division(exp.maybe_parse("amount / qty + seats / 2", dialect="duckdb")).sql()
        'CAST(amount AS DOUBLE) / NULLIF(qty, 0) + CAST(seats AS DOUBLE) / 2'
    """
    # Collected first, and wrapped without copies (copy=False): a division inside another's
    # dividend is rewritten in the tree, not in a detached copy.
    for division in list(tree.find_all(exp.Div, exp.IntDiv)):
        if type(division) is exp.Div:
            dividend = division.this
            if not (isinstance(dividend, exp.Cast) and dividend.to.this == _DOUBLE.this):
                division.set("this", exp.cast(dividend, _DOUBLE.copy(), copy=False))
            # typed=False: the generators of integer-dividing dialects would otherwise cast
            # again; safe=False: the NULLIF below already says what a zero divisor gives.
            division.set("typed", False)
            division.set("safe", False)
        divisor = division.expression
        if isinstance(divisor, exp.Nullif) or (
            isinstance(divisor, exp.Literal) and divisor.is_number and float(divisor.this) != 0
        ):
            continue
        division.set("expression", exp.Nullif(this=divisor, expression=exp.Literal.number(0)))
    return tree
