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
``MSG_*`` templates below, a hint and a location such as ``where[0]:14-22`` (a 0-based,
end-exclusive character span of the filter text, like a Python slice).
"""

from __future__ import annotations

import difflib
import inspect
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dbt_semantic_interfaces.call_parameter_sets import (
    DimensionCallParameterSet,
    EntityCallParameterSet,
    MetricCallParameterSet,
    TimeDimensionCallParameterSet,
)
from dbt_semantic_interfaces.naming.dundered import StructuredDunderedName
from dbt_semantic_interfaces.naming.keywords import DUNDER
from dbt_semantic_interfaces.parsing.text_input.rendering_helper import (
    ObjectBuilderJinjaRenderHelper,
)
from dbt_semantic_interfaces.parsing.text_input.ti_description import (
    ObjectBuilderItemDescription,
    QueryItemType,
)
from dbt_semantic_interfaces.parsing.text_input.ti_processor import (
    ObjectBuilderItemDescriptionProcessor,
)
from dbt_semantic_interfaces.parsing.text_input.valid_method import (
    ConfiguredValidMethodMapping,
)
from dbt_semantic_interfaces.parsing.where_filter.parameter_set_factory import (
    ParameterSetFactory,
    QueryItemLocation,
)
from dbt_semantic_interfaces.type_enums.date_part import DatePart
from dbt_semantic_interfaces.type_enums.time_granularity import TimeGranularity
from dbt_semantic_interfaces.validations.unique_valid_name import UniqueAndValidNameRule
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from tally.errors import CompileError, QueryError

ERROR_CODE = "bad_where"
MAX_FILTER_CHARS = 10_000
# sqlglot's parser and generators recurse once per nesting level (several frames each); 20
# levels leave room below Python's recursion limit for the query the compiler wraps around
# the filter, in every dialect. Chains such as `a OR b OR c …` do not count (see _check_tree).
MAX_NESTING = 20
PLACEHOLDER_PREFIX = "__tally_ref_"

EXAMPLE_DIMENSION = "{{ Dimension('account__plan') }}"
EXAMPLE_FILTER = "{{ Dimension('account__plan') }} = 'enterprise'"

# Message and hint templates (imported by the tests, which snapshot the rendered texts).
MSG_NOT_TEXT = "a filter must be text, not {type}"
MSG_EMPTY = "empty filter"
HINT_EMPTY = "write a condition such as {example}, or leave the filter out"
MSG_TOO_LONG = "filter is {length:,} characters long; filters must be shorter than {limit:,}"
HINT_TOO_LONG = "split it into several filters (they are combined with AND)"
MSG_BAD_CHARACTER = "character {codepoint} ({name}) is not allowed in filters"
HINT_BAD_CHARACTER = "remove it; invisible and control characters usually come from copy and paste"
MSG_CONFUSABLE_QUOTE = "{char} ({name}) is not a SQL quote"
HINT_CONFUSABLE_QUOTE = "write strings in ASCII single quotes, e.g. {example}"
MSG_JINJA_STATEMENT = "Jinja statements ({% … %}) are not allowed in filters"
MSG_JINJA_COMMENT = "Jinja comments ({# … #}) are not allowed in filters"
HINT_JINJA_ITEMS = (
    "use only {{ Dimension('…') }}, {{ TimeDimension('…') }}, {{ Entity('…') }} "
    "and {{ Metric('…', group_by=['…']) }} between double braces"
)
MSG_JINJA_UNCLOSED = "'{{' is not closed by '}}'"
HINT_JINJA_UNCLOSED = "close the item with '}}', e.g. {{ Dimension('account__plan') }}"
MSG_JINJA_SYNTAX = "invalid Jinja in {text}: {detail}"
MSG_JINJA_MISMATCH = "the {{ … }} items of the filter could not be read consistently"
MSG_JINJA_NOT_CALL = "{text} is not a query item"
MSG_UNKNOWN_JINJA_FUNCTION = "unknown function {name}() in {text}"
MSG_JINJA_ATTRIBUTE = "attribute {name} is not allowed in {text}"
MSG_JINJA_METHOD = "method .{name}() is not allowed in {text}"
HINT_JINJA_METHOD = (
    "only Dimension(…).grain('month') and Dimension(…).date_part('year') can follow an item"
)
MSG_JINJA_DESCENDING = "descending is not allowed in filters: {text}"
HINT_JINJA_DESCENDING = "sort with order_by (e.g. --order-by -metric_time) instead"
MSG_JINJA_ARGUMENT_VALUE = "arguments of {function}() must be quoted names or lists of quoted names"
MSG_JINJA_ARGUMENTS = "wrong arguments to {function}(): {detail}"
MSG_JINJA_LIST_EXPECTED = "{param} of {function}() must be a list of names, e.g. {param}=['user']"
MSG_JINJA_NAME_EXPECTED = "{param} of {function}() must be a quoted name, not a list"
HINT_USAGE = "usage: {usage}"
MSG_BAD_NAME = "{name!r} is not a valid name in {text}"
HINT_BAD_NAME = (
    "names are lowercase letters, digits and single underscores; '__' joins the entity "
    "path to the name, as in 'account__plan'"
)
MSG_UNKNOWN_GRAIN = "unknown time grain {grain!r} in {text}"
MSG_UNKNOWN_DATE_PART = "unknown date part {date_part!r} in {text}"
HINT_CHOICES = "choose one of: {choices}"
MSG_BAD_ITEM = "{text} is not a valid query item: {detail}"
HINT_BAD_ITEM = "e.g. {example}"
MSG_SQL_SYNTAX = "could not parse the filter as SQL: {detail}"
DETAIL_UNEXPECTED = "unexpected {text}"
DETAIL_INCOMPLETE = "incomplete expression at {text}"
DETAIL_MISSING_PAREN = "missing ')'"
DETAIL_UNTOKENIZABLE = "a quote or a comment is not closed"
HINT_SQL_SYNTAX = "a filter is one SQL condition, e.g. {example}"
MSG_STACKED_STATEMENTS = (
    "a filter is a single condition; ';' and further statements are not allowed"
)
MSG_STATEMENT = "SQL statements ({keyword}) are not allowed in filters"
MSG_SQL_COMMENT = "SQL comments are not allowed in filters"
HINT_SQL_COMMENT = "remove the comment; describe the filter in the metric's description instead"
MSG_SUBQUERY = "subqueries are not allowed in filters"
HINT_SUBQUERY = "filter on a dimension, or on another metric with {{ Metric('…', group_by=['…']) }}"
MSG_SET_OPERATION = "set operations ({keyword}) are not allowed in filters"
MSG_BARE_COLUMN = "column {name} is not allowed in filters"
HINT_BARE_COLUMN = "refer to data through the semantic layer, e.g. {suggestion}"
MSG_REF_IN_STRING = "{text} is inside a quoted string"
HINT_REF_IN_STRING = "remove the quotes around it; compare it with a string instead, e.g. {example}"
MSG_REF_ADJACENT = "{text} runs into the text next to it"
HINT_REF_ADJACENT = "put a space or an operator between the item and its neighbours"
MSG_NOT_ALLOWED = "function {name} is not allowed in filters"
HINT_DID_YOU_MEAN = "did you mean {suggestion}?"
HINT_ALLOWED_FUNCTIONS = "allowed functions: {names}"
MSG_SYNTAX_NOT_ALLOWED = "filters cannot contain {what}"
HINT_SYNTAX_NOT_ALLOWED = (
    "filters allow comparisons, AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE, arithmetic, CASE, "
    "CAST and a few functions"
)
MSG_CAST_TYPE = "CAST to {type} is not allowed in filters"
HINT_CAST_TYPE = "cast to one of: {types}"
MSG_IN_LITERALS = "IN takes a list of literal values"
HINT_IN_LITERALS = "e.g. {{ Dimension('account__plan') }} IN ('pro', 'enterprise')"
MSG_INTERVAL = "INTERVAL takes a literal, e.g. INTERVAL '7' DAY"
HINT_INTERVAL = "e.g. {{ TimeDimension('metric_time', 'day') }} >= CURRENT_DATE - INTERVAL '7' DAY"
MSG_UNIT = "unknown date part {unit} in {function}"
MSG_NOT_CONDITION = "the filter is {what}, not a condition"
HINT_NOT_CONDITION = "compare it with something, e.g. {example}"
MSG_TOO_DEEP = "filter is nested too deeply (more than {limit} levels)"
HINT_TOO_DEEP = "flatten it: chain conditions with AND/OR, or list values with IN (…)"

# The four builder calls of MetricFlow's object-builder syntax and how to write them.
USAGE: dict[str, str] = {
    "Dimension": "Dimension('entity__dimension', entity_path=['entity']), "
    "optionally followed by .grain('month') or .date_part('year')",
    "TimeDimension": "TimeDimension('entity__time_dimension', 'month', entity_path=['entity'], "
    "date_part_name='year')",
    "Entity": "Entity('entity', entity_path=['entity'])",
    "Metric": "Metric('metric', group_by=['entity'])",
}
_LIST_PARAMS = frozenset({"entity_path", "group_by"})
# MetricFlow spells the grain `time_granularity_name`; `grain=` is the name users reach for
# (and the one the docs of `.grain()` suggest), so Tally accepts it as an alias.
_KWARG_ALIASES: dict[str, dict[str, str]] = {"TimeDimension": {"grain": "time_granularity_name"}}
_METHODS = frozenset({"grain", "date_part"})

_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Abs: "ABS",
    exp.Case: "CASE",
    exp.Cast: "CAST",
    exp.Ceil: "CEIL",
    exp.Coalesce: "COALESCE",
    exp.Concat: "CONCAT",
    exp.CurrentDate: "CURRENT_DATE",
    exp.CurrentTimestamp: "CURRENT_TIMESTAMP",
    exp.DateTrunc: "DATE_TRUNC",
    exp.Extract: "EXTRACT",
    exp.Floor: "FLOOR",
    exp.Greatest: "GREATEST",
    exp.Least: "LEAST",
    exp.Length: "LENGTH",
    exp.Lower: "LOWER",
    exp.Nullif: "NULLIF",
    exp.Round: "ROUND",
    exp.Substring: "SUBSTRING",
    exp.Trim: "TRIM",
    exp.Upper: "UPPER",
}
ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(sorted(_FUNCTIONS.values()))
# Spellings from other warehouses that string similarity would not find.
_FUNCTION_ALIASES = {
    "NOW": "CURRENT_TIMESTAMP",
    "GETDATE": "CURRENT_TIMESTAMP",
    "SYSDATE": "CURRENT_TIMESTAMP",
    "TODAY": "CURRENT_DATE",
    "CURDATE": "CURRENT_DATE",
    "LCASE": "LOWER",
    "UCASE": "UPPER",
}
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_PREDICATES = (
    *_COMPARISONS,
    exp.And,
    exp.Or,
    exp.Not,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Like,
    exp.ILike,
)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg)
_OPERATORS = frozenset((*_PREDICATES, *_ARITHMETIC, exp.Paren))
_LITERALS = frozenset((exp.Literal, exp.Boolean, exp.Null))
# Roots that can be a condition; a lone item may be a boolean dimension (`is_active`).
_CONDITION_ROOTS = frozenset((*_PREDICATES, exp.Boolean, exp.Column, exp.Case, exp.Coalesce))

_T = exp.DataType.Type
_CAST_TYPES: dict[Any, str] = {
    _T.BOOLEAN: "BOOLEAN",
    _T.TINYINT: "TINYINT",
    _T.SMALLINT: "SMALLINT",
    _T.INT: "INT",
    _T.BIGINT: "BIGINT",
    _T.DECIMAL: "DECIMAL",
    _T.FLOAT: "FLOAT",
    _T.DOUBLE: "DOUBLE",
    _T.CHAR: "CHAR",
    _T.VARCHAR: "VARCHAR",
    _T.TEXT: "TEXT",
    _T.DATE: "DATE",
    _T.TIME: "TIME",
    _T.DATETIME: "DATETIME",
    _T.TIMESTAMP: "TIMESTAMP",
    _T.TIMESTAMPTZ: "TIMESTAMPTZ",
}
_DATE_LITERAL_TYPES = frozenset((_T.DATE, _T.DATETIME, _T.TIMESTAMP, _T.TIMESTAMPTZ))
# fmt: off
_DATE_PARTS = frozenset((
    "YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "DOW", "DAYOFWEEK", "DOY", "DAYOFYEAR",
    "HOUR", "MINUTE", "SECOND", "MILLISECOND", "MICROSECOND", "EPOCH",
))
_TRUNC_UNITS = frozenset(("YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND"))
_INTERVAL_UNITS = frozenset(
    unit + plural
    for unit in (
        "YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND",
        "MILLISECOND", "MICROSECOND",
    )
    for plural in ("", "S")
)
_SET_OPERATIONS = frozenset((TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT))
# Keywords that only start statements. Some double as function names (TRUNCATE(x, 2)), so a
# keyword directly followed by '(' is left for the tree check, which names the function.
_STATEMENTS = frozenset(
    getattr(TokenType, name)
    for name in (
        "ALTER", "ATTACH", "BEGIN", "COMMAND", "COMMIT", "COPY", "CREATE", "DELETE",
        "DESCRIBE", "DETACH", "DROP", "EXECUTE", "GRANT", "INSERT", "INTO", "LOAD", "MERGE",
        "PRAGMA", "ROLLBACK", "SET", "SHOW", "TRUNCATE", "UPDATE", "USE", "VALUES",
    )
    if hasattr(TokenType, name)
)
# fmt: on
_STRING_TOKENS = frozenset(
    getattr(TokenType, name)
    for name in ("STRING", "NATIONAL_STRING", "RAW_STRING", "HEREDOC_STRING", "IDENTIFIER")
    if hasattr(TokenType, name)
)
# Look-alikes that word processors and chat tools substitute for ASCII quotes.
_CONFUSABLE_QUOTES = frozenset("‘’‚‛“”„‟′″‵‶＇＂`´")
# Control, format (zero-width, bidi overrides) and lone surrogate characters: invisible,
# able to make two names look equal, and unencodable for some drivers.
_BAD_CATEGORIES = frozenset(("Cc", "Cf", "Cs"))
_ALLOWED_CONTROLS = frozenset("\t\n\r")

_DIALECT = Dialect.get_or_raise(None)
_JINJA = SandboxedEnvironment(undefined=StrictUndefined)
_NAME_RE = UniqueAndValidNameRule.NAME_REGEX
_CLASS_RE = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")


@dataclass(frozen=True)
class QueryItemRef:
    """One ``{{ … }}`` call of a filter, as DSI reads it.

    ``kind`` is ``dimension``, ``time_dimension`` (also ``Dimension(…)`` with a grain or a
    date part), ``entity`` or ``metric``; ``entity_path`` is the full join path, e.g.
    ``("user", "account")`` for ``Dimension('user__account__plan')``.
    """

    kind: str
    name: str
    entity_path: tuple[str, ...]
    grain: str | None
    date_part: str | None
    group_by: tuple[str, ...]
    text: str
    placeholder: str


@dataclass(frozen=True)
class ParsedWhere:
    """A checked filter: a boolean sqlglot tree whose only columns are placeholders."""

    template: str
    expression: exp.Expr
    refs: tuple[QueryItemRef, ...]


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
    return _Reader(template, location, tuple(custom_granularity_names)).read()


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
            return value if isinstance(value, _ATOMIC) else exp.Paren(this=value)
        return node

    return parsed.expression.copy().transform(replace, copy=False)


_ATOMIC = (exp.Column, exp.Literal, exp.Func, exp.Paren, exp.Boolean, exp.Null, exp.Identifier)


# ─── internals ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class _Block:
    """A ``{{ … }}`` block: template offsets (end-exclusive) and its text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Segment:
    """A stretch of the SQL text and the template stretch it came from (end-exclusive)."""

    sql_start: int
    sql_end: int
    start: int
    end: int
    placeholder: str | None


