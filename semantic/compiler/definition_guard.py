"""Definition expressions are data, not code.

A semantic model's ``entities[].expr``, ``dimensions[].expr`` and ``measures[].expr`` and a
derived metric's ``expr`` go into every query the compiler writes, and into the checks a
proposal runs before anyone reviewed it. So they are parsed and checked the way user
filters are (``semantic.compiler.where``), against an allow-list:

* columns of the model's own table, unqualified or qualified by the model's own name (a
  derived metric: only the names or aliases of its input metrics);
* literals, arithmetic, comparisons, AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE, CASE, CAST to
  the filter's types, INTERVAL literals;
* the scalar functions of the filter allow-list plus a few that definitions use
  (DATEDIFF, DATE_ADD, IF, ``->>``, string and number helpers).

Everything else is refused: subqueries, set operations, statements, table functions, file,
system and network functions (``read_text``, ``read_csv``, ``pg_read_file``, ``getenv``,
``current_setting``…, which sqlglot reads as unknown functions), aggregates (a measure's
``agg`` aggregates its per-row ``expr``), window functions, parameters and comments.

Definitions are written in one dialect (DuckDB's, ``DEFINITION_DIALECT``) and the allowed
nodes are sqlglot's typed expressions, which the compiler renders for every target dialect;
function names sqlglot does not know (``exp.Anonymous``) would be pasted through verbatim
to the warehouse, so none is allowed, in any dialect.

Every refusal is a ``QueryError`` with code ``bad_definition``, a message from one of the
``MSG_*`` templates below, a hint and the caller's location.
"""

from __future__ import annotations

import difflib
import functools
import unicodedata
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from semantic.compiler.where.allow_list import (
    ALLOWED_CONTROLS,
    BAD_CATEGORIES,
    CAST_TYPES,
    DATE_PARTS,
    FUNCTION_ALIASES,
    INTERVAL_UNITS,
    LITERALS,
    MAX_NESTING,
    OPERATORS,
    TRUNC_UNITS,
)
from semantic.compiler.where.allow_list import FUNCTIONS as FILTER_FUNCTIONS
from tally.errors import QueryError

# The user filter's operators and literals: definitions share the filters' allow-list.
FILTER_NODES: frozenset[type[exp.Expr]] = OPERATORS | LITERALS
ERROR_CODE = "bad_definition"
DEFINITION_DIALECT = "duckdb"
MAX_EXPR_CHARS = 10_000

# Message and hint templates (imported by the tests).
MSG_NOT_TEXT = "a definition expression must be text or a number, not {type}"
MSG_EMPTY = "empty definition expression"
HINT_EMPTY = "name a column of the model's table, e.g. expr: amount, or leave expr out"
MSG_TOO_LONG = (
    "expression is {length:,} characters long; definitions must be shorter than {limit:,}"
)
MSG_SQL_SYNTAX = "could not parse {text} as SQL: {detail}"
HINT_SQL_SYNTAX = "a definition expression is one SQL expression over the model's columns"
MSG_STATEMENTS = "{text} is more than one SQL expression; ';' and statements are not allowed"
MSG_STATEMENT = "SQL statements ({keyword}) are not allowed in definition expressions"
MSG_SUBQUERY = "subqueries are not allowed in definition expressions: {text}"
HINT_SUBQUERY = (
    "a definition reads only its own model's columns; reach other tables through entities "
    "(joins) and other metrics through a derived metric's inputs"
)
MSG_SET_OPERATION = "set operations ({keyword}) are not allowed in definition expressions"
MSG_FUNCTION = "function {name} is not allowed in definition expressions"
HINT_DID_YOU_MEAN = "did you mean {suggestion}?"
HINT_FUNCTIONS = "allowed functions: {names}"
MSG_AGGREGATE = "aggregate function {name} is not allowed in definition expressions"
HINT_AGGREGATE = (
    "a measure's agg (sum, count_distinct, …) aggregates its expr, which is computed per row; "
    "write the per-row value, e.g. expr: amount with agg: sum"
)
MSG_WINDOW = "window functions (OVER) are not allowed in definition expressions"
HINT_WINDOW = "use a cumulative metric (type: cumulative) for running totals"
MSG_COLUMN_TABLE = "column {name} reads another table than the model's own"
HINT_COLUMN_TABLE = "write the column unqualified, e.g. {column}"
MSG_DERIVED_COLUMN = "{name} is not an input metric of this derived metric"
HINT_DERIVED_COLUMN = "a derived metric's expr names its inputs (type_params.metrics): {names}"
MSG_CAST_TYPE = "CAST to {type} is not allowed in definition expressions"
HINT_CAST_TYPE = "cast to one of: {types}"
MSG_UNIT = "unknown date part {unit} in {function}"
HINT_UNITS = "choose one of: {units}"
MSG_INTERVAL = "INTERVAL takes a literal, e.g. INTERVAL '7' DAY"
MSG_COMMENT = "SQL comments are not allowed in definition expressions"
HINT_COMMENT = "describe the element in its description instead"
MSG_SYNTAX = "definition expressions cannot contain {what}"
HINT_SYNTAX = (
    "definitions allow columns, literals, arithmetic, comparisons, AND/OR/NOT, IN, BETWEEN, "
    "IS NULL, LIKE, CASE, CAST and a list of scalar functions"
)
MSG_TOO_DEEP = "expression is nested too deeply (more than {limit} levels)"
HINT_TOO_DEEP = "flatten it, e.g. one CASE with several WHEN branches"
HINT_TOO_LONG = "move the logic into the model's SQL (a column of its table) and name that column"
MSG_BAD_CHARACTER = "character {codepoint} ({name}) is not allowed in definition expressions"
HINT_BAD_CHARACTER = "remove it; invisible and control characters usually come from copy and paste"

