"""Names the time dimension behind a warehouse's refusal of a date truncation or comparison.

A time dimension over a text column (a VARCHAR ``last_login_ts`` in a snapshot) compiles,
and the warehouse then refuses ``DATE_TRUNC`` on it with its own words (DuckDB: "No function
matches ... date_trunc(STRING_LITERAL, VARCHAR)"), or a time range's comparison with it
("Cannot compare values of type VARCHAR and type TIMESTAMP"), which a user sees as a generic
``warehouse_error`` with a reference. When a refusal mentions a truncation function or such a
comparison, ``time_type_error`` asks the warehouse the type of every time dimension of the models the
SQL reads (one ``WHERE 1 = 0`` query each: no rows are read) and, when some are not dates
or timestamps, returns an error naming them, their model, expression and column type.
``tally validate --warehouse`` finds the same definitions before any query
(semantic.warehouse.definitions_check).
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.manifest import Manifest, SemanticModel
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import execute
from tally.errors import WarehouseError

# Truncation functions as the engines name them in their errors (lower case).
TRUNC_NAMES = ("date_trunc", "timestamp_trunc", "datetime_trunc", "tostartof", "trunc(")
TIME_KINDS = frozenset({"date", "timestamp"})
PROBE_TIMEOUT_S = 10.0
MSG_NOT_TIME = (
    "time dimension {names} cannot be truncated to a grain: {what}; a time dimension must "
    "be a date or a timestamp"
)
# A range filter on the column (compute runs, a query's time range) is refused as a comparison.
MSG_NOT_TIME_COMPARED = (
    "time dimension {names} cannot be compared with a time range: {what}; a time dimension "
    "must be a date or a timestamp"
)
# How engines refuse comparing text with a time (DuckDB, PostgreSQL), lower case; MariaDB
# compares them as text and refuses nothing.
COMPARE_SIGNS = ("cannot compare values of type", "operator does not exist")
HINT_NOT_TIME = (
    "cast it in the dimension's expr (e.g. expr: CAST({expr} AS TIMESTAMP)) or give the "
    "column a date/timestamp type; `tally validate --warehouse` checks every time dimension"
)


def mentions_truncation(message: str | None) -> bool:
    """Whether a warehouse's error text is about a truncation function.

    Example:
        >>> mentions_truncation("No function matches 'date_trunc(STRING_LITERAL, VARCHAR)'")
        True
        >>> mentions_truncation("Table main.x does not exist")
        False
    """
    text = (message or "").lower()
    return any(name in text for name in TRUNC_NAMES)


def refused_time_message(message: str | None) -> str | None:
    """The message template for a warehouse's refusal of a time operation on a column that
    may be no time: a truncation, or a comparison of text with a date or timestamp; None
    for any other refusal.

    Example:
        >>> refused_time_message("function date_trunc(unknown, text) does not exist")[:40]
        'time dimension {names} cannot be truncat'
        >>> refused_time_message("operator does not exist: text >= timestamp")[:40]
        'time dimension {names} cannot be compare'
        >>> refused_time_message("Cannot compare values of type INTEGER and type VARCHAR")
    """
    if mentions_truncation(message):
        return MSG_NOT_TIME
    text = (message or "").lower()
    if any(sign in text for sign in COMPARE_SIGNS) and ("timestamp" in text or "date" in text):
        return MSG_NOT_TIME_COMPARED
    return None


def models_read(sql: str, manifest: Manifest, dialect: str) -> list[SemanticModel]:
    """The semantic models whose tables the SQL reads, in name order."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return []
    tables = {(t.catalog or None, t.db, t.name) for t in tree.find_all(exp.Table)}
    return [
        model
        for name, model in sorted(manifest.semantic_models.items())
        if (model.relation[0] or None, model.relation[1], model.relation[2]) in tables
    ]


def time_type_error(
    exc: WarehouseError, *, sql: str, manifest: Manifest, config: WarehouseConfig
) -> WarehouseError | None:
    """The error naming the time dimensions that are not dates or timestamps, when ``exc``
    is a refused truncation or time comparison and some are; None otherwise (``exc`` stands
    as it is).

    The new error keeps ``exc``'s reference and raw text (for administrators); its message
    quotes only definitions and the column types the warehouse describes."""
    template = refused_time_message(exc.warehouse_message)
    if exc.code != "warehouse_error" or template is None:
        return None
    found: list[tuple[str, str, str, str]] = []  # (dimension, model, expr, type name)
    for model in models_read(sql, manifest, config.dialect):
        for dim in model.dimensions.values():
            if dim.type != "time":
                continue
            probe = exp.select(definition_expr(dim.expr, "t").as_("probe"))
            database, schema, table = model.relation
            probe = probe.from_(exp.table_(table, db=schema, catalog=database, alias="t"))
            try:
                result = execute(
                    config, probe.where("1 = 0").sql(dialect=config.dialect),
                    timeout_s=PROBE_TIMEOUT_S, row_cap=1,
                )  # fmt: skip
            except WarehouseError:
                continue  # a probe that fails says nothing about the type: not named
            column = result.columns[0]
            if column.kind not in TIME_KINDS:
                found.append((dim.name, model.name, dim.expr, column.type_name or column.kind))
    if not found:
        return None
    names = " and ".join(f"{dim!r}" for dim, *_ in found)
    what = "; ".join(
        f"{dim!r} of semantic model {model!r} (expr: {expr}) is a {type_name} column"
        for dim, model, expr, type_name in found
    )
    error = WarehouseError(
        template.format(names=names, what=what),
        code="warehouse_type",
        hint=HINT_NOT_TIME.format(expr=found[0][2]),
        details={**(exc.details if isinstance(exc.details, dict) else {}),
                 "dimensions": [f"{model}.{dim}" for dim, model, *_ in found]},
        public=True,
    )  # fmt: skip
    error.warehouse_message, error.reference = exc.warehouse_message, exc.reference
    return error