class _Collector(ObjectBuilderItemDescriptionProcessor):
    """Receives the description DSI's builder object produces once all methods ran."""

    def __init__(self) -> None:
        self.descriptions: list[ObjectBuilderItemDescription] = []

    def process_description(self, item_description: ObjectBuilderItemDescription) -> str:
        self.descriptions.append(item_description)
        return ""


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _suggest(name: str, choices: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.7)
    return match[0] if match else None


class _Reader:
    """One parse: the template, where it came from, and the SQL ↔ template offset map."""

    def __init__(self, template: str, location: str, custom_grains: tuple[str, ...]) -> None:
        self.template = template
        self.location = location
        self.custom_grains = custom_grains
        self.segments: list[_Segment] = []
        self.placeholder_starts: dict[int, str] = {}
        self.tokens: list[Token] = []
        self.token_index: dict[int, int] = {}

    # errors

    def fail(
        self, message: str, hint: str | None = None, span: tuple[int, int] | None = None
    ) -> QueryError:
        if span is None:
            return QueryError(message, code=ERROR_CODE, hint=hint, location=self.location)
        return QueryError(
            message,
            code=ERROR_CODE,
            hint=hint,
            location=f"{self.location}:{span[0]}-{span[1]}",
            details={"start": span[0], "end": span[1]},
        )

    def fail_sql(
        self, message: str, hint: str | None, sql_span: tuple[int, int] | None
    ) -> QueryError:
        return self.fail(message, hint, self.to_template(sql_span) if sql_span else None)

    # pipeline

    def read(self) -> ParsedWhere:
        self.check_text()
        blocks = self.split()
        refs: list[QueryItemRef] = []
        block_placeholders: list[str] = []
        exprs: list[nodes.Expr] = []
        for block in blocks:
            expr, ref = self.read_item(block, len(refs))
            exprs.append(expr)
            same = next((r for r in refs if _key(r) == _key(ref)), None)
            if same is None:
                refs.append(ref)
                same = ref
            block_placeholders.append(same.placeholder)
        self.cross_check(exprs)
        sql = self.build_sql(blocks, block_placeholders)
        tokens = self.tokenize(sql)
        self.tokens = tokens
        self.token_index = {token.start: index for index, token in enumerate(tokens)}
        self.check_tokens(sql, tokens)
        tree = self.parse(sql, tokens)
        self.check_tree(tree, {ref.placeholder for ref in refs})
        return ParsedWhere(template=self.template, expression=tree, refs=tuple(refs))

    def check_text(self) -> None:
        template = self.template
        if not isinstance(template, str):
            message = MSG_NOT_TEXT.format(type=type(template).__name__)
            raise self.fail(message, HINT_EMPTY.format(example=EXAMPLE_FILTER))
        if not template.strip():
            raise self.fail(MSG_EMPTY, HINT_EMPTY.format(example=EXAMPLE_FILTER))
        if len(template) >= MAX_FILTER_CHARS:
            raise self.fail(
                MSG_TOO_LONG.format(length=len(template), limit=MAX_FILTER_CHARS), HINT_TOO_LONG
            )
        for index, char in enumerate(template):
            if char in _ALLOWED_CONTROLS or unicodedata.category(char) not in _BAD_CATEGORIES:
                continue
            codepoint = f"U+{ord(char):04X}"
            name = unicodedata.name(char, "control character")
            raise self.fail(
                MSG_BAD_CHARACTER.format(codepoint=codepoint, name=name),
                HINT_BAD_CHARACTER,
                (index, index + 1),
            )

    def split(self) -> list[_Block]:
        """Finds the ``{{ … }}`` blocks the way Jinja's lexer does, keeping offsets.

        Jinja's lexer reports only line numbers, so the scan is ours; ``cross_check`` then
        makes sure Jinja sees the very same expressions in the whole template.
        """
        template, index = self.template, 0
        blocks: list[_Block] = []
        while True:
            found = [(template.find(d, index), d) for d in ("{{", "{%", "{#")]
            found = [(at, d) for at, d in found if at >= 0]
            if not found:
                return blocks
            start, delimiter = min(found)
            if delimiter != "{{":
                closer = "%}" if delimiter == "{%" else "#}"
                end = template.find(closer, start + 2)
                end = len(template) if end < 0 else end + 2
                message = MSG_JINJA_STATEMENT if delimiter == "{%" else MSG_JINJA_COMMENT
                raise self.fail(message, HINT_JINJA_ITEMS, (start, end))
            position, quote = start + 2, ""
            while position < len(template):
                char = template[position]
                if quote:
                    if char == "\\":
                        position += 1
                    elif char == quote:
                        quote = ""
                elif char in "'\"":
                    quote = char
                elif template.startswith("}}", position):
                    break
                position += 1
            else:
                raise self.fail(MSG_JINJA_UNCLOSED, HINT_JINJA_UNCLOSED, (start, len(template)))
            blocks.append(_Block(start, position + 2, template[start : position + 2]))
            index = position + 2

    def cross_check(self, exprs: list[nodes.Expr]) -> None:
        # MetricFlow hands the whole filter to Jinja; if Jinja found other expressions than
        # our block scan did, the filter would mean different things to Tally and MetricFlow.
        try:
            tree = _JINJA.parse(self.template)
        except TemplateSyntaxError as error:
            detail = error.message or "syntax error"
            raise self.fail(
                MSG_JINJA_SYNTAX.format(text=_clip(self.template), detail=detail), HINT_JINJA_ITEMS
            ) from None
        except RecursionError:
            raise self.fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP) from None
        found: list[nodes.Node] = []
        for output in tree.body:
            if not isinstance(output, nodes.Output):
                raise self.fail(MSG_JINJA_MISMATCH, HINT_JINJA_ITEMS)
            found.extend(n for n in output.nodes if not isinstance(n, nodes.TemplateData))
        if found != exprs:
            raise self.fail(MSG_JINJA_MISMATCH, HINT_JINJA_ITEMS)

    # Jinja items

    def read_item(self, block: _Block, index: int) -> tuple[nodes.Expr, QueryItemRef]:
        span, text = (block.start, block.end), _clip(block.text)
        try:
            body = _JINJA.parse(block.text).body
        except TemplateSyntaxError as error:
            detail = error.message or "syntax error"
            raise self.fail(
                MSG_JINJA_SYNTAX.format(text=text, detail=detail), HINT_JINJA_ITEMS, span
            ) from None
        except RecursionError:
            raise self.fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP, span) from None
        if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
            raise self.fail(MSG_JINJA_NOT_CALL.format(text=text), HINT_JINJA_ITEMS, span)
        expr = body[0].nodes[0]
        function, call, methods = self.unchain(expr, text, span)
        description = self.describe(function, call, methods, text, span)
        ref = self.to_ref(description, block.text, f"{PLACEHOLDER_PREFIX}{index}", text, span)
        return expr, ref

    def unchain(
        self, expr: nodes.Expr, text: str, span: tuple[int, int]
    ) -> tuple[str, nodes.Call, list[nodes.Call]]:
        """Splits ``Dimension(…).grain(…)`` into the builder call and its method calls."""
        methods: list[nodes.Call] = []
        # None: a Filter's node, which Jinja leaves empty inside a {% filter %} block.
        node: nodes.Node | None = expr
        while isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            methods.append(node)
            node = node.node.node
        if not (isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name)):
            attributes: list[str] = []
            while isinstance(node, nodes.Getattr | nodes.Getitem | nodes.Call | nodes.Filter):
                if isinstance(node, nodes.Getattr):
                    attributes.append(node.attr)
                node = node.node
            # Name the offending attribute nearest the base (`.grain` alone is merely misused).
            unusual = [name for name in attributes if name not in _METHODS]
            named = unusual or attributes
            attribute = named[-1] if named else None
            if attribute is not None:
                message = MSG_JINJA_ATTRIBUTE.format(name=attribute, text=text)
                raise self.fail(message, HINT_JINJA_METHOD, span)
            raise self.fail(MSG_JINJA_NOT_CALL.format(text=text), HINT_JINJA_ITEMS, span)
        function = node.node.name
        if function not in USAGE:
            suggestion = _suggest(function.lower(), [name.lower() for name in USAGE])
            hint = HINT_JINJA_ITEMS
            if suggestion is not None:
                proper = next(name for name in USAGE if name.lower() == suggestion)
                hint = HINT_DID_YOU_MEAN.format(suggestion=f"{proper}()")
            raise self.fail(MSG_UNKNOWN_JINJA_FUNCTION.format(name=function, text=text), hint, span)
        methods.reverse()
        for method in methods:
            assert isinstance(method.node, nodes.Getattr)
            name = method.node.attr
            if name == "descending":
                raise self.fail(MSG_JINJA_DESCENDING.format(text=text), HINT_JINJA_DESCENDING, span)
            # DSI's own table of builder methods per item type (filters, not order-by).
            valid = ConfiguredValidMethodMapping.DEFAULT_MAPPING[QueryItemType(function)]
            if name not in _METHODS or name not in {allowed.value for allowed in valid}:
                raise self.fail(
                    MSG_JINJA_METHOD.format(name=name, text=text), HINT_JINJA_METHOD, span
                )
        return function, node, methods

    def arguments(
        self, call: nodes.Call, function: str, text: str, span: tuple[int, int]
    ) -> tuple[list[str | tuple[str, ...]], dict[str, str | tuple[str, ...]]]:
        """The call's arguments as Python values; only string constants and their lists."""
        usage = HINT_USAGE.format(usage=USAGE[function.split("(")[0]])
        if call.dyn_args is not None or call.dyn_kwargs is not None:
            raise self.fail(MSG_JINJA_ARGUMENT_VALUE.format(function=function), usage, span)

        def value(node: nodes.Expr) -> str | tuple[str, ...]:
            if isinstance(node, nodes.Const) and isinstance(node.value, str):
                return node.value.lower()
            if isinstance(node, nodes.List | nodes.Tuple) and all(
                isinstance(item, nodes.Const) and isinstance(item.value, str) for item in node.items
            ):
                return tuple(item.value.lower() for item in node.items)  # type: ignore[attr-defined]
            raise self.fail(MSG_JINJA_ARGUMENT_VALUE.format(function=function), usage, span)

        args = [value(arg) for arg in call.args]
        kwargs: dict[str, str | tuple[str, ...]] = {}
        for keyword in call.kwargs:
            if keyword.key == "descending":
                raise self.fail(MSG_JINJA_DESCENDING.format(text=text), HINT_JINJA_DESCENDING, span)
            key = _KWARG_ALIASES.get(function, {}).get(keyword.key, keyword.key)
            if key in kwargs:
                detail = f"multiple values for argument {key!r}"
                message = MSG_JINJA_ARGUMENTS.format(function=function, detail=detail)
                raise self.fail(message, usage, span)
            kwargs[key] = value(keyword.value)
        return args, kwargs

    def bind(
        self,
        target: Callable[..., Any],
        label: str,
        args: list[str | tuple[str, ...]],
        kwargs: dict[str, str | tuple[str, ...]],
        usage: str,
        span: tuple[int, int],
    ) -> inspect.BoundArguments:
        """Checks arguments against DSI's own signature before calling it."""
        try:
            bound = inspect.signature(target).bind(*args, **kwargs)
        except TypeError as error:
            message = MSG_JINJA_ARGUMENTS.format(function=label, detail=str(error))
            raise self.fail(message, HINT_USAGE.format(usage=usage), span) from None
        for param, given in bound.arguments.items():
            if param in _LIST_PARAMS and not isinstance(given, tuple):
                # DSI would iterate a string: entity_path='user' becomes u, s, e, r.
                message = MSG_JINJA_LIST_EXPECTED.format(param=param, function=label)
                raise self.fail(message, HINT_USAGE.format(usage=usage), span)
            if param not in _LIST_PARAMS and isinstance(given, tuple):
                message = MSG_JINJA_NAME_EXPECTED.format(param=param, function=label)
                raise self.fail(message, HINT_USAGE.format(usage=usage), span)
        return bound

    def describe(
        self,
        function: str,
        call: nodes.Call,
        methods: list[nodes.Call],
        text: str,
        span: tuple[int, int],
    ) -> ObjectBuilderItemDescription:
        """Runs DSI's builder object (what Jinja would call) on the constant arguments."""
        collector = _Collector()
        helper = ObjectBuilderJinjaRenderHelper(
            description_processor=collector,
            valid_method_mapping=ConfiguredValidMethodMapping.DEFAULT_MAPPING,
        )
        builders: dict[str, Callable[..., Any]] = {
            "Dimension": helper.get_function_for_dimension(),
            "TimeDimension": helper.get_function_for_time_dimension(),
            "Entity": helper.get_function_for_entity(),
            "Metric": helper.get_function_for_metric(),
        }
        args, kwargs = self.arguments(call, function, text, span)
        usage = USAGE[function]
        bound = self.bind(builders[function], function, args, kwargs, usage, span)
        self.check_date_part(bound.arguments.get("date_part_name"), text, span)
        try:
            builder = builders[function](*bound.args, **bound.kwargs)
        except Exception as error:  # DSI raises assorted types for bad items
            raise self.bad_item(error, text, span) from None
        for method in methods:
            assert isinstance(method.node, nodes.Getattr)
            name = method.node.attr  # one of _METHODS, checked by unchain()
            label = f"{function}(…).{name}"
            margs, mkwargs = self.arguments(method, label, text, span)
            mbound = self.bind(getattr(builder, name), label, margs, mkwargs, usage, span)
            if name == "date_part":
                self.check_date_part(next(iter(mbound.arguments.values()), None), text, span)
            try:
                builder = getattr(builder, name)(*mbound.args, **mbound.kwargs)
            except Exception as error:
                raise self.bad_item(error, text, span) from None
        try:
            str(builder)  # DSI hands the finished description to the collector here
        except Exception as error:
            raise self.bad_item(error, text, span) from None
        return collector.descriptions[-1]

    def check_date_part(self, given: object, text: str, span: tuple[int, int]) -> None:
        # DSI's own check lists the valid parts from a set, in random order; ours is stable.
        parts = [part.value for part in DatePart]
        if given is None or given in parts:
            return
        message = MSG_UNKNOWN_DATE_PART.format(date_part=given, text=text)
        suggestion = _suggest(str(given), parts)
        hint = (
            HINT_DID_YOU_MEAN.format(suggestion=repr(suggestion))
            if suggestion
            else HINT_CHOICES.format(choices=", ".join(parts))
        )
        raise self.fail(message, hint, span)

    def bad_item(self, error: Exception, text: str, span: tuple[int, int]) -> QueryError:
        detail = " ".join(str(error).split()) or type(error).__name__
        return self.fail(
            MSG_BAD_ITEM.format(text=text, detail=detail),
            HINT_BAD_ITEM.format(example=EXAMPLE_DIMENSION),
            span,
        )

    def to_ref(
        self,
        description: ObjectBuilderItemDescription,
        raw_text: str,
        placeholder: str,
        text: str,
        span: tuple[int, int],
    ) -> QueryItemRef:
        """Turns DSI's description into its call parameter set, then into a QueryItemRef."""
        try:
            parameter_set = self.parameter_set(description)
        except Exception as error:
            raise self.bad_item(error, text, span) from None
        grain: str | None = None
        date_part: str | None = None
        group_by: tuple[str, ...] = ()
        entity_path: tuple[str, ...] = ()
        if isinstance(parameter_set, DimensionCallParameterSet):
            kind, name = "dimension", parameter_set.dimension_reference.element_name
        elif isinstance(parameter_set, TimeDimensionCallParameterSet):
            kind, name = "time_dimension", parameter_set.time_dimension_reference.element_name
            grain = parameter_set.time_granularity_name
            date_part = parameter_set.date_part.value if parameter_set.date_part else None
        elif isinstance(parameter_set, EntityCallParameterSet):
            kind, name = "entity", parameter_set.entity_reference.element_name
        else:
            kind, name = "metric", parameter_set.metric_reference.element_name
            group_by = tuple(ref.element_name for ref in parameter_set.group_by)
        if not isinstance(parameter_set, MetricCallParameterSet):
            entity_path = tuple(ref.element_name for ref in parameter_set.entity_path)
        for part in (name, *entity_path, *(p for g in group_by for p in g.split(DUNDER))):
            if not _NAME_RE.match(part):
                raise self.fail(MSG_BAD_NAME.format(name=part, text=text), HINT_BAD_NAME, span)
        grains = [g.value for g in TimeGranularity] + list(self.custom_grains)
        if grain is not None and grain not in grains:
            suggestion = _suggest(grain, grains)
            hint = (
                HINT_DID_YOU_MEAN.format(suggestion=repr(suggestion))
                if suggestion
                else HINT_CHOICES.format(choices=", ".join(grains))
            )
            raise self.fail(MSG_UNKNOWN_GRAIN.format(grain=grain, text=text), hint, span)
        return QueryItemRef(
            kind=kind,
            name=name,
            entity_path=entity_path,
            grain=grain,
            date_part=date_part,
            group_by=group_by,
            text=raw_text,
            placeholder=placeholder,
        )

    def parameter_set(
        self, description: ObjectBuilderItemDescription
    ) -> (
        DimensionCallParameterSet
        | TimeDimensionCallParameterSet
        | EntityCallParameterSet
        | MetricCallParameterSet
    ):
        """DSI's dispatch (JinjaObjectParser.parse_call_parameter_sets) for one item.

        JinjaObjectParser itself reads a whole template into four de-duplicated buckets,
        losing order and positions, so the per-item dispatch is repeated here.
        """
        item_type, grains = description.item_type, self.custom_grains
        if item_type is QueryItemType.ENTITY:
            return ParameterSetFactory.create_entity(
                entity_name=description.item_name, entity_path=description.entity_path
            )
        if item_type is QueryItemType.METRIC:
            return ParameterSetFactory.create_metric(
                metric_name=description.item_name,
                group_by=description.group_by_for_metric_item,
                query_item_location=QueryItemLocation.NON_ORDER_BY,
            )
        name, path = _hoist_entity_links(description.item_name, description.entity_path, grains)
        # DSI's create_dimension recognises a grain suffix (metric_time__month) and then drops
        # it; routing such names to create_time_dimension keeps the grain the user asked for.
        suffix = StructuredDunderedName.parse_name(name=name, custom_granularity_names=grains)
        if (
            item_type is QueryItemType.TIME_DIMENSION
            or description.time_granularity_name
            or description.date_part_name
            or suffix.time_granularity
        ):
            return ParameterSetFactory.create_time_dimension(
                time_dimension_name=name,
                custom_granularity_names=grains,
                time_granularity_name=description.time_granularity_name,
                entity_path=path,
                date_part_name=description.date_part_name,
            )
        return ParameterSetFactory.create_dimension(dimension_name=name, entity_path=path)

    # SQL

    def build_sql(self, blocks: list[_Block], placeholders: list[str]) -> str:
        parts: list[str] = []
        sql_at = template_at = 0

        def add(text: str, start: int, end: int, placeholder: str | None) -> None:
            nonlocal sql_at
            if not text:
                return
            self.segments.append(_Segment(sql_at, sql_at + len(text), start, end, placeholder))
            if placeholder is not None:
                self.placeholder_starts[sql_at] = placeholder
            parts.append(text)
            sql_at += len(text)

        for block, placeholder in zip(blocks, placeholders, strict=True):
            add(self.template[template_at : block.start], template_at, block.start, None)
            add(placeholder, block.start, block.end, placeholder)
            template_at = block.end
        add(self.template[template_at:], template_at, len(self.template), None)
        return "".join(parts)

    def to_template(self, sql_span: tuple[int, int]) -> tuple[int, int]:
        """Maps an end-exclusive SQL span back onto the filter the user wrote."""

        def at(position: int, is_end: bool) -> int:
            for segment in self.segments:
                if segment.sql_start <= position < segment.sql_end:
                    if segment.placeholder is not None:
                        return segment.end if is_end else segment.start
                    offset = segment.start + position - segment.sql_start
                    return offset + 1 if is_end else offset
            return len(self.template)

        start, end = sql_span
        first = at(start, False)
        return first, max(first, at(max(start, end - 1), True))

    def template_text(self, sql_span: tuple[int, int] | None, fallback: str) -> str:
        if sql_span is None:
            return _clip(fallback)
        start, end = self.to_template(sql_span)
        return _clip(self.template[start:end]) or _clip(fallback)

    def tokenize(self, sql: str) -> list[Token]:
        try:
            return _DIALECT.tokenize(sql)
        except TokenError:
            detail = DETAIL_UNTOKENIZABLE
        except Exception as error:  # sqlglot's tokenizer raises more than TokenError
            detail = _CLASS_RE.sub(r"\1", str(error)) or type(error).__name__
        raise self.fail(
            MSG_SQL_SYNTAX.format(detail=detail), HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER)
        )

    def check_tokens(self, sql: str, tokens: list[Token]) -> None:
        """Refuses what the token stream alone shows: comments, ';', keywords, nesting."""
        depth, previous_end = 0, -1
        refs = [s for s in self.segments if s.placeholder is not None]
        for index, token in enumerate(tokens):
            self.check_gap(sql, previous_end + 1, token.start)
            previous_end = token.end
            kind, span = token.token_type, (token.start, token.end + 1)
            following = tokens[index + 1].token_type if index + 1 < len(tokens) else None
            if kind == TokenType.SEMICOLON:
                raise self.fail_sql(
                    MSG_STACKED_STATEMENTS, HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER), span
                )
            if kind == TokenType.SELECT:
                raise self.fail_sql(MSG_SUBQUERY, HINT_SUBQUERY, span)
            if kind in _SET_OPERATIONS:
                message = MSG_SET_OPERATION.format(keyword=token.text.upper())
                raise self.fail_sql(message, HINT_SUBQUERY, span)
            if kind in _STATEMENTS and following != TokenType.L_PAREN:
                message = MSG_STATEMENT.format(keyword=token.text.upper())
                raise self.fail_sql(message, HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER), span)
            if kind == TokenType.L_PAREN:
                depth += 1
                if depth > MAX_NESTING:
                    raise self.fail_sql(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP, span)
            elif kind == TokenType.R_PAREN:
                depth -= 1
            if kind not in _STRING_TOKENS:
                self.check_confusables(token)
            for segment in refs:
                if segment.sql_end <= token.start or segment.sql_start > token.end:
                    continue
                exact = (token.start, token.end + 1) == (segment.sql_start, segment.sql_end)
                if exact and kind == TokenType.VAR:
                    continue
                text = _clip(self.template[segment.start : segment.end])
                if kind in _STRING_TOKENS:
                    hint = HINT_REF_IN_STRING.format(example=EXAMPLE_FILTER)
                    raise self.fail(
                        MSG_REF_IN_STRING.format(text=text), hint, (segment.start, segment.end)
                    )
                raise self.fail_sql(MSG_REF_ADJACENT.format(text=text), HINT_REF_ADJACENT, span)
        self.check_gap(sql, previous_end + 1, len(sql))
        for token in tokens:
            if token.comments:  # a comment the gap scan missed: refuse rather than guess
                raise self.fail_sql(MSG_SQL_COMMENT, HINT_SQL_COMMENT, (token.start, token.end + 1))

    def check_gap(self, sql: str, start: int, end: int) -> None:
        # Between two tokens there is only whitespace or a comment, which sqlglot would keep
        # and print into the compiled SQL.
        gap = sql[start:end]
        found = [at for at in (gap.find("--"), gap.find("/*")) if at >= 0]
        if found:
            at = start + min(found)
            raise self.fail_sql(MSG_SQL_COMMENT, HINT_SQL_COMMENT, (at, start + len(gap.rstrip())))

    def check_confusables(self, token: Token) -> None:
        for offset, char in enumerate(token.text):
            if char in _CONFUSABLE_QUOTES:
                at = token.start + offset
                message = MSG_CONFUSABLE_QUOTE.format(char=char, name=unicodedata.name(char, "?"))
                hint = HINT_CONFUSABLE_QUOTE.format(example=EXAMPLE_FILTER)
                raise self.fail_sql(message, hint, (at, at + 1))

    def parse(self, sql: str, tokens: list[Token]) -> exp.Expr:
        hint = HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER)
        try:
            trees = _DIALECT.parser().parse_into(exp.Condition, tokens, sql)
        except ParseError as error:
            detail, span = self.describe_parse_error(sql, error)
            raise self.fail_sql(MSG_SQL_SYNTAX.format(detail=detail), hint, span) from None
        except RecursionError:
            raise self.fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP) from None
        except Exception as error:  # sqlglot's parser raises more than ParseError
            detail = _CLASS_RE.sub(r"\1", str(error)) or type(error).__name__
            raise self.fail(MSG_SQL_SYNTAX.format(detail=detail), hint) from None
        tree = trees[0] if trees else None
        if tree is None:
            raise self.fail(MSG_EMPTY, HINT_EMPTY.format(example=EXAMPLE_FILTER))
        return tree

    def describe_parse_error(
        self, sql: str, error: ParseError
    ) -> tuple[str, tuple[int, int] | None]:
        """sqlglot's first error, in words a user can act on, with its SQL span."""
        info = error.errors[0] if error.errors else {}
        description = str(info.get("description") or error)
        highlight = str(info.get("highlight") or "")
        line, col = info.get("line"), info.get("col")
        span: tuple[int, int] | None = None
        if isinstance(line, int) and isinstance(col, int) and line >= 1:
            # sqlglot's `col` is the 1-based column where the highlighted token ends.
            line_start = sum(len(text) + 1 for text in sql.split("\n")[: line - 1])
            end = min(len(sql), line_start + col)
            span = (max(0, end - len(highlight)), max(end, 1))
        shown = self.template_text(span, highlight) if span else repr(highlight)
        if description.startswith("Invalid expression / Unexpected token"):
            return DETAIL_UNEXPECTED.format(text=shown), span
        if description.startswith("Required keyword"):
            return DETAIL_INCOMPLETE.format(text=shown), span
        if description.startswith("Expecting )"):
            return DETAIL_MISSING_PAREN, span
        return _CLASS_RE.sub(r"\1", description), span

    # the tree

    def node_span(self, node: exp.Expr) -> tuple[int, int] | None:
        """The SQL span of a node: its tokens' metadata, and a call's closing parenthesis."""
        starts, ends = [], []
        for child in node.walk():
            meta = child.meta
            if "start" in meta and "end" in meta:
                starts.append(meta["start"])
                ends.append(meta["end"] + 1)
        if not starts:
            return None
        end = max(ends)
        # sqlglot records where a function's name is, not where its arguments end.
        index = (
            self.token_index.get(node.meta.get("start", -1)) if isinstance(node, exp.Func) else None
        )
        if (
            index is not None
            and index + 1 < len(self.tokens)
            and self.tokens[index + 1].token_type == TokenType.L_PAREN
        ):
            depth = 0
            for token in self.tokens[index + 1 :]:
                depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
                if depth == 0:
                    end = max(end, token.end + 1)
                    break
        return min(starts), end

    def fail_node(self, node: exp.Expr, message: str, hint: str | None) -> QueryError:
        return self.fail_sql(message, hint, self.node_span(node))

    def check_tree(self, tree: exp.Expr, placeholders: set[str]) -> None:
        """Walks the tree (outer nodes first, left to right) against the allow-list."""
        stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
        used: set[str] = set()
        while stack:
            node, depth = stack.pop()
            if depth > MAX_NESTING:
                message = MSG_TOO_DEEP.format(limit=MAX_NESTING)
                raise self.fail_node(node, message, HINT_TOO_DEEP)
            self.check_node(node)
            if type(node) is exp.Column:
                used.add(node.name)
            children = list(node.iter_expressions())
            for child in reversed(children):
                # A left-deep chain of one operator (a OR b OR c, 1 + 2 + 3) is generated
                # iteratively by sqlglot, so only a change of operator adds a level.
                chained = type(child) is type(node) and isinstance(node, exp.Binary)
                stack.append((child, depth if chained and child.arg_key == "this" else depth + 1))
        self.check_root(tree)
        if used != placeholders:
            raise CompileError(f"filter items without a column: {sorted(placeholders - used)}")

    def check_node(self, node: exp.Expr) -> None:
        kind = type(node)
        if isinstance(node, exp.SetOperation):
            message = MSG_SET_OPERATION.format(keyword=node.key.upper())
            raise self.fail_node(node, message, HINT_SUBQUERY)
        if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
            raise self.fail_node(node, MSG_SUBQUERY, HINT_SUBQUERY)
        if type(node) is exp.Column:
            self.check_column(node)
        elif kind is exp.Identifier:
            if type(node.parent) is not exp.Column:
                raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)
        elif kind in _OPERATORS or kind in _LITERALS:
            self.check_operator(node)
        elif kind in _FUNCTIONS:
            self.check_function(node)
        elif kind is exp.Interval:
            if type(node.this) is not exp.Literal:
                raise self.fail_node(node, MSG_INTERVAL, HINT_INTERVAL)
        elif type(node) is exp.Var:
            self.check_var(node)
        elif kind is exp.If and type(node.parent) is exp.Case:
            pass
        elif kind in (exp.DataType, exp.DataTypeParam):
            if type(node.parent) not in (exp.Cast, exp.DataType):
                raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)
        elif isinstance(node, exp.Func):
            raise self.function_not_allowed(node)
        else:
            raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)

    def not_allowed(self, node: exp.Expr) -> str:
        what = _SYNTAX_NAMES.get(type(node))
        if what is None:
            what = f"`{self.template_text(self.node_span(node), node.sql())}`"
        return MSG_SYNTAX_NOT_ALLOWED.format(what=what)

    def function_not_allowed(self, node: exp.Func) -> QueryError:
        if isinstance(node, exp.Anonymous):
            name = self.template_text(_own_span(node.meta), node.name)
        else:
            name = node.sql_name()
        suggestion = _FUNCTION_ALIASES.get(name.upper()) or _suggest(
            name.upper(), ALLOWED_FUNCTIONS
        )
        hint = (
            HINT_DID_YOU_MEAN.format(suggestion=suggestion)
            if suggestion
            else HINT_ALLOWED_FUNCTIONS.format(names=", ".join(ALLOWED_FUNCTIONS))
        )
        return self.fail_node(node, MSG_NOT_ALLOWED.format(name=name), hint)

    def check_column(self, column: exp.Column) -> None:
        identifier = column.this
        start = identifier.meta.get("start") if isinstance(identifier, exp.Identifier) else None
        if (
            isinstance(identifier, exp.Identifier)
            and not identifier.quoted
            and not column.args.get("table")
            and not column.args.get("db")
            and not column.args.get("catalog")
            and start is not None
            and self.placeholder_starts.get(start) == identifier.name
        ):
            return
        # Anything else is a name the user typed: a real column, or a spoofed placeholder.
        span = self.node_span(column)
        name = self.template_text(span, column.sql())
        parts = [part.name.lower() for part in column.parts]
        suggestion = EXAMPLE_DIMENSION
        if 1 <= len(parts) <= 2 and all(_NAME_RE.match(part) for part in parts):
            dundered = DUNDER.join(parts) if len(parts) == 2 else f"<entity>__{parts[0]}"
            suggestion = "{{ Dimension('" + dundered + "') }}"
        hint = HINT_BARE_COLUMN.format(suggestion=suggestion)
        raise self.fail_sql(MSG_BARE_COLUMN.format(name=name), hint, span)

    def check_operator(self, node: exp.Expr) -> None:
        if type(node) is exp.In:
            if node.args.get("query") is not None:
                raise self.fail_node(node, MSG_SUBQUERY, HINT_SUBQUERY)
            values = node.expressions
            if (
                not values
                or node.args.get("unnest") is not None
                or node.args.get("field") is not None
                or not all(_is_literal(value) for value in values)
            ):
                raise self.fail_node(node, MSG_IN_LITERALS, HINT_IN_LITERALS)
        elif type(node) is exp.Is and type(node.expression) not in (exp.Null, exp.Boolean):
            raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)

    def check_function(self, node: exp.Expr) -> None:
        if type(node) is exp.Cast:
            to = node.args.get("to")
            params = to.expressions if isinstance(to, exp.DataType) else []
            if (
                not isinstance(to, exp.DataType)
                or to.this not in _CAST_TYPES
                or to.args.get("nested")
                or to.args.get("values")
                or not all(
                    type(p) is exp.DataTypeParam and type(p.this) is exp.Literal for p in params
                )
            ):
                shown = to.sql() if isinstance(to, exp.Expr) else "?"
                message = MSG_CAST_TYPE.format(type=shown)
                hint = HINT_CAST_TYPE.format(types=", ".join(sorted(set(_CAST_TYPES.values()))))
                raise self.fail_node(node, message, hint)
        elif type(node) is exp.DateTrunc:
            unit = node.args.get("unit")
            value = (
                unit.name.upper() if type(unit) is exp.Literal or type(unit) is exp.Var else None
            )
            if value not in _TRUNC_UNITS:
                shown = "?"
                if isinstance(unit, exp.Expr):
                    shown = self.template_text(self.node_span(unit), unit.sql())
                message = MSG_UNIT.format(unit=shown, function="DATE_TRUNC")
                choices = ", ".join(sorted(_TRUNC_UNITS))
                raise self.fail_node(node, message, HINT_CHOICES.format(choices=choices))
        elif type(node) is exp.Extract and type(node.this) is exp.Literal:
            self.check_unit(node.this, "EXTRACT", _DATE_PARTS)

    def check_var(self, node: exp.Var) -> None:
        parent = node.parent
        if type(parent) is exp.Extract and node.arg_key == "this":
            self.check_unit(node, "EXTRACT", _DATE_PARTS)
        elif type(parent) is exp.Interval and node.arg_key == "unit":
            self.check_unit(node, "INTERVAL", _INTERVAL_UNITS)
        else:
            raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)

    def check_unit(self, node: exp.Expr, function: str, units: frozenset[str]) -> None:
        if node.name.upper() not in units:
            message = MSG_UNIT.format(
                unit=self.template_text(self.node_span(node), node.name), function=function
            )
            raise self.fail_node(
                node, message, HINT_CHOICES.format(choices=", ".join(sorted(units)))
            )

    def check_root(self, tree: exp.Expr) -> None:
        root = tree
        while type(root) is exp.Paren:
            root = root.this
        kind = type(root)
        if kind in _CONDITION_ROOTS:
            return
        if type(root) is exp.Cast and root.to.this == _T.BOOLEAN:
            return
        if kind is exp.Literal:
            what = "a string" if root.is_string else "a number"
        elif kind is exp.Null:
            what = "NULL"
        elif kind in _ARITHMETIC:
            what = "an arithmetic expression"
        elif kind is exp.Interval:
            what = "an interval"
        elif kind in _FUNCTIONS:
            what = f"a call to {_FUNCTIONS[kind]}"
        else:
            what = "a value"
        hint = HINT_NOT_CONDITION.format(example=EXAMPLE_FILTER)
        raise self.fail_node(tree, MSG_NOT_CONDITION.format(what=what), hint)