# The filters' CAST types, as DuckDB (the definitions' dialect) reads them: it parses
# TIMESTAMP and DATETIME as TIMESTAMPNTZ.
DEFINITION_CAST_TYPES: Mapping[Any, str] = {
    **CAST_TYPES,
    exp.DataType.Type.TIMESTAMPNTZ: "TIMESTAMP",
}

# Scalar functions definitions use beyond the filter allow-list (all typed sqlglot nodes,
# rendered per target dialect by the compiler).
_EXTRA_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.ConcatWs: "CONCAT_WS",
    exp.Date: "DATE",
    exp.DateAdd: "DATE_ADD",
    exp.DateDiff: "DATEDIFF",
    exp.Day: "DAY",
    exp.DayOfWeek: "DAYOFWEEK",
    exp.DayOfYear: "DAYOFYEAR",
    exp.Exp: "EXP",
    exp.If: "IF",
    exp.JSONExtract: "->",
    exp.JSONExtractScalar: "->>",
    exp.Left: "LEFT",
    exp.Ln: "LN",
    exp.Log: "LOG",
    exp.Month: "MONTH",
    exp.Pow: "POWER",
    exp.Quarter: "QUARTER",
    exp.Replace: "REPLACE",
    exp.Right: "RIGHT",
    exp.Sign: "SIGN",
    exp.Sqrt: "SQRT",
    exp.StrPosition: "STRPOS",
    exp.TimestampTrunc: "DATE_TRUNC",
    exp.TimeToStr: "STRFTIME",
    exp.TryCast: "TRY_CAST",
    exp.Week: "WEEK",
    exp.Year: "YEAR",
}
FUNCTIONS: Mapping[type[exp.Expr], str] = {**FILTER_FUNCTIONS, **_EXTRA_FUNCTIONS}
ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(sorted(set(FUNCTIONS.values())))
# Operators beyond the filter's: integer division and || concatenation.
_NODES = FILTER_NODES | {exp.IntDiv, exp.DPipe}
_JSON_PATH = (exp.JSONPath, exp.JSONPathRoot, exp.JSONPathKey, exp.JSONPathSubscript)
_UNIT_FUNCTIONS = (exp.DateDiff, exp.DateAdd, exp.DateSub, exp.TimestampTrunc, exp.DateTrunc)
_UNITS = DATE_PARTS | TRUNC_UNITS | INTERVAL_UNITS
_SYNTAX_NAMES: dict[type[exp.Expr], str] = {
    exp.Star: "*",
    exp.Placeholder: "query parameters such as ? or :name",
    exp.Parameter: "parameters such as @name",
    exp.Bracket: "subscripts such as x[1]",
    exp.Alias: "aliases (AS)",
    exp.Table: "tables",
    exp.Lambda: "lambdas",
}
_STATEMENT_TYPES = (
    exp.Alter, exp.Command, exp.Copy, exp.Create, exp.Delete, exp.Drop, exp.Insert,
    exp.Merge, exp.Pragma, exp.Set, exp.Transaction, exp.Update, exp.Use,
)  # fmt: skip


