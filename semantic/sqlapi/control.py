"""Transaction and cursor statements sqlglot does not read: split a query text into
statements and turn these into nodes the statement runner dispatches on.

* transaction statements (``BEGIN``/``START TRANSACTION`` with modes, as pgjdbc's
  ``setReadOnly(true)`` sends; ``COMMIT``/``END``, ``ROLLBACK``/``ABORT``, savepoints),
  read by semantic.sqlapi.transactions;
* ``SET SESSION CHARACTERISTICS AS TRANSACTION …`` and ``SET TRANSACTION …`` (Tally is
  read-only whatever the mode);
* ``DECLARE name [BINARY] [ASENSITIVE|INSENSITIVE] [[NO] SCROLL] CURSOR [WITH[OUT] HOLD]
  FOR query`` (psycopg's named cursors), holding the parsed query, so its ``$n``
  parameters are bound like any other's;
* ``FETCH``/``MOVE [NEXT|FORWARD [n|ALL]|n|ALL] [FROM|IN] name``; ``CLOSE name|ALL``.

Django-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.tokens import TokenType

from semantic.sqlapi.transactions import (
    MODES,
    NAME,
    TxStatement,
    identifier_name,
    transaction_statement,
)
from semantic.sqlapi.translate import SYNTAX_ERROR, SqlApiError, unsupported

SET_TRANSACTION = re.compile(
    rf"^\s*SET\s+(?:SESSION\s+CHARACTERISTICS\s+AS\s+)?TRANSACTION\s+({MODES})\s*;?\s*$",
    re.IGNORECASE,
)
DECLARE = re.compile(
    rf"^\s*DECLARE\s+({NAME})\s+((?:BINARY\s+|ASENSITIVE\s+|INSENSITIVE\s+|NO\s+SCROLL\s+|SCROLL\s+)*)"
    rf"CURSOR\s+(?:(WITH|WITHOUT)\s+HOLD\s+)?FOR\s+(.+?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
FETCH = re.compile(
    rf"^\s*(FETCH|MOVE)\s+(?:(NEXT|ALL|FORWARD\s+ALL|FORWARD\s+\d+|FORWARD|\d+|PRIOR|FIRST|LAST|"
    rf"ABSOLUTE\s+-?\d+|RELATIVE\s+-?\d+|BACKWARD(?:\s+ALL|\s+\d+)?)\s+)?(?:(?:FROM|IN)\s+)?"
    rf"({NAME})\s*;?\s*$",
    re.IGNORECASE,
)
CLOSE = re.compile(rf"^\s*CLOSE\s+({NAME})\s*;?\s*$", re.IGNORECASE)
_KEYWORDS = re.compile(r"^\s*(SET|DECLARE|FETCH|MOVE|CLOSE)\b", re.IGNORECASE)

# FETCH without a count, or with ALL: PostgreSQL's own limits.
FETCH_ALL = -1


# sqlglot's nodes are compiled classes (no subclasses): each statement is a Command with
# one of these keywords and a Tuple of its parts, which tree walks (parameter binding,
# table search) go through like any other node.
TRANSACTION_KEYWORD = "TRANSACTION"
SET_TRANSACTION_KEYWORD = "SET TRANSACTION"
DECLARE_KEYWORD = "DECLARE CURSOR"
FETCH_KEYWORD = "FETCH CURSOR"
CLOSE_KEYWORD = "CLOSE CURSOR"
KEYWORDS = frozenset(
    {TRANSACTION_KEYWORD, SET_TRANSACTION_KEYWORD, DECLARE_KEYWORD, FETCH_KEYWORD, CLOSE_KEYWORD}
)


@dataclass(frozen=True)
class Declare:
    name: str
    query: exp.Expr
    hold: bool


@dataclass(frozen=True)
class Fetch:
    name: str
    count: int  # FETCH_ALL for ALL
    move: bool


def _node(keyword: str, *parts: exp.Expr) -> exp.Command:
    return exp.Command(this=keyword, expression=exp.Tuple(expressions=list(parts)))


def control_kind(tree: exp.Expr) -> str | None:
    """The keyword of a control statement built here, or None."""
    if isinstance(tree, exp.Command) and tree.this in KEYWORDS:
        return str(tree.this)
    return None


def transaction_of(tree: exp.Expr) -> TxStatement:
    action, keyword, chain, name = tree.expression.expressions
    return TxStatement(action.name, keyword.name, chain.this is True, name.name)


def declare_of(tree: exp.Expr) -> Declare:
    name, query, hold = tree.expression.expressions
    return Declare(name.name, query, hold.this is True)


def fetch_of(tree: exp.Expr) -> Fetch:
    name, count, move = tree.expression.expressions
    return Fetch(name.name, int(count.this), move.this is True)


def close_of(tree: exp.Expr) -> str | None:
    """The cursor CLOSE names, None for ALL."""
    (name,) = tree.expression.expressions
    return None if isinstance(name, exp.Null) else str(name.name)


def split_statements(sql: str) -> list[str]:
    """The statements of a query text, split at the semicolons outside literals and comments.

    Example:
        >>> split_statements("BEGIN READ ONLY; SELECT 'a;b' -- c;\\n; ")
        ['BEGIN READ ONLY', " SELECT 'a;b' -- c;\\n", ' ']
    """
    bounds = [t.start for t in Postgres().tokenize(sql) if t.token_type == TokenType.SEMICOLON]
    parts, start = [], 0
    for end in bounds:
        parts.append(sql[start:end])
        start = end + 1
    parts.append(sql[start:])
    return parts


def control_statement(text: str) -> exp.Expr | None:
    """The node of a transaction or cursor statement, or None for anything else.

    Raises:
        SqlApiError: a cursor direction other than forward (0A000).

    Example:
        >>> transaction_of(control_statement("BEGIN READ ONLY"))
        TxStatement(action='begin', keyword='BEGIN', chain=False, name='')
        >>> fetch_of(control_statement('FETCH FORWARD 100 FROM "c_1"'))
        Fetch(name='c_1', count=100, move=False)
    """
    tx = transaction_statement(text)
    if tx is not None:
        return _node(
            TRANSACTION_KEYWORD,
            exp.Literal.string(tx.action),
            exp.Literal.string(tx.keyword),
            exp.Boolean(this=tx.chain),
            exp.Literal.string(tx.name),
        )
    if _KEYWORDS.match(text) is None:
        return None
    match = SET_TRANSACTION.match(text)
    if match:
        return _node(SET_TRANSACTION_KEYWORD, exp.Literal.string(" ".join(match.group(1).split())))
    match = DECLARE.match(text)
    if match:
        name, options, hold, query = match.groups()
        if "SCROLL" in options.upper() and "NO" not in options.upper():
            raise unsupported("a SCROLL cursor", hint="declare it NO SCROLL and FETCH forward")
        tree = sqlglot.parse_one(query, read="postgres")
        if not isinstance(tree, exp.Query):
            raise SqlApiError("DECLARE CURSOR needs a SELECT", sqlstate=SYNTAX_ERROR)
        with_hold = (hold or "").upper() == "WITH"
        return _node(
            DECLARE_KEYWORD,
            exp.to_identifier(identifier_name(name)),
            tree,
            exp.Boolean(this=with_hold),
        )
    match = FETCH.match(text)
    if match:
        verb, direction, name = match.groups()
        return _node(
            FETCH_KEYWORD,
            exp.to_identifier(identifier_name(name)),
            exp.Literal.string(str(_fetch_count(direction))),
            exp.Boolean(this=verb.upper() == "MOVE"),
        )
    match = CLOSE.match(text)
    if match:
        name = match.group(1)
        return _node(
            CLOSE_KEYWORD,
            exp.null() if name.upper() == "ALL" else exp.to_identifier(identifier_name(name)),
        )
    return None


def _fetch_count(direction: str | None) -> int:
    words = (direction or "NEXT").upper().split()
    if words[0] in ("PRIOR", "FIRST", "LAST", "ABSOLUTE", "RELATIVE", "BACKWARD"):
        raise unsupported(f"FETCH {' '.join(words)}", hint="cursors move forward only")
    if words[-1] == "ALL":
        return FETCH_ALL
    if words[-1].isdigit():
        return int(words[-1])
    return 1  # NEXT, FORWARD
