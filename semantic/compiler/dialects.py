"""Dialect quirks sqlglot's stock dialects leave to us, in one place.

Every query means what it means on DuckDB (the dialect definitions are written in) on every
engine; ``render`` rewrites the few constructs whose meaning differs:

* ClickHouse: a projected column gets an explicit alias (the analyzer names
  ``all_keys.k`` literally, so ``combined.k`` would not resolve); ``lead``/``lag`` read a
  Nullable argument (otherwise the missing row gives the type's default, not NULL); a
  calendar truncation stays a DateTime64 (``dateTrunc`` returns a Date for days and
  longer); ``PERCENTILE_CONT … WITHIN GROUP`` becomes ``quantileExactInclusive`` and
  ``PERCENTILE_DISC`` the sorted values' element DuckDB picks; ``->>`` gives NULL for a missing key or a JSON null and the raw
  text of a number (``JSONExtractString`` gives ``''``); a projected predicate is a Bool,
  not a UInt8; ``DATEDIFF('week')`` counts
  whole 7-day spans of days as DuckDB does. LEFT JOIN NULLs need ``join_use_nulls=1``,
  which every ClickHouse session of Tally sets (semantic.warehouse.engine_open). A CTE read
  more than once is ``MATERIALIZED`` (sessions set ``enable_materialized_cte=1``): ClickHouse
  otherwise runs it at every reference, as the merge of a conversion metric's aggregate into
  the all-keys union and its LEFT JOIN does (twice the conversion join's cost). A CAST is to
  the plain type, not sqlglot's ``Nullable(T)``: sessions set ``cast_keep_nullable=1``, so it
  keeps a NULL as SQL's CAST does (without the setting a NULL makes the query fail, never a
  wrong value), and a non-null column stays non-null (Nullable values cost ~1.5x in a
  DISTINCT or join).
* Spark/Databricks: ``ROW_NUMBER() OVER ()`` gets an ORDER BY (Spark refuses it without);
  ``DATEDIFF(unit, a, b)`` counts unit boundaries between the truncated values as DuckDB
  does (Spark's counts whole elapsed units); percentiles stay exact ``WITHIN GROUP``
  aggregates (sqlglot would write the approximate ``PERCENTILE_APPROX``); ``->>`` of a
  nested value keeps its JSON text.

MySQL/MariaDB have no DATE_TRUNC. sqlglot's MySQL dialect emulates it with arithmetic from
year 0000 that returns text, and truncates weeks to Sundays; MetricFlow (and every other
engine here) truncates weeks to Mondays and returns a timestamp. ``render`` rewrites each
truncation, for MySQL, into MySQL date functions that MariaDB also has, cast to DATETIME.
(A rewrite of the tree rather than a Generator subclass: sqlglot's compiled build,
sqlglotc, does not let interpreted classes inherit from its generators.)
"""

from __future__ import annotations

import functools

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

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
    elif unit in _MYSQL_TIME_FORMATS:
        start = _fn("DATE_FORMAT", value, exp.Literal.string(_MYSQL_TIME_FORMATS[unit]))
    elif unit == "MILLISECOND":
        # The microseconds past the millisecond, subtracted; DATETIME(3) keeps the rest.
        past = exp.Mod(this=_fn("MICROSECOND", value.copy()), expression=exp.Literal.number(1000))
        start = _fn("DATE_SUB", value, _interval(past, "MICROSECOND"))
        return exp.Cast(this=start, to=exp.DataType.build("DATETIME(3)", dialect="mysql"))
    else:
        raise ValueError(f"no MySQL truncation for {unit}")
    return exp.Cast(this=start, to=exp.DataType.build("DATETIME"))


# Sub-daily truncations: the value printed without the finer fields, read back as DATETIME.
_MYSQL_TIME_FORMATS = {
    "HOUR": "%Y-%m-%d %H:00:00",
    "MINUTE": "%Y-%m-%d %H:%i:00",
    "SECOND": "%Y-%m-%d %H:%i:%s",
}