def parse_definition(
    sql: Any,
    *,
    location: str,
    own: str | None = None,
    inputs: Collection[str] | None = None,
) -> exp.Expr:
    """Parses a definition expression and checks it against the allow-list.

    Args:
        sql: the expression as written (numbers such as ``expr: 1`` are accepted).
        location: where it was written, for the error (e.g. ``measures[0].expr``).
        own: the model's own name, the only table qualifier a column may carry.
        inputs: for a derived metric, the names and aliases of its input metrics (the only
            columns it may name); None for a semantic model's element.

    Returns:
        The checked sqlglot tree (a fresh one; the caller may change it).

    Raises:
        QueryError: ``bad_definition``, with a hint.

    Example:
        >>> parse_definition("CASE WHEN status = 'paid' THEN amount END", location="x").sql()
        "CASE WHEN status = 'paid' THEN amount END"
        >>> parse_definition("(SELECT 1)", location="measures[0].expr")
        Traceback (most recent call last):
        tally.errors.QueryError: subqueries are not allowed in definition expressions: (SELECT 1)
    """
    if isinstance(sql, bool) or not isinstance(sql, str | int | float):
        raise _fail(MSG_NOT_TEXT.format(type=type(sql).__name__), None, location)
    text = str(sql)
    if not text.strip():
        raise _fail(MSG_EMPTY, HINT_EMPTY, location)
    if len(text) >= MAX_EXPR_CHARS:
        message = MSG_TOO_LONG.format(length=len(text), limit=MAX_EXPR_CHARS)
        raise _fail(message, HINT_TOO_LONG, location)
    for char in text:
        # Invisible and control characters (zero-width, bidi overrides, NUL), refused as in
        # filters: they can make two names look equal.
        if char not in ALLOWED_CONTROLS and unicodedata.category(char) in BAD_CATEGORIES:
            name = unicodedata.name(char, "control character")
            message = MSG_BAD_CHARACTER.format(codepoint=f"U+{ord(char):04X}", name=name)
            raise _fail(message, HINT_BAD_CHARACTER, location)
    shown = _clip(text)
    try:
        trees = [t for t in sqlglot.parse(text, read=DEFINITION_DIALECT) if t is not None]
    except (ParseError, TokenError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _fail(
            MSG_SQL_SYNTAX.format(text=shown, detail=detail), HINT_SQL_SYNTAX, location
        ) from None
    except RecursionError:
        raise _fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP, location) from None
    if not trees:
        raise _fail(MSG_EMPTY, HINT_EMPTY, location)
    if len(trees) > 1:
        raise _fail(MSG_STATEMENTS.format(text=shown), HINT_SQL_SYNTAX, location)
    _Checker(location, own, None if inputs is None else frozenset(inputs)).check(trees[0])
    return trees[0]


def derived_definition(sql: Any, *, location: str, inputs: Collection[str]) -> exp.Expr:
    """:func:`parse_definition` of a derived metric's ``expr``, checked once per process for
    each (expression, inputs) as model expressions are (definitions are immutable per release);
    the caller gets a private copy it may change."""
    if not isinstance(sql, str):
        return parse_definition(sql, location=location, inputs=inputs)
    return _derived_checked(sql, location, frozenset(inputs)).__deepcopy__(None)


@functools.lru_cache(maxsize=4096)
def _derived_checked(sql: str, location: str, inputs: frozenset[str]) -> exp.Expr:
    tree = parse_definition(sql, location=location, inputs=inputs)
    for node in tree.walk():
        # Token positions serve the check's error spans only; each compile's copy would
        # deep-copy them (a dict per identifier), as definition_sql avoids for the same reason.
        node._meta = None
    return tree


def definition_expressions(kind: str, spec: Mapping[str, Any]) -> Iterator[tuple[list[Any], Any]]:
    """(path in the spec, expression) of every definition expression of one object.

    ``kind`` is ``semantic_model`` or ``metric``; other kinds have none.
    """
    if kind == "semantic_model":
        for group in ("entities", "dimensions", "measures"):
            for index, element in enumerate(spec.get(group) or []):
                expr = element.get("expr") if isinstance(element, Mapping) else None
                # `expr: true` is dbt's spelling of "the column of the element's name".
                if expr is not None and expr is not True:
                    yield [group, index, "expr"], expr
    elif kind == "metric" and spec.get("type") == "derived":
        params = spec.get("type_params") or {}
        if params.get("expr") is not None:
            yield ["type_params", "expr"], params["expr"]


