"""The SQL API's connection state and error shapes: server settings, prepared statements,
portals, results, the SQLSTATEs it answers with, and how Tally's errors map onto them."""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlglot import exp

from semantic.sqlapi import wire
from semantic.sqlapi.translate import SYNTAX_ERROR, MappedQuery
from tally.errors import TallyError, UserError, WarehouseError, error_body

log = logging.getLogger("semantic.sqlapi.server")

QUERY_CANCELED = "57014"
IDLE_SESSION_TIMEOUT = "57P05"
PROGRAM_LIMIT = "54000"
TOO_MANY_CONNECTIONS = "53300"
OUT_OF_MEMORY = "53200"
CONFIGURATION_LIMIT = "53400"
INVALID_PASSWORD = "28P01"
INVALID_AUTHORIZATION = "28000"
PROTOCOL_VIOLATION = "08P01"
IN_FAILED_TRANSACTION = "25P02"
INTERNAL_ERROR = "XX000"

MSG_CANCELED = "canceling statement due to user request"
MSG_TIMEOUT = "canceling statement due to statement timeout"
MSG_ROW_CAP = "the result has more than {cap:,} rows (TALLY_SQL_ROW_CAP)"
HINT_ROW_CAP = "add a LIMIT, a coarser time grain or a WHERE"
MSG_IN_FAILED = "current transaction is aborted, commands ignored until end of transaction block"
MSG_AUTH_TIMEOUT = "canceling authentication due to timeout"
MSG_IDLE_TIMEOUT = "terminating connection due to idle-session timeout"
MSG_TOO_MANY_UNAUTH = "too many unauthenticated connections from {address}"
MSG_TOO_MANY_UNAUTH_TOTAL = "too many unauthenticated connections"
MSG_QUERY_TOO_LONG = "the query text has {size:,} bytes; the limit is {limit:,}"
HINT_QUERY_TOO_LONG = (
    "send a shorter query (fewer literals or IN-list items, or a saved query); the limit "
    "is TALLY_SQL_MAX_QUERY_BYTES"
)

_UNDEFINED_CODES = {"unknown_metric", "unknown_dimension", "unreachable_dimension"}
STREAM_BATCH = 2_000


@dataclass(frozen=True)
class ServerConfig:
    """What ``tally serve-sql`` is started with (settings ``TALLY_SQL_*``).

    Attributes:
        max_connections: authenticated sessions at once (past it: FATAL 53300).
        auth_timeout_s: a connection must finish startup and authentication within this.
        idle_timeout_s: an authenticated session waiting this long for a message is closed.
        max_unauth_per_address: connections not yet authenticated, per client address.
        max_unauth: connections not yet authenticated, in total; neither cap takes a slot
            of ``max_connections``.
        max_query_bytes: the longest query text (simple Query or Parse) read; longer is
            refused before parsing (54000).
        catalog_timeout_s: a catalog query's timeout (the lower of it and ``timeout_s``).
        recheck_s: a session's roles (grants) and principal are derived again before a
            statement once the last such check is this old; the token or user row itself is
            read again before every metric query.
        exec_slots, exec_queue, exec_wait_s: the execution pool (see ``pool``).
        warehouse_idle_s: a DuckDB warehouse file stays open between metric queries and
            is closed once none has run for this long (semantic.warehouse.held).
    """

    host: str = "127.0.0.1"
    port: int = 5433
    tls_cert: str | None = None
    tls_key: str | None = None
    row_cap: int = 1_000_000
    timeout_s: float = 120.0
    max_connections: int = 200
    auth_timeout_s: float = 10.0
    idle_timeout_s: float = 900.0
    max_unauth_per_address: int = 32
    max_unauth: int = 128
    max_query_bytes: int = 100_000
    catalog_timeout_s: float = 10.0
    recheck_s: float = 1.0
    # The execution pool (semantic/sqlapi/pool.py): metric queries running at once, how
    # many more may wait (past it: 53300), and how long one waits (past it: 57014).
    exec_slots: int = 4
    exec_queue: int = 64
    exec_wait_s: float = 30.0
    warehouse_idle_s: float = 2.0


# Parameter sets one prepared statement keeps mapped (a dashboard's filter values).
MEMO_ENTRIES = 32


class MappedMemo:
    """A prepared statement's SELECT on tally.metrics as mapped (parameters bound, BI
    rewrites, mapped onto a MetricQuery) for each set of parameter values it ran with, on
    one release's table.

    Mapping is a pure function of the statement, the values and the table: the principal
    enters only at the compile, which runs on every Execute with the access check, the rate
    limit, the audit row and the result-cache key. A repeat Execute (asyncpg, pgjdbc and
    psycopg's prepared statements send only Bind and Execute) skips the mapping; a table of
    another release (a publish since) finds nothing and starts the memo afresh.
    """

    def __init__(self) -> None:
        self._table: object | None = None
        self._entries: dict[tuple[tuple[type, str], ...], MappedQuery] = {}

    def get(self, table: object, params: Sequence[Any]) -> MappedQuery | None:
        if table is not self._table:
            return None
        return self._entries.get(params_key(params))

    def put(self, table: object, params: Sequence[Any], mapped: MappedQuery) -> None:
        if table is not self._table:
            self._table = table
            self._entries = {}
        elif len(self._entries) >= MEMO_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self._entries[params_key(params)] = mapped


