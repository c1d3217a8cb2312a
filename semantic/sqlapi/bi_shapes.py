"""The SQL BI tools generate, rewritten onto the one-SELECT shape of ``tally.metrics``.

Run before the mapping (translate.map_select); each rewrite keeps the question the tool
asked and changes only how it is spelled:

* **wrapping subqueries** (Superset's virtual datasets ``FROM (…) AS virtual_table``,
  Metabase's nested questions ``FROM (…) AS "source"``) are flattened when the inner SELECT
  only projects, filters and orders (or groups, when the outer one only projects, filters,
  orders and limits): outer columns are replaced by the inner expressions they name, the
  filters are AND-ed; a filter on the columns of a grouping subquery (Metabase's "filter
  on a summarized metric": ``WHERE "source"."sum" > 1000``) filters its groups, i.e. it
  becomes the HAVING of the flattened SELECT;
* **time grains**: ``DATE_TRUNC('month', metric_time__day)`` (Superset's time grain),
  ``CAST(DATE_TRUNC('month', …) AS date)`` and ``CAST(col AS date)`` (Metabase) on a time
  column become the column at that grain (``metric_time__month``); a grain finer than the
  column's keeps the column;
* **date literals**: ``TO_DATE('2025-01-01', 'YYYY-MM-DD')``, ``TO_TIMESTAMP(…, fmt)``
  (Superset), ``timestamp with time zone '…Z'`` (Metabase) become ``CAST('iso' AS DATE)`` /
  ``CAST('iso' AS TIMESTAMP)``, which the compiler's filter guard accepts; a string
  literal cast to text (``CAST('pro' AS "varchar")``) is the literal.

Django-free.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlglot import exp

from semantic.compiler.grains import GRAINS
from semantic.sqlapi.table import SqlTable
from semantic.sqlapi.translate import MappedQuery, SqlApiError, map_select, unsupported

# What a flattened inner SELECT may not carry (the outer query could not be one SELECT).
_INNER_REFUSED = (
    ("joins", "a JOIN in a subquery"),
    ("with_", "WITH in a subquery"),
    ("offset", "OFFSET in a subquery"),
    ("windows", "a WINDOW in a subquery"),
)
_TEXT_TYPES = (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR)
_TIME_TYPES = (
    exp.DataType.Type.DATE,
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.DATETIME,
)


def map_bi_select(select: exp.Expr, table: SqlTable, *, dialect: str) -> MappedQuery:
    """:func:`semantic.sqlapi.translate.map_select` of the normalized SELECT."""
    if isinstance(select, exp.Select):
        select = normalize_select(select, table)
    return map_select(select, table, dialect=dialect)


def normalize_select(select: exp.Select, table: SqlTable) -> exp.Select:
    """The SELECT with BI tools' spellings rewritten (see the module docstring).

    Example:
        >>> import sqlglot
        >>> from semantic.sqlapi.table import SqlColumn
        >>> cols = (SqlColumn("metric_time__day", "time", "date", ""),
        ...         SqlColumn("metric_time__month", "time", "date", ""),
        ...         SqlColumn("revenue", "metric", "numeric", ""))
        >>> t = SqlTable("r1", cols, {c.name: c for c in cols})
        >>> normalize_select(sqlglot.parse_one(
        ...     "SELECT DATE_TRUNC('month', metric_time__day) AS m, SUM(revenue) FROM "
        ...     "(SELECT metric_time__day, revenue FROM tally.metrics) AS virtual_table "
        ...     "WHERE metric_time__day >= TO_DATE('2025-01-01', 'YYYY-MM-DD') GROUP BY "
        ...     "DATE_TRUNC('month', metric_time__day) LIMIT 10", read="postgres"), t).sql()
        "SELECT metric_time__month AS m, SUM(revenue) FROM tally.metrics WHERE metric_time__day >= CAST('2025-01-01' AS DATE) GROUP BY metric_time__month LIMIT 10"
    """
    flat = flatten(select)
    rewritten = _children_first(flat, lambda node: _rewrite(node, table))
    assert isinstance(rewritten, exp.Select)  # the root SELECT is never replaced
    return rewritten


def _children_first(node: exp.Expr, fn: Callable[[exp.Expr], exp.Expr]) -> exp.Expr:
    # Post-order: CAST(DATE_TRUNC(…) AS date) must see its DATE_TRUNC already a column;
    # sqlglot's transform() visits a parent before its children.
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expr):
            node.set(key, _children_first(value, fn))
        elif isinstance(value, list):
            node.set(key, [_children_first(v, fn) if isinstance(v, exp.Expr) else v for v in value])
    return fn(node)


def flatten(select: exp.Select) -> exp.Select:
    """``SELECT … FROM (SELECT … FROM tally.metrics) AS t …`` as one SELECT, innermost first.

    Raises:
        SqlApiError: an inner SELECT that is more than a projection, filter, order or
            grouping (0A000 naming the construct).
    """
    source = select.args.get("from_")
    inner = source.this if source is not None else None
    if not isinstance(inner, exp.Subquery) or not isinstance(inner.this, exp.Select):
        return select
    if select.args.get("joins"):
        raise unsupported("a JOIN")
    body = flatten(inner.this.copy())
    for arg, what in _INNER_REFUSED:
        if body.args.get(arg):
            raise unsupported(what)
    outer_groups = bool(select.args.get("group")) or any(
        isinstance(node, exp.AggFunc) for node in select.expressions
    )
    # The inner SELECT aggregates: an outer filter of its rows is a filter of its groups.
    body_groups = bool(body.args.get("group") or body.args.get("having")) or any(
        isinstance(node, exp.AggFunc) for item in body.expressions for node in item.walk()
    )
    if body_groups and outer_groups:
        raise unsupported("aggregating an aggregated subquery")
    if body.args.get("distinct") and outer_groups:
        raise unsupported("aggregating a DISTINCT subquery")

    # Inner output name → the expression it stands for (positional GROUP BY resolved).
    names: dict[str, exp.Expr] = {}
    star = False
    for item in body.expressions:
        if isinstance(item, exp.Star):
            star = True
            continue
        expression = item.this if isinstance(item, exp.Alias) else item
        names[item.alias_or_name.lower()] = expression
    alias = inner.alias_or_name

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and (not node.table or node.table == alias):
            found = names.get(node.name.lower())
            if found is not None:
                return found.copy()
            if star:
                return exp.column(node.name)
            raise SqlApiError(
                f'column "{node.name}" does not exist in subquery "{alias}"', sqlstate="42703"
            )
        return node

    outer = select.copy()
    projections: list[exp.Expr] = []
    for item in outer.expressions:
        if isinstance(item, exp.Star):
            # SELECT * over the subquery: its columns, under their names.
            projections.extend(i.copy() for i in body.expressions)
        else:
            projections.append(item.transform(replace))
    outer.set("expressions", projections)
    for arg in ("where", "group", "order", "having", "qualify"):
        part = outer.args.get(arg)
        if part is not None:
            outer.set(arg, part.transform(replace))

    outer.set("from_", body.args["from_"].copy())
    outer_filter = outer.args.get("where")
    if body_groups:
        groups_kept = [
            part.this
            for part in (body.args.get("having"), outer_filter, outer.args.get("having"))
            if part
        ]
        outer.set("where", None)
        if groups_kept:
            condition = exp.and_(*[c.copy() for c in groups_kept], copy=False)
            outer.set("having", exp.Having(this=condition))
    inner_where = body.args.get("where")
    if inner_where is not None:
        outer_where = outer.args.get("where")
        condition = (
            inner_where.this.copy()
            if outer_where is None
            else exp.and_(inner_where.this.copy(), outer_where.this, copy=False)
        )
        outer.set("where", exp.Where(this=condition))
    if body.args.get("group"):
        keys = [_group_key(key, body) for key in body.args["group"].expressions]
        outer.set("group", exp.Group(expressions=keys))
    if body.args.get("distinct"):
        outer.set("distinct", body.args["distinct"].copy())
    if not outer.args.get("order") and body.args.get("order"):
        outer.set("order", body.args["order"].copy())
    inner_limit = body.args.get("limit")
    if inner_limit is not None:
        if outer_filter is not None:
            raise unsupported("filtering a LIMITed subquery")
        outer_limit = outer.args.get("limit")
        outer.set("limit", _smaller_limit(inner_limit, outer_limit))
    return outer


def _group_key(key: exp.Expr, body: exp.Select) -> exp.Expr:
    if isinstance(key, exp.Literal) and not key.is_string and str(key.this).isdigit():
        index = int(key.this) - 1
        if 0 <= index < len(body.expressions):
            item = body.expressions[index]
            return (item.this if isinstance(item, exp.Alias) else item).copy()
    return key.copy()


def _smaller_limit(inner: exp.Limit, outer: exp.Limit | None) -> exp.Limit:
    if outer is None:
        return inner.copy()
    values = [part.expression for part in (inner, outer)]
    if all(isinstance(v, exp.Literal) and str(v.this).isdigit() for v in values):
        return exp.Limit(expression=exp.Literal.number(min(int(v.this) for v in values)))
    raise unsupported("a LIMIT inside and outside a subquery")


def _rewrite(node: exp.Expr, table: SqlTable) -> exp.Expr:
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        return _truncated(node, table) or node
    if isinstance(node, exp.Cast) and isinstance(node.to, exp.DataType):
        kind = node.to.this
        inner = node.this
        if kind in _TIME_TYPES and isinstance(inner, exp.Column) and _time_column(inner, table):
            # Time columns are dates already; the cast changes nothing.
            return inner
        if isinstance(inner, exp.Literal) and inner.is_string:
            if kind in _TEXT_TYPES:
                return inner
            if kind == exp.DataType.Type.TIMESTAMPTZ:
                return _timestamp_literal(_parse_moment(inner.this))
    if isinstance(node, exp.StrToTime | exp.StrToDate) and isinstance(node.this, exp.Literal):
        fmt = node.args.get("format")
        text = str(node.this.this)
        try:
            moment = (
                dt.datetime.strptime(text, str(fmt.this))
                if isinstance(fmt, exp.Literal)
                else _parse_moment(text)
            )
        except ValueError:
            raise SqlApiError(
                f"cannot read {text!r} as a date with format {fmt.sql() if fmt else 'ISO'}",
                sqlstate="22007",  # invalid_datetime_format
            ) from None
        if isinstance(node, exp.StrToDate):
            return exp.cast(exp.Literal.string(moment.date().isoformat()), "DATE")
        return _timestamp_literal(moment)
    return node


def _parse_moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _timestamp_literal(moment: dt.datetime) -> exp.Expr:
    return exp.cast(exp.Literal.string(moment.isoformat(sep=" ")), "TIMESTAMP")


def _time_column(node: exp.Column, table: SqlTable) -> str | None:
    column = table.column(node.name)
    return column.name if column is not None and column.role == "time" else None


def _truncated(node: exp.Expr, table: SqlTable) -> exp.Expr | None:
    """DATE_TRUNC(unit, time column) as the column at that grain (None: not a time column
    or a unit Tally has no grain for)."""
    target = node.this
    unit = node.args.get("unit")
    if not isinstance(target, exp.Column) or unit is None:
        return None
    name = _time_column(target, table)
    grain = unit.name.lower()
    if name is None or grain not in GRAINS:
        return None
    parts = name.split("__")
    current = parts[-1] if parts[-1] in GRAINS else "day"
    base = "__".join(parts[:-1]) if parts[-1] in GRAINS else name
    if GRAINS.index(grain) <= GRAINS.index(current):
        return exp.column(name)  # truncating to a finer grain keeps the column
    wanted = f"{base}__{grain}"
    return exp.column(wanted) if table.column(wanted) is not None else None