def definition_problems(
    kind: str, spec: Mapping[str, Any]
) -> Iterator[tuple[list[Any], QueryError]]:
    """(path, refusal) for every definition expression of one object that fails the guard.

    Example:
        >>> spec = {"name": "m", "dimensions": [{"name": "d", "expr": "read_text('/etc/x')"}]}
        >>> [(p, e.message) for p, e in definition_problems("semantic_model", spec)]
        [(['dimensions', 0, 'expr'], 'function read_text is not allowed in definition expressions')]
    """
    own = str(spec.get("name") or "") or None
    inputs: list[str] | None = None
    if kind == "metric":
        refs = (spec.get("type_params") or {}).get("metrics") or []
        inputs = []
        for ref in refs:
            if isinstance(ref, Mapping):
                inputs += [str(ref[key]) for key in ("name", "alias") if ref.get(key)]
            elif ref:
                inputs.append(str(ref))
    for path, expr in definition_expressions(kind, spec):
        try:
            parse_definition(
                expr, location=".".join(map(str, path)), own=own if inputs is None else None,
                inputs=inputs,
            )  # fmt: skip
        except QueryError as error:
            yield path, error


def _fail(message: str, hint: str | None, location: str) -> QueryError:
    return QueryError(message, code=ERROR_CODE, hint=hint, location=location)