def params_key(params: Sequence[Any]) -> tuple[tuple[type, str], ...]:
    """Bound values as the literals they become (translate.literal): type and text, since
    1, 1.0, True and Decimal('1.00') compare equal but bind as different SQL.

    Example:
        >>> params_key([1, True, "1"])
        ((<class 'int'>, '1'), (<class 'bool'>, 'True'), (<class 'str'>, '1'))
    """
    return tuple((type(value), str(value)) for value in params)


@dataclass
class Prepared:
    sql: str
    trees: list[exp.Expr]
    param_oids: list[int]
    memo: MappedMemo = field(default_factory=MappedMemo)


@dataclass
class Portal:
    prepared: Prepared
    params: list[Any]
    result: Result | None = None
    sent: int = 0
    # Result format codes from Bind (see row_encoders).
    formats: tuple[int, ...] = ()


@dataclass
class Result:
    """A statement's answer: a command tag, or rows (fields + an iterator of rows of Python
    values, encoded at send time in the format the client bound: text or binary)."""

    tag: str
    fields: list[wire.Field] | None = None
    rows: Iterator[Sequence[Any]] | None = None
    buffered: list[Sequence[Any]] = field(default_factory=list)
    # A WARNING sent before the tag (SQLSTATE, text): COMMIT with no transaction in progress.
    notice: tuple[str, str] | None = None


def row_encoders(
    fields: Sequence[wire.Field], formats: Sequence[int] = ()
) -> list[Callable[[Any], bytes | None]]:
    """Per column, the encoder of the format a Bind asked for (none: text; one code: every
    column; else one per column, as the protocol says).

    Raises:
        SqlError: a format code other than 0/1, or a count that matches neither rule.
    """
    if len(formats) > 1 and len(formats) != len(fields):
        raise SqlError(
            PROTOCOL_VIOLATION,
            f"bind message has {len(formats)} result formats but query has {len(fields)} columns",
        )
    codes = list(formats) if len(formats) > 1 else [formats[0] if formats else 0] * len(fields)
    for code in codes:
        if code not in (0, 1):
            raise SqlError(PROTOCOL_VIOLATION, f"unsupported format code: {code}")
    return [wire.encoder(f.type_oid, code) for f, code in zip(fields, codes, strict=True)]


@dataclass
class Cursor:
    """A DECLAREd cursor: its whole (row-capped) result, read forward by FETCH."""

    fields: list[wire.Field]
    rows: list[Sequence[Any]]
    hold: bool
    position: int = 0


class SqlError(Exception):
    """Rendered as an ErrorResponse; the connection goes on."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint


class Fatal(Exception):
    """Rendered as a FATAL ErrorResponse; the connection is closed."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message


class Backend(Protocol):
    """What a connection asks of its server (semantic.sqlapi.server.SqlServer)."""

    config: ServerConfig
    tls: ssl.SSLContext | None

    def register(self, conn: Any) -> tuple[int, int]: ...

    def authenticated(self, conn: Any) -> None: ...

    def cancel(self, pid: int, secret: int) -> None: ...


def duckdb_sqlstate(exc: Exception) -> str:
    import duckdb

    if isinstance(exc, duckdb.CatalogException):
        return "42P01"
    if isinstance(exc, duckdb.BinderException):
        return "42703"
    if isinstance(exc, duckdb.ParserException):
        return SYNTAX_ERROR
    if isinstance(exc, duckdb.PermissionException):
        return "42501"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return OUT_OF_MEMORY
    if isinstance(exc, duckdb.InvalidInputException) and "Division by zero" in str(exc):
        return DIVISION_BY_ZERO
    return "XX000"


DIVISION_BY_ZERO = "22012"
_DUCKDB_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


def duckdb_message(exc: Exception) -> str:
    # The catalog engine is an implementation detail: say it the way PostgreSQL does.
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    missing = _DUCKDB_MISSING_TABLE.search(first)
    if missing:
        return f'relation "{missing.group(1)}" does not exist'
    return re.sub(r"^\w+ Error: ", "", first)


def tally_sql_error(exc: TallyError) -> SqlError:
    if not isinstance(exc, UserError):
        log.error("sql api: internal error %s", exc)
        return SqlError(INTERNAL_ERROR, "internal error")
    if exc.code in _UNDEFINED_CODES:
        sqlstate = "42703"
    elif exc.code == "warehouse_timeout":
        sqlstate = QUERY_CANCELED
    elif exc.code == "warehouse_unavailable":
        sqlstate = "08006"
    elif exc.code == "warehouse_error" or isinstance(exc, WarehouseError):
        sqlstate = "58000"
    elif exc.code in ("bad_where", "bad_having"):
        sqlstate = SYNTAX_ERROR
    else:
        sqlstate = "22023"
    # The one renderer (tally.errors.error_body): a WarehouseError's own text never reaches a
    # SQL client, administrators included (they read it in the server log by reference).
    body = error_body(exc)
    return SqlError(sqlstate, body["message"], body["hint"])
