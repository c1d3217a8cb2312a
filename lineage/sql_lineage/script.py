"""Scripts statement by statement: one statement that does not parse, or that sqlglot can only
keep as an opaque command, is reported (file, line, reason) and the rest still yields lineage.

The whole script is parsed at once first (the common case, and the fast one). Only when that
fails, or leaves an opaque command that may hold lineage, is it split at its semicolons and
each piece parsed alone; a piece that still fails is retried from just after a block keyword
(``BEGIN``, ``THEN``, ``ELSE``, ``LOOP``, ``AS``…), which recovers the first statement of a
procedure body or an IF branch that sqlglot does not parse as a whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

MSG_UNPARSED = "statement not parsed ({detail}); its lineage is missing"
MSG_OPAQUE = "statement not understood ({kind}); its lineage is missing"

# Words after which a new statement may start inside a procedure or script block.
_BLOCK_WORDS = {"BEGIN", "THEN", "ELSE", "LOOP", "DO", "AS", "IS"}
# An opaque command whose text holds one of these may hide column lineage: report it.
_LINEAGE_WORDS = ("SELECT", "INSERT", "UPDATE", "MERGE", "CREATE")
_sqlglot_log = logging.getLogger("sqlglot")


@dataclass(frozen=True)
class StatementIssue:
    """A statement whose lineage is missing: where it is and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class ParsedStatement:
    statement: exp.Expr
    line: int  # 1-based line of the statement's first token in its file (0: unknown)


def parse_script(
    sql: str, dialect: str, *, file: str = "", first_line: int = 1
) -> tuple[list[ParsedStatement], list[StatementIssue]]:
    """Statements of ``sql`` and the issues of those that could not be read.

    Args:
        sql: one statement or a script.
        dialect: sqlglot dialect name.
        file: named in the issues (a file path or model name).
        first_line: the line of ``sql`` in its file (for SQL cut out of a bigger file).

    Returns:
        The parsed statements in order, and one issue per statement left out.

    Example:
        >>> stmts, issues = parse_script("SELECT a FROM t;\\nSELECT (1 FROM;\\nSELECT b FROM u", "duckdb", file="x.sql")
        >>> [s.line for s in stmts], [str(i).split(" (")[0] for i in issues]
        ([1, 3], ['x.sql:2: statement not parsed'])
    """
    previous = _sqlglot_log.level
    _sqlglot_log.setLevel(logging.ERROR)  # "falling back to Command" is reported here instead
    try:
        try:
            whole = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        except SqlglotError:
            whole = None
        if whole is not None and not any(_opaque(s) for s in whole):
            return [ParsedStatement(s, 0) for s in whole], []
        return _piecewise(sql, dialect, file, first_line)
    finally:
        _sqlglot_log.setLevel(previous)


def _opaque(stmt: exp.Expr) -> bool:
    """An opaque command (or a CREATE whose body is one) that may hold lineage."""
    if isinstance(stmt, exp.Create) and isinstance(stmt.expression, exp.Command):
        stmt = stmt.expression
    if not isinstance(stmt, exp.Command):
        return False
    text = f"{stmt.this} {stmt.expression or ''}".upper()
    return any(word in text for word in _LINEAGE_WORDS)


def _piecewise(
    sql: str, dialect: str, file: str, first_line: int
) -> tuple[list[ParsedStatement], list[StatementIssue]]:
    from sqlglot.dialects.dialect import Dialect

    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except SqlglotError as exc:
        return [], [StatementIssue(file, first_line, MSG_UNPARSED.format(detail=_first(exc)))]
    statements: list[ParsedStatement] = []
    issues: list[StatementIssue] = []
    for piece in _pieces(tokens):
        line = first_line + piece[0].line - 1
        found, reason = _parse_piece(sql, dialect, piece)
        statements.extend(ParsedStatement(s, line) for s in found)
        if reason:
            issues.append(StatementIssue(file, line, reason))
    return statements, issues


def _pieces(tokens: list[Token]) -> list[list[Token]]:
    pieces: list[list[Token]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            pieces.append([])
        else:
            pieces[-1].append(token)
    return [p for p in pieces if p]


def _parse_piece(sql: str, dialect: str, piece: list[Token]) -> tuple[list[exp.Expr], str]:
    """Statements of one piece (empty when none) and the reason it lost lineage ("" if none).
    A piece that fails is retried from after each block word, first to last."""
    if piece[0].text.upper() == "END" and len(piece) <= 2:
        return [], ""  # END, END IF, END LOOP: a block closes
    # Retries start right after a block word's last character: the token after it is not
    # always placed (after BEGIN, a tokenizer may keep the rest as one command string).
    starts = [piece[0].start] + [t.end + 1 for t in piece[:-1] if t.text.upper() in _BLOCK_WORDS]
    reason = ""
    for number, start in enumerate(starts):
        text = sql[start : piece[-1].end + 1]
        try:
            parsed = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
        except SqlglotError as exc:
            if number == 0:
                reason = MSG_UNPARSED.format(detail=_first(exc))
            continue
        useful = [s for s in parsed if not _opaque(s)]
        if useful:
            return useful, ""  # from the start, or recovered after BEGIN / IF … THEN
        if not reason:
            reason = MSG_OPAQUE.format(kind=_kind(parsed))
    return [], reason


def _kind(parsed: list[exp.Expr]) -> str:
    stmt = parsed[0] if parsed else None
    if isinstance(stmt, exp.Create) and isinstance(stmt.expression, exp.Command):
        return f"CREATE {stmt.args.get('kind') or ''}".strip() + " body"
    if isinstance(stmt, exp.Command):
        return str(stmt.this).upper()
    return type(stmt).__name__ if stmt is not None else "empty"


def _first(exc: Exception) -> str:
    return str(exc).splitlines()[0]