_SYNTAX_NAMES: dict[type[exp.Expr], str] = {
    exp.Star: "*",
    exp.Placeholder: "query parameters such as ? or :name",
    exp.Parameter: "parameters such as @name",
    exp.Bracket: "subscripts such as x[1]",
    exp.DPipe: "the || operator (use CONCAT)",
    exp.Collate: "COLLATE",
    exp.Tuple: "tuples",
    exp.SimilarTo: "SIMILAR TO",
    exp.NullSafeEQ: "IS NOT DISTINCT FROM",
    exp.NullSafeNEQ: "IS DISTINCT FROM",
    exp.Escape: "LIKE … ESCAPE",
    exp.IntervalSpan: "interval ranges such as DAY TO HOUR",
    exp.National: "national string literals (N'…')",
    exp.Dot: "dotted names",
    exp.Alias: "aliases (AS)",
    exp.Window: "window functions (OVER)",
    exp.Distinct: "DISTINCT",
    exp.Is: "IS with anything but NULL, TRUE or FALSE",
}


def _own_span(meta: Mapping[str, Any] | None) -> tuple[int, int] | None:
    if meta and "start" in meta and "end" in meta:
        return meta["start"], meta["end"] + 1
    return None


def _is_literal(node: exp.Expr) -> bool:
    """A constant: 'x', 1, TRUE, NULL, -1, DATE '2026-01-01'."""
    kind = type(node)
    if kind in _LITERALS:
        return True
    if kind is exp.Neg:
        return type(node.this) is exp.Literal and not node.this.is_string
    if type(node) is exp.Cast:
        return (
            type(node.this) is exp.Literal
            and node.this.is_string
            and isinstance(node.to, exp.DataType)
            and node.to.this in _DATE_LITERAL_TYPES
        )
    return False


