"""Date parts: ``EXTRACT`` of a time dimension, with one meaning on every engine.

``metric_time__extract_dow`` and ``TimeDimension('metric_time', date_part_name='dow')`` read
the same integer everywhere: ISO day of week (1 = Monday … 7 = Sunday), ISO week number
(1–53), day of year (1–366), and the calendar year, quarter, month and day of month. The
engines disagree when left alone (PostgreSQL's ``DOW`` is 0 for Sunday, MySQL's
``DAYOFWEEK`` is 1 for Sunday and its ``WEEK()`` counts from Sundays by default, BigQuery's
``DAYOFWEEK`` too), so the compiler builds a dialect-neutral marker (``date_part_expr``) and
``render_date_part`` writes each engine's own functions at render time.

Week is not in dbt-semantic-interfaces' ``DatePart`` (engines number weeks differently);
Tally offers it as ISO week, the numbering of its week grain.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from sqlglot import exp

from semantic.compiler.nodes import INT

DATE_PARTS: tuple[str, ...] = ("year", "quarter", "month", "week", "day", "dow", "doy")
# The grain a date part needs the data at, at least (extract_day of monthly data is refused).
DATE_PART_GRAIN = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week": "week",
    "day": "day",
    "dow": "day",
    "doy": "day",
}
# The prefix of the group-by spelling: metric_time__extract_year.
EXTRACT_PREFIX = "extract_"
# An anonymous function no filter can name (the where guard allows a fixed list): only the
# compiler builds it, and render replaces every one before SQL text exists.
MARKER = "TALLY_DATE_PART"


# How many markers were built so far in this context: a compile that built none lets render
# skip looking for them (a walk of the whole tree, about a tenth of a compile). Only
# date_part_expr builds markers (no filter or definition can name MARKER), so the count is exact.
_MARKERS_BUILT: contextvars.ContextVar[int] = contextvars.ContextVar(
    "tally_date_part_markers", default=0
)


def markers_built() -> int:
    """How many date-part markers this context has built (compare before and after)."""
    return _MARKERS_BUILT.get()


def date_part_expr(value: exp.Expr, part: str) -> exp.Expr:
    """The date part ``part`` of ``value``, to be written per dialect by ``render_date_part``.

    Example:
        >>> render_date_part(date_part_expr(exp.column("ts"), "dow"), "mysql").sql("mysql")
        '(WEEKDAY(ts) + 1)'
    """
    _MARKERS_BUILT.set(_MARKERS_BUILT.get() + 1)
    return exp.Anonymous(this=MARKER, expressions=[exp.Var(this=part.upper()), value])


def is_date_part(node: exp.Expr) -> bool:
    return isinstance(node, exp.Anonymous) and node.name == MARKER


def _fn(name: str, *args: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=name, expressions=list(args))


def _extract(unit: str, value: exp.Expr) -> exp.Expr:
    return exp.Extract(this=exp.Var(this=unit), expression=value)


def _plus_one(value: exp.Expr) -> exp.Expr:
    return exp.Paren(this=exp.Add(this=value, expression=exp.Literal.number(1)))


def _iso_from_sunday_one(value: exp.Expr) -> exp.Expr:
    """ISO day of week from a 1 = Sunday numbering: MOD(d + 5, 7) + 1."""
    shifted = exp.Add(this=value, expression=exp.Literal.number(5))
    return _plus_one(exp.Mod(this=exp.Paren(this=shifted), expression=exp.Literal.number(7)))


def _iso_from_sunday_zero(value: exp.Expr) -> exp.Expr:
    """ISO day of week from a 0 = Sunday numbering: MOD(d + 6, 7) + 1."""
    shifted = exp.Add(this=value, expression=exp.Literal.number(6))
    return _plus_one(exp.Mod(this=exp.Paren(this=shifted), expression=exp.Literal.number(7)))


def _int(value: exp.Expr) -> exp.Expr:
    return exp.Cast(this=value, to=INT.copy())


Builder = Callable[[exp.Expr], exp.Expr]

# EXTRACT as standard SQL has it (DuckDB): ISO week and ISODOW.
_STANDARD: dict[str, Builder] = {
    "year": lambda v: _extract("YEAR", v),
    "quarter": lambda v: _extract("QUARTER", v),
    "month": lambda v: _extract("MONTH", v),
    "week": lambda v: _extract("WEEK", v),
    "day": lambda v: _extract("DAY", v),
    "dow": lambda v: _extract("ISODOW", v),
    "doy": lambda v: _extract("DOY", v),
}


# PostgreSQL's EXTRACT returns NUMERIC: cast so every engine gives the same integers.
def _cast_int(builder: Builder) -> Builder:
    return lambda value: _int(builder(value))


_POSTGRES: dict[str, Builder] = {part: _cast_int(b) for part, b in _STANDARD.items()}
# Redshift has no ISODOW: DOW is 0 = Sunday. Its WEEK is ISO.
_REDSHIFT: dict[str, Builder] = {
    **_POSTGRES,
    "dow": lambda v: _iso_from_sunday_zero(_int(_extract("DOW", v))),
}
_MYSQL: dict[str, Builder] = {
    "year": lambda v: _fn("YEAR", v),
    "quarter": lambda v: _fn("QUARTER", v),
    "month": lambda v: _fn("MONTH", v),
    # Mode 3: weeks start Monday, week 1 has 4+ days of the year (ISO 8601).
    "week": lambda v: _fn("WEEK", v, exp.Literal.number(3)),
    "day": lambda v: _fn("DAYOFMONTH", v),
    "dow": lambda v: _plus_one(_fn("WEEKDAY", v)),  # WEEKDAY: 0 = Monday
    "doy": lambda v: _fn("DAYOFYEAR", v),
}
_SNOWFLAKE: dict[str, Builder] = {
    **_MYSQL,
    "week": lambda v: _fn("WEEKISO", v),
    "day": lambda v: _fn("DAYOFMONTH", v),
    "dow": lambda v: _fn("DAYOFWEEKISO", v),
}
_BIGQUERY: dict[str, Builder] = {
    **_STANDARD,
    "week": lambda v: _extract("ISOWEEK", v),
    "dow": lambda v: _iso_from_sunday_one(_extract("DAYOFWEEK", v)),
    "doy": lambda v: _extract("DAYOFYEAR", v),
}
# Spark/Databricks: WEEKOFYEAR is ISO; DAYOFWEEK is 1 = Sunday.
_SPARK: dict[str, Builder] = {
    **_MYSQL,
    "week": lambda v: _fn("WEEKOFYEAR", v),
    "dow": lambda v: _iso_from_sunday_one(_fn("DAYOFWEEK", v)),
}
# Trino: WEEK and DAY_OF_WEEK are ISO already.
_TRINO: dict[str, Builder] = {
    **_MYSQL,
    "week": lambda v: _fn("WEEK", v),
    "day": lambda v: _fn("DAY", v),
    "dow": lambda v: _fn("DAY_OF_WEEK", v),
    "doy": lambda v: _fn("DAY_OF_YEAR", v),
}
_CLICKHOUSE: dict[str, Builder] = {
    "year": lambda v: _fn("toYear", v),
    "quarter": lambda v: _fn("toQuarter", v),
    "month": lambda v: _fn("toMonth", v),
    "week": lambda v: _fn("toISOWeek", v),
    "day": lambda v: _fn("toDayOfMonth", v),
    "dow": lambda v: _fn("toDayOfWeek", v),  # mode 0: 1 = Monday
    "doy": lambda v: _fn("toDayOfYear", v),
}
BY_DIALECT: dict[str, dict[str, Builder]] = {
    "duckdb": _STANDARD,
    "postgres": _POSTGRES,
    "redshift": _REDSHIFT,
    "mysql": _MYSQL,
    "snowflake": _SNOWFLAKE,
    "bigquery": _BIGQUERY,
    "spark": _SPARK,
    "databricks": _SPARK,
    "trino": _TRINO,
    "clickhouse": _CLICKHOUSE,
}


def render_date_part(node: exp.Expr, dialect: str) -> exp.Expr:
    """``node`` written in ``dialect``'s functions when it is a date part marker, else itself.

    Example:
        >>> marker = date_part_expr(exp.column("ts"), "dow")
        >>> render_date_part(marker.copy(), "duckdb").sql("duckdb")
        'EXTRACT(ISODOW FROM ts)'
        >>> render_date_part(marker.copy(), "bigquery").sql("bigquery")
        '(MOD(EXTRACT(DAYOFWEEK FROM ts) + 5, 7) + 1)'
    """
    if not is_date_part(node):
        return node
    part, value = node.expressions
    return BY_DIALECT.get(dialect, _STANDARD)[part.name.lower()](value)