def _clip(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class _Checker:
    """Walks one tree (outer nodes first) against the allow-list; raises on the first miss."""

    def __init__(self, location: str, own: str | None, inputs: frozenset[str] | None) -> None:
        self.location = location
        self.own = own
        self.inputs = inputs

    def fail(self, message: str, hint: str | None) -> QueryError:
        return _fail(message, hint, self.location)

    def check(self, tree: exp.Expr) -> None:
        stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
        while stack:
            node, depth = stack.pop()
            if depth > MAX_NESTING:
                raise self.fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP)
            if node.comments:
                raise self.fail(MSG_COMMENT, HINT_COMMENT)
            self.check_node(node)
            for child in reversed(list(node.iter_expressions())):
                # As in the filter guard: a left-deep chain of one operator (a + b + c) is generated
                # iteratively, so only a change of operator adds a level.
                chained = type(child) is type(node) and isinstance(node, exp.Binary)
                stack.append((child, depth if chained and child.arg_key == "this" else depth + 1))

    def check_node(self, node: exp.Expr) -> None:
        kind = type(node)
        if isinstance(node, exp.SetOperation):
            raise self.fail(MSG_SET_OPERATION.format(keyword=node.key.upper()), HINT_SUBQUERY)
        if isinstance(node, exp.Query | exp.Subquery | exp.Exists) or (
            kind is exp.In and node.args.get("query") is not None
        ):
            raise self.fail(
                MSG_SUBQUERY.format(text=_clip(node.sql(DEFINITION_DIALECT))), HINT_SUBQUERY
            )
        if isinstance(node, _STATEMENT_TYPES):
            raise self.fail(MSG_STATEMENT.format(keyword=node.key.upper()), HINT_SYNTAX)
        if kind is exp.Window:
            raise self.fail(MSG_WINDOW, HINT_WINDOW)
        if isinstance(node, exp.Column) and kind is exp.Column:
            self.check_column(node)
        elif kind is exp.Identifier:
            if type(node.parent) is not exp.Column:
                raise self.not_allowed(node)
        elif kind in _NODES:
            self.check_operator(node)
        elif kind in FUNCTIONS:
            self.check_function(node)
        elif kind is exp.Interval:
            if type(node.this) is not exp.Literal:
                raise self.fail(MSG_INTERVAL, HINT_SYNTAX)
        elif isinstance(node, exp.Var) and kind is exp.Var:
            self.check_var(node)
        elif kind in (exp.DataType, exp.DataTypeParam):
            if not isinstance(node.parent, exp.Cast | exp.DataType):
                raise self.not_allowed(node)
        elif isinstance(node, _JSON_PATH):
            if not isinstance(node.parent, exp.JSONExtract | exp.JSONExtractScalar | exp.JSONPath):
                raise self.not_allowed(node)
        elif isinstance(node, exp.AggFunc):
            raise self.fail(MSG_AGGREGATE.format(name=node.sql_name()), HINT_AGGREGATE)
        elif isinstance(node, exp.Func):
            raise self.function_not_allowed(node)
        else:
            raise self.not_allowed(node)

    def not_allowed(self, node: exp.Expr) -> QueryError:
        try:
            shown = f"`{_clip(node.sql(DEFINITION_DIALECT))}`"
        except ValueError:
            # Some nodes (JSONPath filters and slices) cannot be rendered back: name the kind.
            shown = type(node).__name__
        what = _SYNTAX_NAMES.get(type(node)) or shown
        return self.fail(MSG_SYNTAX.format(what=what), HINT_SYNTAX)

    def function_not_allowed(self, node: exp.Func) -> QueryError:
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        upper = name.upper()
        suggestion = FUNCTION_ALIASES.get(upper) or next(
            iter(difflib.get_close_matches(upper, ALLOWED_FUNCTIONS, n=1, cutoff=0.75)), None
        )
        hint = (
            HINT_DID_YOU_MEAN.format(suggestion=suggestion)
            if suggestion
            else HINT_FUNCTIONS.format(names=", ".join(ALLOWED_FUNCTIONS))
        )
        return self.fail(MSG_FUNCTION.format(name=name), hint)

    def check_column(self, column: exp.Column) -> None:
        if isinstance(column.this, exp.Star):
            raise self.not_allowed(column.this)
        name = column.sql(DEFINITION_DIALECT)
        qualifier = column.args.get("table")
        if column.args.get("db") or column.args.get("catalog"):
            raise self.fail(
                MSG_COLUMN_TABLE.format(name=name), HINT_COLUMN_TABLE.format(column=column.name)
            )
        if self.inputs is not None:
            # A derived metric computes over its inputs' values: no table at all.
            if qualifier is not None or column.name not in self.inputs:
                names = ", ".join(sorted(self.inputs)) or "(none)"
                raise self.fail(
                    MSG_DERIVED_COLUMN.format(name=name), HINT_DERIVED_COLUMN.format(names=names)
                )
            return
        if qualifier is not None and (self.own is None or qualifier.name != self.own):
            raise self.fail(
                MSG_COLUMN_TABLE.format(name=name), HINT_COLUMN_TABLE.format(column=column.name)
            )

    def check_operator(self, node: exp.Expr) -> None:
        if type(node) is exp.In and (
            not node.expressions
            or node.args.get("unnest") is not None
            or node.args.get("field") is not None
        ):
            raise self.not_allowed(node)
        if type(node) is exp.Is and type(node.expression) not in (exp.Null, exp.Boolean):
            raise self.not_allowed(node)

    def check_function(self, node: exp.Expr) -> None:
        if isinstance(node, exp.Cast):
            to = node.args.get("to")
            params = to.expressions if isinstance(to, exp.DataType) else []
            if (
                not isinstance(to, exp.DataType)
                or to.this not in DEFINITION_CAST_TYPES
                or to.args.get("nested")
                or to.args.get("values")
                or not all(
                    type(p) is exp.DataTypeParam and type(p.this) is exp.Literal for p in params
                )
            ):
                shown = to.sql(DEFINITION_DIALECT) if isinstance(to, exp.Expr) else "?"
                types = ", ".join(sorted(set(DEFINITION_CAST_TYPES.values())))
                raise self.fail(
                    MSG_CAST_TYPE.format(type=shown), HINT_CAST_TYPE.format(types=types)
                )
        elif isinstance(node, _UNIT_FUNCTIONS):
            unit = node.args.get("unit")
            if unit is not None and not (
                type(unit) in (exp.Var, exp.Literal) and unit.name.upper() in _UNITS
            ):
                self.bad_unit(unit, FUNCTIONS.get(type(node), node.sql_name()))

    def check_var(self, node: exp.Var) -> None:
        parent = node.parent
        if type(parent) is exp.Extract and node.arg_key == "this":
            units, function = DATE_PARTS, "EXTRACT"
        elif type(parent) is exp.Interval and node.arg_key == "unit":
            units, function = INTERVAL_UNITS, "INTERVAL"
        elif isinstance(parent, _UNIT_FUNCTIONS) and node.arg_key == "unit":
            units, function = _UNITS, FUNCTIONS.get(type(parent), "?")
        else:
            raise self.not_allowed(node)
        if node.name.upper() not in units:
            self.bad_unit(node, function, units)

    def bad_unit(self, unit: exp.Expr, function: str, units: frozenset[str] = _UNITS) -> None:
        message = MSG_UNIT.format(unit=_clip(unit.sql(DEFINITION_DIALECT)), function=function)
        raise self.fail(message, HINT_UNITS.format(units=", ".join(sorted(units))))