def _mysql_rewrite(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.TimestampTrunc):
        unit = node.args["unit"].name if node.args.get("unit") else "DAY"
        return mysql_trunc(node.this, unit)
    return node


# --- ClickHouse ----------------------------------------------------------------------------

_CALENDAR_UNITS = ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR")


def _unit(node: exp.Expr) -> str:
    unit = node.args.get("unit")
    return unit.name.upper() if unit is not None else "DAY"


_PREDICATES = (exp.Predicate, exp.Connector, exp.Not)


def _alias_columns(select: exp.Select) -> None:
    """``SELECT t.k`` → ``SELECT t.k AS k``: ClickHouse's analyzer names the first literally.
    A projected predicate becomes a Bool (ClickHouse computes it as a UInt8 0/1)."""
    projections = select.expressions
    for index, projection in enumerate(projections):
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, _PREDICATES):
            inner.replace(exp.Cast(this=inner.copy(), to=exp.DataType.build("BOOLEAN")))
            continue
        if (
            isinstance(projection, exp.Column)
            and projection.table
            and not isinstance(projection.this, exp.Star)
        ):
            projections[index] = exp.alias_(projection, projection.name, copy=False)


def _quantile(node: exp.WithinGroup) -> exp.Expr:
    """``PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x)`` as ClickHouse's exact quantile with
    linear interpolation (R7, as percentile_cont); ``PERCENTILE_DISC(q)`` as the sorted
    values' element at 1-based position ceil(n × q) (at least 1), as DuckDB and PostgreSQL
    pick it (ClickHouse's quantileExact picks position floor(n × q) + 1), NULL for no rows."""
    function = node.this
    order = node.expression
    value = order.expressions[0].this if isinstance(order, exp.Order) else order
    quantile = function.this
    if isinstance(function, exp.PercentileCont):
        # Interpolation needs a float (DuckDB's percentile_cont of a DECIMAL is a DOUBLE too).
        argument = exp.Anonymous(this="toFloat64", expressions=[value.copy()])
        return exp.Anonymous(
            this=f"quantileExactInclusive({quantile.sql('clickhouse')})", expressions=[argument]
        )
    count = exp.Count(this=value.copy())
    position = exp.Anonymous(
        this="toUInt64",
        expressions=[
            exp.Greatest(
                this=exp.Literal.number(1),
                expressions=[exp.Ceil(this=exp.Mul(this=count.copy(), expression=quantile.copy()))],
            )
        ],
    )
    sorted_values = exp.Anonymous(
        this="arraySort",
        expressions=[exp.Anonymous(this="groupArray", expressions=[value.copy()])],
    )
    return exp.Case(
        ifs=[exp.If(this=exp.EQ(this=count, expression=exp.Literal.number(0)), true=exp.Null())],
        default=exp.Anonymous(this="arrayElement", expressions=[sorted_values, position]),
    )


def _clickhouse_json_text(node: exp.JSONExtractScalar) -> exp.Expr:
    """DuckDB's ``->>``: NULL when the key is missing or null, a string's value, otherwise
    the value's JSON text."""
    path = node.expression
    keys: list[exp.Expr] = []
    if isinstance(path, exp.JSONPath):
        for part in path.expressions:
            if isinstance(part, exp.JSONPathRoot):
                continue
            if isinstance(part, exp.JSONPathKey):
                keys.append(exp.Literal.string(str(part.this)))
            elif isinstance(part, exp.JSONPathSubscript):
                keys.append(exp.Literal.number(int(part.this) + 1))  # 1-based
            else:
                raise ValueError(f"no ClickHouse JSON path for {path.sql()}")
    else:
        keys.append(path.copy())
    doc = node.this

    def call(name: str) -> exp.Expr:
        return exp.Anonymous(this=name, expressions=[doc.copy(), *[k.copy() for k in keys]])

    kind = call("JSONType")
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.Or(
                    this=exp.Not(this=call("JSONHas")),
                    expression=exp.EQ(this=kind, expression=exp.Literal.string("Null")),
                ),
                true=exp.Null(),
            ),
            exp.If(
                this=exp.EQ(this=kind.copy(), expression=exp.Literal.string("String")),
                true=call("JSONExtractString"),
            ),
        ],
        default=call("JSONExtractRaw"),
    )


