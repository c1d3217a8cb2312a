"""Dialect quirks sqlglot's stock dialects leave to us, in one place.

MySQL/MariaDB have no DATE_TRUNC. sqlglot's MySQL dialect emulates it with arithmetic from
year 0000 that returns text, and truncates weeks to Sundays; MetricFlow (and every other
engine here) truncates weeks to Mondays and returns a timestamp. ``render`` rewrites each
truncation, for MySQL, into MySQL date functions that MariaDB also has, cast to DATETIME.
(A rewrite of the tree rather than a Generator subclass: sqlglot's compiled build,
sqlglotc, does not let interpreted classes inherit from its generators.)
"""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.date_parts import MARKER, render_date_part


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _interval(value: exp.Expr, unit: str) -> exp.Expr:
    return exp.Interval(this=value, unit=exp.Var(this=unit))


def mysql_trunc(value: exp.Expr, unit: str) -> exp.Expr:
    """A DATETIME at the start of ``unit`` containing ``value``, in MySQL functions.

    Example:
        >>> mysql_trunc(exp.column("ts"), "WEEK").sql(dialect="mysql")
        'CAST(DATE_SUB(DATE(ts), INTERVAL (WEEKDAY(ts)) DAY) AS DATETIME)'
    """
    unit = unit.upper()
    if unit == "DAY":
        start = _fn("DATE", value)
    elif unit == "WEEK":
        # WEEKDAY() is 0 for Monday: ISO weeks, as MetricFlow and DuckDB use.
        start = _fn("DATE_SUB", _fn("DATE", value), _interval(_fn("WEEKDAY", value.copy()), "DAY"))
    elif unit == "MONTH":
        start = _fn("DATE_FORMAT", value, exp.Literal.string("%Y-%m-01"))
    elif unit == "QUARTER":
        months = exp.Mul(
            this=exp.paren(exp.Sub(this=_fn("QUARTER", value), expression=exp.Literal.number(1))),
            expression=exp.Literal.number(3),
        )
        start = _fn(
            "DATE_ADD",
            _fn("MAKEDATE", _fn("YEAR", value.copy()), exp.Literal.number(1)),
            _interval(months, "MONTH"),
        )
    elif unit == "YEAR":
        start = _fn("DATE_FORMAT", value, exp.Literal.string("%Y-01-01"))
    else:
        raise ValueError(f"no MySQL truncation for {unit}")
    return exp.Cast(this=start, to=exp.DataType.build("DATETIME"))


def _mysql_rewrite(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.TimestampTrunc):
        unit = node.args["unit"].name if node.args.get("unit") else "DAY"
        return mysql_trunc(node.this, unit)
    return node


def render(tree: exp.Expr, dialect: str, *, pretty: bool = True) -> str:
    """SQL text of ``tree`` (built for this call, so it is rewritten in place) in ``dialect``.

    Example:
        >>> render(exp.TimestampTrunc(this=exp.column("ts"), unit=exp.Var(this="DAY")), "mysql")
        'CAST(DATE(ts) AS DATETIME)'
    """
    if dialect == "mysql":
        tree = tree.transform(_mysql_rewrite, copy=False)
    # Date parts are written per engine (see semantic.compiler.date_parts). A walk over the
    # tree's anonymous functions only; most queries have none and skip the transform.
    if any(node.name == MARKER for node in tree.find_all(exp.Anonymous)):
        tree = tree.transform(lambda node: render_date_part(node, dialect), copy=False)
    return tree.sql(dialect=dialect, copy=False, pretty=pretty)
