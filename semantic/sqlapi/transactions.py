"""Transaction statements of the SQL API, answered as PostgreSQL answers them.

Nothing is transactional here (the data is read-only), yet drivers follow the transaction
status byte of ReadyForQuery (I idle, T in a block, E in a failed block) and the command
tags: psycopg sends ``ROLLBACK`` after an error and ``ROLLBACK TO SAVEPOINT`` for a failed
nested ``conn.transaction()``, pgjdbc and asyncpg their own ``BEGIN``/``COMMIT``. So every
form is read (``BEGIN``/``START TRANSACTION`` with modes, ``COMMIT``/``END``,
``ROLLBACK``/``ABORT`` with ``AND [NO] CHAIN``, ``SAVEPOINT``, ``RELEASE``, ``ROLLBACK TO``)
and ``transaction_step`` gives the status, tag, warning or error PostgreSQL 16 gives: a
``COMMIT`` of a failed block answers ``ROLLBACK``; ``COMMIT`` outside a block warns 25P01;
``BEGIN`` inside one warns 25001; savepoints need a block (25P01) and a known name (3B001).
Two-phase commit is refused (prepared transactions are disabled, as by PostgreSQL's
default ``max_prepared_transactions = 0``).

Django-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from semantic.sqlapi.translate import SYNTAX_ERROR, SqlApiError

NO_ACTIVE_TRANSACTION = "25P01"
ACTIVE_TRANSACTION = "25001"
INVALID_SAVEPOINT = "3B001"
UNDEFINED_OBJECT = "42704"
OBJECT_NOT_IN_STATE = "55000"

MSG_NO_TRANSACTION = "there is no transaction in progress"
MSG_ALREADY = "there is already a transaction in progress"
MSG_BLOCK_ONLY = "{statement} can only be used in transaction blocks"
MSG_NO_SAVEPOINT = 'savepoint "{name}" does not exist'
MSG_NO_PREPARED = 'prepared transaction with identifier "{name}" does not exist'
MSG_PREPARED_IN_BLOCK = "{statement} cannot run inside a transaction block"
MSG_PREPARE_DISABLED = "prepared transactions are disabled"
HINT_PREPARE_DISABLED = "Tally's data is read only: COMMIT (or ROLLBACK) the transaction"

_MODE = (
    r"(?:ISOLATION\s+LEVEL\s+(?:READ\s+COMMITTED|READ\s+UNCOMMITTED|REPEATABLE\s+READ|"
    r"SERIALIZABLE)|READ\s+ONLY|READ\s+WRITE|(?:NOT\s+)?DEFERRABLE)"
)
MODES = rf"(?:{_MODE}(?:\s*,?\s*{_MODE})*)?"
NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_END = r"\s*;?\s*$"
_BLOCK = r"(?:\s+(?:WORK|TRANSACTION))?"
_PATTERNS = (
    ("begin", re.compile(rf"^\s*(BEGIN){_BLOCK}\s*{MODES}{_END}", re.I)),
    ("begin", re.compile(rf"^\s*(START\s+TRANSACTION)\s*{MODES}{_END}", re.I)),
    ("commit", re.compile(rf"^\s*(COMMIT|END){_BLOCK}(?:\s+AND\s+(NO\s+)?(CHAIN))?{_END}", re.I)),
    (
        "rollback",
        re.compile(rf"^\s*(ROLLBACK|ABORT){_BLOCK}(?:\s+AND\s+(NO\s+)?(CHAIN))?{_END}", re.I),
    ),
    ("savepoint", re.compile(rf"^\s*(SAVEPOINT)\s+({NAME}){_END}", re.I)),
    ("release", re.compile(rf"^\s*(RELEASE)(?:\s+SAVEPOINT)?\s+({NAME}){_END}", re.I)),
    ("rollback_to", re.compile(rf"^\s*(ROLLBACK){_BLOCK}\s+TO(?:\s+SAVEPOINT)?\s+({NAME}){_END}", re.I)),
    ("prepared", re.compile(r"^\s*(COMMIT\s+PREPARED|ROLLBACK\s+PREPARED)\s+'((?:[^']|'')*)'" + _END, re.I)),
    ("prepare", re.compile(r"^\s*(PREPARE\s+TRANSACTION)\s+'((?:[^']|'')*)'" + _END, re.I)),
)  # fmt: skip
# Statements that start like a transaction statement: one no pattern reads is a syntax
# error, not another statement (``PREPARE name AS …`` is not one of them).
_LEADING = re.compile(
    r"^\s*(?:BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION)\b",
    re.I,
)
# The command tag per leading keyword (END commits, ABORT rolls back).
_TAGS = {"BEGIN": "BEGIN", "START TRANSACTION": "START TRANSACTION", "COMMIT": "COMMIT",
         "END": "COMMIT", "ROLLBACK": "ROLLBACK", "ABORT": "ROLLBACK"}  # fmt: skip


@dataclass(frozen=True)
class TxStatement:
    """One transaction statement: what it does and the words it was written with."""

    action: (
        str  # begin | commit | rollback | savepoint | release | rollback_to | prepared | prepare
    )
    keyword: str  # the leading keyword(s), upper case and single-spaced: "ROLLBACK", "END"
    chain: bool = False
    name: str = ""  # a savepoint's name (case-folded unless quoted) or a prepared identifier

    @property
    def exits_failed_block(self) -> bool:
        """Whether PostgreSQL runs it in a failed block (IsTransactionExitStmt)."""
        return self.action in ("commit", "rollback", "rollback_to", "prepare")


@dataclass(frozen=True)
class TxStep:
    """The outcome of a transaction statement: new status and savepoints, the tag, and a
    warning to send first (SQLSTATE, text) if PostgreSQL sends one."""

    status: str
    savepoints: tuple[str, ...]
    tag: str
    warning: tuple[str, str] | None = None


def transaction_statement(text: str) -> TxStatement | None:
    """The transaction statement of one statement's text, or None for anything else.

    Raises:
        SqlApiError: a statement that starts like one but is none (42601).

    Example:
        >>> transaction_statement("rollback work and chain")
        TxStatement(action='rollback', keyword='ROLLBACK', chain=True, name='')
        >>> transaction_statement('RELEASE SAVEPOINT "Sp1"').name
        'Sp1'
        >>> transaction_statement("SELECT 1") is None
        True
    """
    if _LEADING.match(text) is None:
        return None
    for action, pattern in _PATTERNS:
        match = pattern.match(text)
        if match is None:
            continue
        keyword = " ".join(match.group(1).upper().split())
        if action in ("commit", "rollback"):
            return TxStatement(action, keyword, chain=bool(match.group(3)) and not match.group(2))
        if action in ("savepoint", "release", "rollback_to"):
            return TxStatement(action, keyword, name=identifier_name(match.group(2)))
        if action in ("prepared", "prepare"):
            return TxStatement(action, keyword, name=match.group(2).replace("''", "'"))
        return TxStatement(action, keyword)
    first = " ".join(text.split()[:3])
    raise SqlApiError(f"syntax error at or near {first!r}", sqlstate=SYNTAX_ERROR)


def identifier_name(text: str) -> str:
    """A name as PostgreSQL reads it: case-folded unless double-quoted."""
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text.lower()


def transaction_step(status: str, savepoints: tuple[str, ...], stmt: TxStatement) -> TxStep:
    """What ``stmt`` does in a session whose status is ``status`` (I, T or E).

    A failed block (E) takes only statements that end it or roll back to a savepoint; the
    caller refuses the others with 25P02 before calling this, as PostgreSQL does.

    Raises:
        SqlApiError: PostgreSQL's error for the statement in this state (25P01, 3B001,
            42704, 25001, 55000).

    Example:
        >>> stmt = transaction_statement("COMMIT")
        >>> transaction_step("E", (), stmt)
        TxStep(status='I', savepoints=(), tag='ROLLBACK', warning=None)
        >>> transaction_step("I", (), stmt).warning
        ('25P01', 'there is no transaction in progress')
    """
    in_block = status in ("T", "E")
    action = stmt.action
    if action == "begin":
        tag = _TAGS[stmt.keyword]
        if in_block:
            return TxStep(status, savepoints, tag, (ACTIVE_TRANSACTION, MSG_ALREADY))
        return TxStep("T", (), tag)
    if action in ("commit", "rollback"):
        # A failed block cannot commit: PostgreSQL rolls it back and says so in the tag.
        tag = "ROLLBACK" if status == "E" else _TAGS[stmt.keyword]
        if not in_block:
            if stmt.chain:
                statement = f"{_TAGS[stmt.keyword]} AND CHAIN"
                raise SqlApiError(
                    MSG_BLOCK_ONLY.format(statement=statement), sqlstate=NO_ACTIVE_TRANSACTION
                )
            return TxStep("I", (), tag, (NO_ACTIVE_TRANSACTION, MSG_NO_TRANSACTION))
        return TxStep("T" if stmt.chain else "I", (), tag)
    if action in ("prepared", "prepare"):
        if action == "prepare":
            raise SqlApiError(
                MSG_PREPARE_DISABLED, sqlstate=OBJECT_NOT_IN_STATE, hint=HINT_PREPARE_DISABLED
            )
        if in_block:
            message = MSG_PREPARED_IN_BLOCK.format(statement=stmt.keyword)
            raise SqlApiError(message, sqlstate=ACTIVE_TRANSACTION)
        raise SqlApiError(MSG_NO_PREPARED.format(name=stmt.name), sqlstate=UNDEFINED_OBJECT)
    statement = {"savepoint": "SAVEPOINT", "release": "RELEASE SAVEPOINT"}.get(
        action, "ROLLBACK TO SAVEPOINT"
    )
    if not in_block:
        raise SqlApiError(
            MSG_BLOCK_ONLY.format(statement=statement), sqlstate=NO_ACTIVE_TRANSACTION
        )
    if action == "savepoint":
        return TxStep(status, (*savepoints, stmt.name), "SAVEPOINT")
    if stmt.name not in savepoints:
        raise SqlApiError(MSG_NO_SAVEPOINT.format(name=stmt.name), sqlstate=INVALID_SAVEPOINT)
    # The innermost savepoint of that name: RELEASE drops it and the newer ones, ROLLBACK TO
    # keeps it (it can be rolled back to again) and leaves the failed state.
    index = len(savepoints) - 1 - savepoints[::-1].index(stmt.name)
    if action == "release":
        return TxStep(status, savepoints[:index], "RELEASE")
    return TxStep("T", savepoints[: index + 1], "ROLLBACK")