def _hoist_entity_links(
    name: str, entity_path: Sequence[str], custom_grains: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    """``user__account__plan`` → (``account__plan``, path + ``user``), which DSI accepts.

    DSI's factory refuses names with more than one entity link ("incorrect format") and only
    takes multi-hop paths through ``entity_path``; both spellings mean the same join path,
    so the leading links move into ``entity_path`` (which DSI puts first).
    """
    parsed = StructuredDunderedName.parse_name(name=name, custom_granularity_names=custom_grains)
    if len(parsed.entity_links) <= 1:
        return name, tuple(entity_path)
    last = StructuredDunderedName(
        entity_links=parsed.entity_links[-1:],
        element_name=parsed.element_name,
        time_granularity=parsed.time_granularity,
    )
    leading = tuple(link.element_name for link in parsed.entity_links[:-1])
    return last.dundered_name, (*entity_path, *leading)


def _key(ref: QueryItemRef) -> tuple[object, ...]:
    return (ref.kind, ref.name, ref.entity_path, ref.grain, ref.date_part, ref.group_by)


# --- public views of the allow-list ------------------------------------------------------
# Read-only views for semantic.compiler.definition_guard, which checks definition
# expressions against the same functions, CAST types and date parts as user filters.
FILTER_FUNCTIONS: Mapping[type[exp.Expr], str] = MappingProxyType(_FUNCTIONS)
FILTER_NODES: frozenset[type[exp.Expr]] = _OPERATORS | _LITERALS
FUNCTION_ALIASES: Mapping[str, str] = MappingProxyType(_FUNCTION_ALIASES)
CAST_TYPES: Mapping[Any, str] = MappingProxyType(_CAST_TYPES)
DATE_PARTS: frozenset[str] = _DATE_PARTS
TRUNC_UNITS: frozenset[str] = _TRUNC_UNITS
INTERVAL_UNITS: frozenset[str] = _INTERVAL_UNITS
