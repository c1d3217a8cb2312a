"""Maps a SELECT on ``tally.metrics`` onto a MetricQuery.

Accepted shape (what BI tools generate for a grouped chart)::

    SELECT metric_time__month, account__plan, MEASURE(revenue) AS revenue
    FROM metrics
    WHERE account__region = 'EU' AND metric_time__day >= '2025-01-01'
    GROUP BY 1, 2 ORDER BY 1 DESC LIMIT 100

* a metric column may be selected bare (``revenue``), as ``MEASURE(revenue)``/``AGG(...)``,
  or inside SUM/MIN/MAX/AVG: the value is always the metric as defined (its own
  aggregation), as in dbt's and Cube's SQL APIs;
* group-by columns may be selected, grouped by name or position, or both; GROUP BY may be
  left out;
* WHERE conjuncts over group-by columns become MetricFlow filters, built as sqlglot
  expressions in which each column is replaced by its Jinja item (``{{ Dimension('…') }}``);
  the compiler parses and checks them again against its allow-list;
* HAVING conjuncts become the query's ``having`` items (conditions on its output columns,
  after aggregation): a metric spelled as in SELECT (``SUM(revenue)``, ``MEASURE(revenue)``,
  ``revenue``, its alias) or a group-by column; a metric named only in HAVING is computed
  too but not shown;
* ORDER BY (names, aliases, positions, the metric expressions) and LIMIT map directly.

Everything else is refused with a :class:`SqlApiError` naming the construct and a
PostgreSQL SQLSTATE. Django-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from semantic.compiler.spec import MAX_LIMIT, MetricQuery
from semantic.sqlapi.table import SCHEMA, TABLE, SqlColumn, SqlTable

# SQLSTATE codes the SQL API answers with.
FEATURE_NOT_SUPPORTED = "0A000"
SYNTAX_ERROR = "42601"
UNDEFINED_COLUMN = "42703"
UNDEFINED_TABLE = "42P01"
UNDEFINED_FUNCTION = "42883"
GROUPING_ERROR = "42803"
INVALID_PARAMETER = "22023"
READ_ONLY = "25006"

MSG_UNSUPPORTED = "{what} is not supported: query the {schema}.{table} table with one SELECT"
MSG_UNKNOWN_COLUMN = 'column "{name}" does not exist in {schema}.{table}'
MSG_UNKNOWN_TABLE = 'relation "{name}" does not exist'
MSG_METRIC_IN_WHERE = "filtering on metric {name} is not supported in WHERE"
HINT_METRIC_IN_WHERE = "filter the aggregated rows with HAVING, e.g. HAVING SUM({name}) > 1000"
MSG_AGG_ON_DIMENSION = "{func}() of {name} is not supported: {name} is a group-by column"
MSG_NO_COLUMNS = "select at least one metric or group-by column"
MSG_BAD_LIMIT = "{clause} must be a non-negative integer up to {limit}"
MSG_UNKNOWN_FUNCTION = "function {name}() is not supported on {schema}.{table}"
MSG_HAVING_NOT_GROUPED = 'column "{name}" must appear in the GROUP BY clause to be used in HAVING'

# Any of these around a metric column means "the metric" (its own aggregation).
METRIC_WRAPPERS = frozenset({"measure", "agg", "sum", "min", "max", "avg"})


class SqlApiError(Exception):
    """A statement the SQL API cannot answer; rendered as an ErrorResponse."""

    def __init__(self, message: str, *, sqlstate: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.hint = hint


def unsupported(what: str, hint: str | None = None) -> SqlApiError:
    """0A000 naming the construct."""
    return SqlApiError(
        MSG_UNSUPPORTED.format(what=what, schema=SCHEMA, table=TABLE),
        sqlstate=FEATURE_NOT_SUPPORTED,
        hint=hint,
    )


@dataclass(frozen=True)
class MappedQuery:
    """A MetricQuery plus how to lay its result out as the SELECT list asked.

    Attributes:
        query: what the compiler runs (its limit includes the offset).
        outputs: per output column, (name shown to the client, compiled column name, column).
        offset: rows of the compiled result to skip (OFFSET).
    """

    query: MetricQuery
    outputs: tuple[tuple[str, str, SqlColumn], ...]
    offset: int = 0


def reads_metrics_table(statement: exp.Expr) -> bool:
    """True when the statement names ``metrics`` / ``tally.metrics`` anywhere."""
    for table in statement.find_all(exp.Table):
        if table.name.lower() == TABLE and (table.db or SCHEMA).lower() in (SCHEMA, "public"):
            return True
    return False


def bind_parameters(statement: exp.Expr, params: Sequence[Any]) -> exp.Expr:
    """Replaces ``$n`` parameters with literals of the bound values (typed by Python type).

    Example:
        >>> import sqlglot
        >>> tree = sqlglot.parse_one("SELECT a FROM t WHERE b = $1", read="postgres")
        >>> bind_parameters(tree, ["EU"]).sql("postgres")
        "SELECT a FROM t WHERE b = 'EU'"
    """

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal):
            index = int(node.this.this) - 1
            if not 0 <= index < len(params):
                raise SqlApiError(
                    f"there is no parameter ${index + 1}", sqlstate="08P01"
                )  # protocol_violation
            return literal(params[index])
        return node

    return statement.transform(replace, copy=True)


def literal(value: Any) -> exp.Expr:
    """A sqlglot literal of a bound value."""
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def map_select(select: exp.Expr, table: SqlTable, *, dialect: str) -> MappedQuery:
    """The MetricQuery a SELECT on ``tally.metrics`` asks for.

    Args:
        select: a parsed statement with parameters already bound.
        table: the release's ``tally.metrics`` columns.
        dialect: the warehouse dialect the query compiles for.

    Returns:
        The :class:`MappedQuery`.

    Raises:
        SqlApiError: a construct outside the accepted shape, an unknown column.

    Example:
        >>> import sqlglot
        >>> from semantic.sqlapi.table import SqlColumn, SqlTable
        >>> cols = (SqlColumn("account__plan", "dimension", "varchar", "", "Dimension('account__plan')"),
        ...         SqlColumn("revenue", "metric", "numeric", ""))
        >>> t = SqlTable("r1", cols, {c.name: c for c in cols})
        >>> q = map_select(sqlglot.parse_one(
        ...     "SELECT account__plan, SUM(revenue) FROM metrics WHERE account__plan <> 'free' "
        ...     "GROUP BY 1 ORDER BY 2 DESC LIMIT 3", read="postgres"), t, dialect="duckdb").query
        >>> q.metrics, q.group_by, q.where, q.order_by, q.limit
        (('revenue',), ('account__plan',), ("{{ Dimension('account__plan') }} <> 'free'",), ('-revenue',), 3)
    """
    if not isinstance(select, exp.Select):
        raise unsupported(f"{select.key.upper()} statement")
    _check_shape(select)
    _check_from(select)

    metrics: list[str] = []
    group_by: list[str] = []
    outputs: list[tuple[str, str, SqlColumn]] = []
    aliases: dict[str, SqlColumn] = {}
    for item in select.expressions:
        column = _select_item(item, table)
        target = metrics if column.role == "metric" else group_by
        if column.name not in target:
            target.append(column.name)
        shown = item.alias_or_name if isinstance(item, exp.Alias) else column.name
        outputs.append((shown, column.name, column))
        aliases[shown.lower()] = column
    group = select.args.get("group")
    for key in group.expressions if group else ():
        column = _resolve_ref(key, table, outputs, aliases)
        if column.role == "metric":
            raise SqlApiError(f"cannot GROUP BY metric {column.name}", sqlstate=GROUPING_ERROR)
        if column.name not in group_by:
            group_by.append(column.name)
    if not outputs:
        raise SqlApiError(MSG_NO_COLUMNS, sqlstate=SYNTAX_ERROR)
    distinct = select.args.get("distinct")
    if distinct is not None and distinct.args.get("on"):
        raise unsupported("DISTINCT ON")
    where = select.args.get("where")
    filters = tuple(_filter(c, table) for c in _conjuncts(where.this)) if where else ()

    having = select.args.get("having")
    conditions = _conjuncts(having.this) if having else []
    having_items = tuple(_having(c, table, outputs, aliases, metrics, group_by) for c in conditions)

    order_by: list[str] = []
    order = select.args.get("order")
    for ordered in order.expressions if order else ():
        column = _resolve_ref(ordered.this, table, outputs, aliases)
        order_by.append(("-" if ordered.args.get("desc") else "") + column.name)

    # OFFSET skips rows of the compiled answer: the compiler reads limit + offset rows.
    limit, offset = _limit(select), _offset(select)
    query = MetricQuery(
        metrics=tuple(metrics),
        group_by=tuple(group_by),
        where=filters,
        having=having_items,
        order_by=tuple(order_by),
        limit=limit + offset if limit is not None and limit + offset <= MAX_LIMIT else limit,
        dialect=dialect,
    )
    return MappedQuery(query=query, outputs=tuple(outputs), offset=offset)


def _check_shape(select: exp.Select) -> None:
    for arg, what in (
        ("joins", "JOIN"),
        ("with_", "WITH"),
        ("with", "WITH"),
        ("windows", "WINDOW"),
        ("laterals", "LATERAL"),
        ("qualify", "QUALIFY"),
        ("into", "SELECT INTO"),
        ("locks", "FOR UPDATE"),
    ):
        if select.args.get(arg):
            raise unsupported(what)
    for node in select.walk():
        if node is not select and isinstance(node, exp.Query | exp.Subquery):
            raise unsupported("a subquery")
        if isinstance(node, exp.Count):
            raise unsupported("COUNT()", hint="metrics carry their own aggregation")
        if isinstance(node, exp.Window):
            raise unsupported("a window function")
        if isinstance(node, exp.Star):
            raise unsupported("SELECT *", hint="name the metrics and group-by columns")


def _check_from(select: exp.Select) -> None:
    source = select.args.get("from_") or select.args.get("from")
    table = source.this if source is not None else None
    if not isinstance(table, exp.Table):
        raise unsupported("this FROM clause")
    if table.name.lower() != TABLE or (table.db or SCHEMA).lower() not in (SCHEMA, "public"):
        name = f"{table.db}.{table.name}" if table.db else table.name
        raise SqlApiError(
            MSG_UNKNOWN_TABLE.format(name=name),
            sqlstate=UNDEFINED_TABLE,
            hint=f"Tally exposes one table, {SCHEMA}.{TABLE}",
        )


def _column(node: exp.Expr, table: SqlTable) -> SqlColumn:
    name = node.name if isinstance(node, exp.Column) else node.sql("postgres")
    found = table.column(name)
    if found is None:
        raise SqlApiError(
            MSG_UNKNOWN_COLUMN.format(name=name, schema=SCHEMA, table=TABLE),
            sqlstate=UNDEFINED_COLUMN,
        )
    return found


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.key.lower()


def _select_item(item: exp.Expr, table: SqlTable) -> SqlColumn:
    node = item.this if isinstance(item, exp.Alias) else item
    if isinstance(node, exp.Column):
        return _column(node, table)
    if isinstance(node, exp.Func):
        name = _function_name(node)
        args = [a for a in (node.this, *node.expressions) if isinstance(a, exp.Expr)]
        if name in METRIC_WRAPPERS and len(args) == 1 and isinstance(args[0], exp.Column):
            column = _column(args[0], table)
            if column.role != "metric":
                raise SqlApiError(
                    MSG_AGG_ON_DIMENSION.format(func=name.upper(), name=column.name),
                    sqlstate=FEATURE_NOT_SUPPORTED,
                )
            return column
        raise SqlApiError(
            MSG_UNKNOWN_FUNCTION.format(name=name.upper(), schema=SCHEMA, table=TABLE),
            sqlstate=UNDEFINED_FUNCTION,
            hint="select a metric bare or as MEASURE(metric)",
        )
    raise unsupported(f"the expression {node.sql('postgres')} in SELECT")


def _resolve_ref(
    node: exp.Expr,
    table: SqlTable,
    outputs: Sequence[tuple[str, str, SqlColumn]],
    aliases: dict[str, SqlColumn],
) -> SqlColumn:
    if isinstance(node, exp.Literal) and not node.is_string:
        position = int(node.this)
        if not 1 <= position <= len(outputs):
            raise SqlApiError(
                f"position {position} is not in select list", sqlstate="42P10"
            )  # invalid_column_reference
        return outputs[position - 1][2]
    if isinstance(node, exp.Column) and not node.table and node.name.lower() in aliases:
        return aliases[node.name.lower()]
    return _select_item(node, table)


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    node = node.unnest()
    if isinstance(node, exp.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _filter(condition: exp.Expr, table: SqlTable) -> str:
    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column):
            column = _column(node, table)
            if column.role == "metric":
                raise SqlApiError(
                    MSG_METRIC_IN_WHERE.format(name=column.name),
                    sqlstate=FEATURE_NOT_SUPPORTED,
                    hint=HINT_METRIC_IN_WHERE.format(name=column.name),
                )
            # The name was checked against the release's items, so the Jinja item holds no
            # user text; the compiler parses the whole filter again with its allow-list.
            return exp.var("{{ " + column.filter_call + " }}")
        return node

    for node in condition.walk():
        if isinstance(node, exp.Query | exp.Subquery):
            raise unsupported("a subquery in WHERE")
    return condition.transform(replace, copy=True).sql()


def _having(
    condition: exp.Expr,
    table: SqlTable,
    outputs: Sequence[tuple[str, str, SqlColumn]],
    aliases: dict[str, SqlColumn],
    metrics: list[str],
    group_by: list[str],
) -> str:
    """A HAVING conjunct as a having item: each metric expression or alias, and each group-by
    column, becomes its output column's bare name; the compiler parses the item again with
    its allow-list. A metric only HAVING names joins ``metrics`` (computed, not shown)."""

    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Column | exp.Func) or isinstance(node, exp.Cast):
            return node
        if isinstance(node, exp.Func) and _function_name(node) not in METRIC_WRAPPERS:
            return node  # CASE, COALESCE, …: the compiler's allow-list decides
        column = _resolve_ref(node, table, outputs, aliases)
        if column.role == "metric":
            if column.name not in metrics:
                metrics.append(column.name)
        elif column.name not in group_by:
            raise SqlApiError(
                MSG_HAVING_NOT_GROUPED.format(name=column.name), sqlstate=GROUPING_ERROR
            )
        return exp.column(column.name)

    return condition.transform(replace, copy=True).sql()


def _offset(select: exp.Select) -> int:
    offset = select.args.get("offset")
    if offset is None:
        return 0
    value = _count_value(offset.expression, "OFFSET")
    return value or 0


def _limit(select: exp.Select) -> int | None:
    limit = select.args.get("limit")
    if limit is None:
        return None
    return _count_value(limit.expression, "LIMIT")


def _count_value(value: exp.Expr, clause: str) -> int | None:
    while isinstance(value, exp.Cast):
        # LIMIT $1::INTEGER (SQLAlchemy, psycopg 3), bound to a literal.
        value = value.this
    if isinstance(value, exp.Null):
        return None
    if (
        not isinstance(value, exp.Literal)
        or value.is_string
        or not str(value.this).isdigit()
        or int(value.this) > MAX_LIMIT
    ):
        raise SqlApiError(
            MSG_BAD_LIMIT.format(clause=clause, limit=MAX_LIMIT), sqlstate=INVALID_PARAMETER
        )
    return int(value.this)