def _days_between(node: exp.DateDiff, dialect: str) -> exp.Expr:
    """Day boundaries between the two values of a DATEDIFF (DuckDB's day difference)."""
    if dialect == "clickhouse":
        return exp.DateDiff(
            this=node.this.copy(), expression=node.expression.copy(), unit=exp.Var(this="DAY")
        )
    date = exp.DataType.build("DATE")
    return exp.Anonymous(
        this="DATEDIFF",
        expressions=[exp.cast(node.this.copy(), date), exp.cast(node.expression.copy(), date)],
    )


def _whole_weeks(node: exp.DateDiff, dialect: str) -> exp.Expr:
    """DuckDB's week difference: whole 7-day spans of the day difference (toward zero)."""
    days = _days_between(node, dialect)
    if dialect == "clickhouse":
        return exp.Anonymous(this="intDiv", expressions=[days, exp.Literal.number(7)])
    return exp.cast(
        exp.Div(this=days, expression=exp.Literal.number(7), typed=False, safe=False),
        exp.DataType.build("INT"),
    )


def _clickhouse_rewrite(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Select):
        _alias_columns(node)
        return node
    if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
        # A plain type: with cast_keep_nullable=1 the CAST is Nullable exactly when its
        # argument is, as in SQL. sqlglot writes Nullable(T), which makes every value of a
        # non-null column Nullable too (a DISTINCT or join on them measured 1.5x slower).
        if node.to.args.get("nullable") is None:
            node.to.set("nullable", False)
        return node
    if isinstance(node, exp.Lead | exp.Lag):
        value = node.this
        if not (isinstance(value, exp.Anonymous) and value.name == "toNullable"):
            node.set("this", exp.Anonymous(this="toNullable", expressions=[value]))
        return node
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc) and _unit(node) in _CALENDAR_UNITS:
        if isinstance(node.parent, exp.Anonymous) and node.parent.name == "toDateTime64":
            return node
        # toDateTime64 keeps NULLs (a CAST to DateTime64 refuses a NULL Date).
        return exp.Anonymous(this="toDateTime64", expressions=[node, exp.Literal.number(6)])
    if isinstance(node, exp.WithinGroup) and isinstance(
        node.this, exp.PercentileCont | exp.PercentileDisc
    ):
        return _quantile(node)
    if isinstance(node, exp.JSONExtractScalar):
        return _clickhouse_json_text(node)
    if isinstance(node, exp.DateDiff) and _unit(node) == "WEEK":
        return _whole_weeks(node, "clickhouse")
    return node


# The settings Tally's ClickHouse SQL means what it means under: UTC days, SQL-standard NULLs
# from outer joins and CASTs, a CTE read twice run once. Every session of Tally sets them
# (semantic.warehouse.engine_open), and the query carries them too, so a published view or
# SQL a BI tool pulls and runs elsewhere means the same (a read-only user may set a setting
# to the value it already has).
CLICKHOUSE_SETTINGS: dict[str, str] = {
    "session_timezone": "UTC",
    "join_use_nulls": "1",
    "cast_keep_nullable": "1",
    "enable_materialized_cte": "1",
}


def _clickhouse_settings(tree: exp.Expr) -> None:
    if not isinstance(tree, exp.Select) or tree.parent is not None:
        return
    present = {
        setting.this.name
        for setting in tree.args.get("settings") or []
        if isinstance(setting, exp.EQ)
    }
    tree.set(
        "settings",
        [
            *(tree.args.get("settings") or []),
            *(
                exp.EQ(
                    this=exp.column(name),
                    expression=exp.Literal(this=value, is_string=not value.isdigit()),
                )
                for name, value in CLICKHOUSE_SETTINGS.items()
                if name not in present
            ),
        ],
    )


