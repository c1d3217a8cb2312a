"""Where filters: MetricFlow's Jinja query items around a checked SQL condition.

Users write filters as MetricFlow reads them, in queries (``--where``) and in metric
definitions (``filter:``)::

    {{ Dimension('account__plan') }} = 'enterprise'
    AND {{ TimeDimension('metric_time', 'month') }} >= '2026-01-01'

``parse_where`` reads every ``{{ … }}`` call with dbt-semantic-interfaces' own builder
objects and parameter-set factory (so ``user__account__plan`` splits exactly as DSI splits
it), puts a placeholder column in its place, parses the rest with sqlglot's default dialect
and checks the tree against an allow-list of node types. ``substitute`` later swaps the
placeholders for the resolved column expressions. No user text is ever pasted into SQL:
only checked sqlglot nodes reach the generator, which re-quotes every literal for the
target dialect.

The Jinja is parsed (with a ``SandboxedEnvironment``) but never rendered: only constant
arguments of the four builder calls are read from its syntax tree, so no user expression
is ever evaluated and the sandbox is a second wall, not the first.

Every refusal is a ``QueryError`` with code ``bad_where``, a message built from one of the
``MSG_*`` templates (semantic.compiler.where.messages), a hint and a location such as ``where[0]:14-22`` (a 0-based,
end-exclusive character span of the filter text, like a Python slice).

The package, in the order a parse runs: ``reader`` (the whole parse) over ``items`` (the
Jinja query items) and ``guard`` (the SQL checks against ``allow_list``), sharing ``base``
(the parse's state and offsets), ``refs`` (the values produced) and ``messages``. Binding
the items to columns happens in the compiler (semantic.compiler.filters) via ``substitute``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

from sqlglot import exp

from semantic.compiler.where.allow_list import (
    ALLOWED_FUNCTIONS,
    MAX_FILTER_CHARS,
    MAX_NESTING,
    PLACEHOLDER_PREFIX,
)

# The message templates are part of the filter stage's interface: tests snapshot them.
from semantic.compiler.where.messages import (
    DETAIL_INCOMPLETE,
    DETAIL_MISSING_PAREN,
    DETAIL_UNEXPECTED,
    DETAIL_UNTOKENIZABLE,
    ERROR_CODE,
    EXAMPLE_DIMENSION,
    EXAMPLE_FILTER,
    HINT_ALLOWED_FUNCTIONS,
    HINT_BAD_CHARACTER,
    HINT_BAD_ITEM,
    HINT_BAD_NAME,
    HINT_BARE_COLUMN,
    HINT_CAST_TYPE,
    HINT_CHOICES,
    HINT_CONFUSABLE_QUOTE,
    HINT_DID_YOU_MEAN,
    HINT_EMPTY,
    HINT_IN_LITERALS,
    HINT_INTERVAL,
    HINT_JINJA_DESCENDING,
    HINT_JINJA_ITEMS,
    HINT_JINJA_METHOD,
    HINT_JINJA_UNCLOSED,
    HINT_NOT_CONDITION,
    HINT_REF_ADJACENT,
    HINT_REF_IN_STRING,
    HINT_SQL_COMMENT,
    HINT_SQL_SYNTAX,
    HINT_SUBQUERY,
    HINT_SYNTAX_NOT_ALLOWED,
    HINT_TOO_DEEP,
    HINT_TOO_LONG,
    HINT_USAGE,
    MSG_BAD_CHARACTER,
    MSG_BAD_ITEM,
    MSG_BAD_NAME,
    MSG_BARE_COLUMN,
    MSG_CAST_TYPE,
    MSG_CONFUSABLE_QUOTE,
    MSG_EMPTY,
    MSG_IN_LITERALS,
    MSG_INTERVAL,
    MSG_JINJA_ARGUMENT_VALUE,
    MSG_JINJA_ARGUMENTS,
    MSG_JINJA_ATTRIBUTE,
    MSG_JINJA_COMMENT,
    MSG_JINJA_DESCENDING,
    MSG_JINJA_LIST_EXPECTED,
    MSG_JINJA_METHOD,
    MSG_JINJA_MISMATCH,
    MSG_JINJA_NAME_EXPECTED,
    MSG_JINJA_NOT_CALL,
    MSG_JINJA_STATEMENT,
    MSG_JINJA_SYNTAX,
    MSG_JINJA_UNCLOSED,
    MSG_NOT_ALLOWED,
    MSG_NOT_CONDITION,
    MSG_NOT_TEXT,
    MSG_REF_ADJACENT,
    MSG_REF_IN_STRING,
    MSG_SET_OPERATION,
    MSG_SQL_COMMENT,
    MSG_SQL_SYNTAX,
    MSG_STACKED_STATEMENTS,
    MSG_STATEMENT,
    MSG_SUBQUERY,
    MSG_SYNTAX_NOT_ALLOWED,
    MSG_TOO_DEEP,
    MSG_TOO_LONG,
    MSG_UNIT,
    MSG_UNKNOWN_DATE_PART,
    MSG_UNKNOWN_GRAIN,
    MSG_UNKNOWN_JINJA_FUNCTION,
    USAGE,
)
from semantic.compiler.where.reader import Reader
from semantic.compiler.where.refs import ParsedWhere, QueryItemRef
from tally.errors import CompileError


def parse_where(
    template: str,
    *,
    location: str = "where[0]",
    custom_granularity_names: Sequence[str] = (),
) -> ParsedWhere:
    """Parses a MetricFlow-style filter into query items and a checked sqlglot condition.

    Args:
        template: The filter as the user wrote it.
        location: Where the filter came from, for error locations (``where[0]``,
            ``filter[1]``); a character span is appended when one is known.
        custom_granularity_names: Custom time grains of the manifest, which DSI recognises
            as name suffixes and ``.grain()`` values besides the standard ones.

    Returns:
        The filter's items, in order of first appearance (equal items share one
        placeholder), and its condition with every item as ``exp.Column(placeholder)``.

    Raises:
        QueryError: code ``bad_where`` for anything outside the allowed Jinja and SQL.

    Example:
        >>> parsed = parse_where("{{ Dimension('user__account__plan') }} = 'pro'")
        >>> parsed.expression.sql()
        "__tally_ref_0 = 'pro'"
        >>> ref = parsed.refs[0]
        >>> (ref.kind, ref.name, ref.entity_path, ref.placeholder)
        ('dimension', 'plan', ('user', 'account'), '__tally_ref_0')
    """
    if not isinstance(template, str):
        return Reader(template, location, tuple(custom_granularity_names)).read()
    # Definition filters are read on every compile that uses their metric, and a query's
    # where by several stages (filters, time_spine_fill): each (text, location, grains) is
    # parsed once per process. The result is shared, so nobody may mutate its tree:
    # ``substitute`` copies it. A refusal raises and is not cached.
    return _parse_cached(template, location, tuple(custom_granularity_names))


@functools.lru_cache(maxsize=4096)
def _parse_cached(template: str, location: str, custom_grains: tuple[str, ...]) -> ParsedWhere:
    parsed = Reader(template, location, custom_grains).read()
    for node in parsed.expression.walk():
        # Token positions serve the parse's error spans only; copying them (a dict per
        # identifier and literal) would be most of the cost of each ``substitute``.
        node._meta = None
    return parsed


def substitute(parsed: ParsedWhere, columns: Mapping[str, exp.Expr]) -> exp.Expr:
    """Replaces each placeholder of a parsed filter with its SQL expression.

    Args:
        parsed: The result of ``parse_where``; it is left untouched.
        columns: Placeholder → expression; each expression is copied at every use and
            parenthesised when it is not atomic, so operator precedence cannot change.

    Returns:
        A new condition tree, ready to transpile to any dialect.

    Raises:
        CompileError: a placeholder has no expression (a compiler bug, not user input).

    Example:
        >>> parsed = parse_where("{{ Entity('account') }} = 123")
        >>> substitute(parsed, {"__tally_ref_0": exp.column("id", table="a")}).sql("duckdb")
        'a.id = 123'
    """
    missing = [ref.text for ref in parsed.refs if ref.placeholder not in columns]
    if missing:
        raise CompileError(f"no SQL expression for filter items: {', '.join(missing)}")
    names = {ref.placeholder for ref in parsed.refs}

    def replace(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name in names and not node.table:
            value = columns[node.name].copy()
            return value if isinstance(value, ATOMIC) else exp.Paren(this=value)
        return node

    return parsed.expression.copy().transform(replace, copy=False)


ATOMIC = (exp.Column, exp.Literal, exp.Func, exp.Paren, exp.Boolean, exp.Null, exp.Identifier)


__all__ = [
    "ALLOWED_FUNCTIONS",
    "DETAIL_INCOMPLETE",
    "DETAIL_MISSING_PAREN",
    "DETAIL_UNEXPECTED",
    "DETAIL_UNTOKENIZABLE",
    "ERROR_CODE",
    "EXAMPLE_DIMENSION",
    "EXAMPLE_FILTER",
    "HINT_ALLOWED_FUNCTIONS",
    "HINT_BAD_CHARACTER",
    "HINT_BAD_ITEM",
    "HINT_BAD_NAME",
    "HINT_BARE_COLUMN",
    "HINT_CAST_TYPE",
    "HINT_CHOICES",
    "HINT_CONFUSABLE_QUOTE",
    "HINT_DID_YOU_MEAN",
    "HINT_EMPTY",
    "HINT_INTERVAL",
    "HINT_IN_LITERALS",
    "HINT_JINJA_DESCENDING",
    "HINT_JINJA_ITEMS",
    "HINT_JINJA_METHOD",
    "HINT_JINJA_UNCLOSED",
    "HINT_NOT_CONDITION",
    "HINT_REF_ADJACENT",
    "HINT_REF_IN_STRING",
    "HINT_SQL_COMMENT",
    "HINT_SQL_SYNTAX",
    "HINT_SUBQUERY",
    "HINT_SYNTAX_NOT_ALLOWED",
    "HINT_TOO_DEEP",
    "HINT_TOO_LONG",
    "HINT_USAGE",
    "MAX_FILTER_CHARS",
    "MAX_NESTING",
    "MSG_BAD_CHARACTER",
    "MSG_BAD_ITEM",
    "MSG_BAD_NAME",
    "MSG_BARE_COLUMN",
    "MSG_CAST_TYPE",
    "MSG_CONFUSABLE_QUOTE",
    "MSG_EMPTY",
    "MSG_INTERVAL",
    "MSG_IN_LITERALS",
    "MSG_JINJA_ARGUMENTS",
    "MSG_JINJA_ARGUMENT_VALUE",
    "MSG_JINJA_ATTRIBUTE",
    "MSG_JINJA_COMMENT",
    "MSG_JINJA_DESCENDING",
    "MSG_JINJA_LIST_EXPECTED",
    "MSG_JINJA_METHOD",
    "MSG_JINJA_MISMATCH",
    "MSG_JINJA_NAME_EXPECTED",
    "MSG_JINJA_NOT_CALL",
    "MSG_JINJA_STATEMENT",
    "MSG_JINJA_SYNTAX",
    "MSG_JINJA_UNCLOSED",
    "MSG_NOT_ALLOWED",
    "MSG_NOT_CONDITION",
    "MSG_NOT_TEXT",
    "MSG_REF_ADJACENT",
    "MSG_REF_IN_STRING",
    "MSG_SET_OPERATION",
    "MSG_SQL_COMMENT",
    "MSG_SQL_SYNTAX",
    "MSG_STACKED_STATEMENTS",
    "MSG_STATEMENT",
    "MSG_SUBQUERY",
    "MSG_SYNTAX_NOT_ALLOWED",
    "MSG_TOO_DEEP",
    "MSG_TOO_LONG",
    "MSG_UNIT",
    "MSG_UNKNOWN_DATE_PART",
    "MSG_UNKNOWN_GRAIN",
    "MSG_UNKNOWN_JINJA_FUNCTION",
    "PLACEHOLDER_PREFIX",
    "USAGE",
    "ParsedWhere",
    "QueryItemRef",
    "parse_where",
    "substitute",
]
