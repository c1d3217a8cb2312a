"""What a filter may contain: limits, SQL node types, functions, casts, date parts, tokens.

The SQL guard (semantic.compiler.where.guard) refuses every node type, function, cast target,
unit and token not listed here; nothing outside these sets reaches the SQL generator.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

MAX_FILTER_CHARS = 10_000


# sqlglot's parser and generators recurse once per nesting level (several frames each); 20
# levels leave room below Python's recursion limit for the query the compiler wraps around
# the filter, in every dialect. Chains such as `a OR b OR c …` do not count (see _check_tree).
MAX_NESTING = 20
PLACEHOLDER_PREFIX = "__tally_ref_"


FUNCTIONS: dict[type[exp.Expr], str] = {
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
ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(sorted(FUNCTIONS.values()))


# Spellings from other warehouses that string similarity would not find.
FUNCTION_ALIASES = {
    "NOW": "CURRENT_TIMESTAMP",
    "GETDATE": "CURRENT_TIMESTAMP",
    "SYSDATE": "CURRENT_TIMESTAMP",
    "TODAY": "CURRENT_DATE",
    "CURDATE": "CURRENT_DATE",
    "LCASE": "LOWER",
    "UCASE": "UPPER",
}
COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
PREDICATES = (
    *COMPARISONS,
    exp.And,
    exp.Or,
    exp.Not,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Like,
    exp.ILike,
)
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg)
OPERATORS = frozenset((*PREDICATES, *ARITHMETIC, exp.Paren))
LITERALS = frozenset((exp.Literal, exp.Boolean, exp.Null))


# Roots that can be a condition; a lone item may be a boolean dimension (`is_active`).
CONDITION_ROOTS = frozenset((*PREDICATES, exp.Boolean, exp.Column, exp.Case, exp.Coalesce))


DATA_TYPE = exp.DataType.Type


CAST_TYPES: dict[Any, str] = {
    DATA_TYPE.BOOLEAN: "BOOLEAN",
    DATA_TYPE.TINYINT: "TINYINT",
    DATA_TYPE.SMALLINT: "SMALLINT",
    DATA_TYPE.INT: "INT",
    DATA_TYPE.BIGINT: "BIGINT",
    DATA_TYPE.DECIMAL: "DECIMAL",
    DATA_TYPE.FLOAT: "FLOAT",
    DATA_TYPE.DOUBLE: "DOUBLE",
    DATA_TYPE.CHAR: "CHAR",
    DATA_TYPE.VARCHAR: "VARCHAR",
    DATA_TYPE.TEXT: "TEXT",
    DATA_TYPE.DATE: "DATE",
    DATA_TYPE.TIME: "TIME",
    DATA_TYPE.DATETIME: "DATETIME",
    DATA_TYPE.TIMESTAMP: "TIMESTAMP",
    DATA_TYPE.TIMESTAMPTZ: "TIMESTAMPTZ",
}
DATE_LITERAL_TYPES = frozenset(
    (DATA_TYPE.DATE, DATA_TYPE.DATETIME, DATA_TYPE.TIMESTAMP, DATA_TYPE.TIMESTAMPTZ)
)


# fmt: off
DATE_PARTS = frozenset((
    "YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "DOW", "DAYOFWEEK", "DOY", "DAYOFYEAR",
    "HOUR", "MINUTE", "SECOND", "MILLISECOND", "MICROSECOND", "EPOCH",
))
TRUNC_UNITS = frozenset(("YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND"))
INTERVAL_UNITS = frozenset(
    unit + plural
    for unit in (
        "YEAR", "QUARTER", "MONTH", "WEEK", "DAY", "HOUR", "MINUTE", "SECOND",
        "MILLISECOND", "MICROSECOND",
    )
    for plural in ("", "S")
)
SET_OPERATIONS = frozenset((TokenType.UNION, TokenType.INTERSECT, TokenType.EXCEPT))


# Keywords that only start statements. Some double as function names (TRUNCATE(x, 2)), so a
# keyword directly followed by '(' is left for the tree check, which names the function.
STATEMENTS = frozenset(
    getattr(TokenType, name)
    for name in (
        "ALTER", "ATTACH", "BEGIN", "COMMAND", "COMMIT", "COPY", "CREATE", "DELETE",
        "DESCRIBE", "DETACH", "DROP", "EXECUTE", "GRANT", "INSERT", "INTO", "LOAD", "MERGE",
        "PRAGMA", "ROLLBACK", "SET", "SHOW", "TRUNCATE", "UPDATE", "USE", "VALUES",
    )
    if hasattr(TokenType, name)
)


# fmt: on
STRING_TOKENS = frozenset(
    getattr(TokenType, name)
    for name in ("STRING", "NATIONAL_STRING", "RAW_STRING", "HEREDOC_STRING", "IDENTIFIER")
    if hasattr(TokenType, name)
)


# Look-alikes that word processors and chat tools substitute for ASCII quotes.
CONFUSABLE_QUOTES = frozenset("‘’‚‛“”„‟′″‵‶＇＂`´")


# Control, format (zero-width, bidi overrides) and lone surrogate characters: invisible,
# able to make two names look equal, and unencodable for some drivers.
BAD_CATEGORIES = frozenset(("Cc", "Cf", "Cs"))
ALLOWED_CONTROLS = frozenset("\t\n\r")

DIALECT = Dialect.get_or_raise(None)


# dbt-semantic-interfaces' element name rule (UniqueAndValidNameRule.NAME_REGEX) and its
# entity-link separator, spelled here so that a filter without query items, and every compile
# of one, does not import DSI (~0.2 s with pydantic); tests/semantic/compiler/test_where.py
# checks that both still equal DSI's.
NAME_RE = re.compile(r"\A[a-z]((?!__)[a-z0-9_])*[a-z0-9]\Z")
DUNDER = "__"
CLASS_RE = re.compile(r"<class '(?:[\w]+\.)*(\w+)'>")


SYNTAX_NAMES: dict[type[exp.Expr], str] = {
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