def _materialize_shared_ctes(tree: exp.Expr) -> None:
    """Marks each CTE that the query reads more than once ``MATERIALIZED`` (ClickHouse)."""
    for cte in tree.find_all(exp.CTE):
        scope = cte.parent.parent if cte.parent is not None else None
        if scope is None:
            continue
        name = cte.alias_or_name
        reads = sum(
            1
            for table in scope.find_all(exp.Table)
            if not table.args.get("db") and table.name == name
        )
        if reads > 1:
            cte.set("materialized", True)


# --- Spark / Databricks --------------------------------------------------------------------


def _spark_rewrite(node: exp.Expr) -> exp.Expr:
    if isinstance(node, exp.Window) and isinstance(node.this, exp.RowNumber):
        if not node.args.get("order"):
            # Any order numbers the rows uniquely, which is all an unordered ROW_NUMBER is for.
            node.set(
                "order",
                exp.Order(
                    expressions=[
                        exp.Ordered(
                            this=exp.Anonymous(this="MONOTONICALLY_INCREASING_ID", expressions=[])
                        )
                    ]
                ),
            )
        return node
    if isinstance(node, exp.DateDiff) and node.args.get("unit") is not None:
        unit = _unit(node)
        if unit == "DAY":
            return _days_between(node, "spark")
        if unit == "WEEK":
            return _whole_weeks(node, "spark")
        truncated = [
            exp.TimestampTrunc(this=value.copy(), unit=exp.Var(this=unit))
            for value in (node.expression, node.this)
        ]
        return exp.Anonymous(this="TIMESTAMPDIFF", expressions=[exp.Var(this=unit), *truncated])
    if isinstance(node, exp.WithinGroup) and isinstance(
        node.this, exp.PercentileCont | exp.PercentileDisc
    ):
        name = "PERCENTILE_CONT" if isinstance(node.this, exp.PercentileCont) else "PERCENTILE_DISC"
        return exp.WithinGroup(
            this=exp.Anonymous(this=name, expressions=[node.this.this.copy()]),
            expression=node.expression.copy(),
        )
    return node


def render(tree: exp.Expr, dialect: str, *, pretty: bool = True, date_parts: bool = True) -> str:
    """SQL text of ``tree`` (built for this call, so it is rewritten in place) in ``dialect``.

    ``date_parts=False`` says the tree holds no date-part marker (the caller counted them
    with ``date_parts.markers_built``), which spares a walk of the whole tree.

    Example:
        >>> render(exp.TimestampTrunc(this=exp.column("ts"), unit=exp.Var(this="DAY")), "mysql")
        'CAST(DATE(ts) AS DATETIME)'
    """
    if dialect == "mysql":
        tree = tree.transform(_mysql_rewrite, copy=False)
    elif dialect == "clickhouse":
        tree = tree.transform(_clickhouse_rewrite, copy=False)
        _materialize_shared_ctes(tree)
        _clickhouse_settings(tree)
    elif dialect in ("spark", "databricks"):
        tree = tree.transform(_spark_rewrite, copy=False)
    # Date parts are written per engine (see semantic.compiler.date_parts). A walk over the
    # tree's anonymous functions only; most queries have none and skip the transform.
    if date_parts and any(node.name == MARKER for node in tree.find_all(exp.Anonymous)):
        tree = tree.transform(lambda node: render_date_part(node, dialect), copy=False)
    return tree.sql(dialect=_dialect(dialect), copy=False, pretty=pretty)


@functools.lru_cache(maxsize=64)
def _dialect(name: str) -> Dialect:
    # A name makes sqlglot build a new Dialect on every call; its settings never change, so
    # one instance per name serves every render (the same class, the same SQL).
    return Dialect.get_or_raise(name)
