"""One engine session per warehouse engine: connect, run one query, describe, fetch, classify.

DuckDB, PostgreSQL (a named cursor) and MySQL/MariaDB (an unbuffered cursor); see the module
docstring of :mod:`semantic.warehouse.execute` for streaming, timeouts and DuckDB files.

This module is Django-free.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable, connect, duckdb_user_connect
from semantic.warehouse.results import Column, ColumnKind, Params, Row, Verdict
from semantic.warehouse.values import time_of_day, to_str, utc_naive

if TYPE_CHECKING:
    # Imported where a DuckDB connection opens: `tally compile` and the other commands that
    # never query load no DuckDB (~80 ms).
    import duckdb

# Kept short: a default connect timeout for a warehouse that does not answer should not eat
# the whole query budget, and a healthy server answers in milliseconds.
_MAX_CONNECT_TIMEOUT_S = 10.0


def open_duckdb(path: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """Opens a DuckDB file for reading, sharing this process's read-write instance if any.

    Read-only first, so that other processes can read the same file at the same time;
    when this process already has the file open read-write, DuckDB refuses a read-only
    connection ("different configuration") but shares its cached instance with a
    connection of the same (default) configuration, so that is the fallback.

    Args:
        path: the DuckDB file, or ``":memory:"`` for a new empty in-memory database.

    Returns:
        An open connection; the caller closes it.

    Raises:
        WarehouseUnavailable: the file is missing, locked by another process, or unreadable.

    Example:
        >>> con = open_duckdb(":memory:")
        >>> con.execute("SELECT 42").fetchall()
        [(42,)]
        >>> con.close()
    """
    import duckdb

    name = os.fspath(path)
    # Least privilege (issue 18): user connections have no external access and a locked
    # configuration (connections.duckdb_user_connect).
    if name == ":memory:":
        return duckdb_user_connect(":memory:", read_only=False)
    if not os.path.exists(name):
        raise WarehouseUnavailable(
            f"DuckDB file {name} does not exist (run `tally generate-demo` or `tally demo` "
            "to build the demo warehouse)"
        )
    try:
        return duckdb_user_connect(name, read_only=True)
    except duckdb.ConnectionException:
        pass
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open DuckDB file {name}: {exc}") from exc
    try:
        return duckdb_user_connect(name, read_only=False)
    except duckdb.Error as exc:
        raise WarehouseUnavailable(f"cannot open DuckDB file {name}: {exc}") from exc


class HeldCursors(Protocol):
    """A database held open between queries (semantic.warehouse.held.HeldDuckDB)."""

    path: str

    def cursor(self) -> Any: ...

    def done(self) -> None: ...


_VARIABLE_NAME = re.compile(r"^tally_[a-z_]+$")


def checked_variables(variables: Mapping[str, str] | None) -> dict[str, str]:
    # Names go into SET statements as identifiers: only Tally's own, fixed names.
    for name in variables or {}:
        if not _VARIABLE_NAME.match(name):
            raise ValueError(f"not a Tally session variable: {name!r}")
    return dict(variables or {})


def duckdb_session_setup(conn: duckdb.DuckDBPyConnection, variables: Mapping[str, str]) -> None:
    """What every query on a DuckDB connection needs first: Tally's session variables
    (values bound, names checked), e.g. before the Arrow reader of semantic.streams. The
    instance is UTC and its configuration locked from the start (duckdb_user_connect)."""
    for name, value in checked_variables(variables).items():
        conn.execute(f"SET VARIABLE {name} = $1", [value])


class Session:
    """One connection running one query on one engine."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self.conn: Any = None
        self.cursor: Any = None
        # Session variables the query reads; values are only ever bound parameters.
        self.variables: dict[str, str] = {}

    def open(self) -> None:
        self.conn = connect(self.config, timeout_s=min(self.timeout_s, _MAX_CONNECT_TIMEOUT_S))

    def run(self, sql: str, params: Params) -> None:
        raise NotImplementedError

    def describe(self) -> tuple[Column, ...]:
        raise NotImplementedError

    def converters(self, columns: tuple[Column, ...]) -> list[Callable[[Any], Any] | None]:
        return [utc_naive if c.kind == "timestamp" else None for c in columns]

    def fetch(self, size: int) -> Sequence[Row]:
        return self.cursor.fetchmany(size)

    def classify(self, exc: Exception) -> Verdict | None:
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stops the running statement from another thread (best effort)."""

    def message(self, exc: Exception) -> str:
        return str(exc)

    def driver_code(self, exc: Exception) -> str | None:
        return None

    def close(self, *, drained: bool) -> None:
        if self.conn is not None:
            with suppress(Exception):
                self.conn.close()


class FirstRowSession(Session):
    """A session whose ``run`` fetched the first row early (Trino's and Snowflake's columns,
    and their errors, arrive with it): ``fetch`` hands that row out before reading more."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self._first: Sequence[Row] = ()

    def fetch(self, size: int) -> Sequence[Row]:
        first, self._first = self._first, ()
        if len(first) >= size:
            return first
        return [*first, *self.cursor.fetchmany(size - len(first))]


class DuckDBSession(Session):
    """DuckDB: read-only connection, interrupt from a timer thread on timeout."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.timed_out = False
        self.timer: threading.Timer | None = None
        # A database held open between queries (semantic.warehouse.held): this query gets
        # a cursor of it, a session of its own, instead of opening the file.
        self.held: HeldCursors | None = None
        self._leased = False

    def open(self) -> None:
        assert self.config.path is not None
        if self.held is not None:
            self.conn = self.held.cursor()
            self._leased = True
        else:
            self.conn = open_duckdb(self.config.path)

    def _interrupt(self) -> None:
        # Set the flag first: the InterruptException can surface before interrupt() returns.
        self.timed_out = True
        with suppress(Exception):
            self.conn.interrupt()

    def interrupt(self) -> None:
        with suppress(Exception):
            self.conn.interrupt()

    def run(self, sql: str, params: Params) -> None:
        duckdb_session_setup(self.conn, self.variables)
        self.timer = threading.Timer(self.timeout_s, self._interrupt)
        self.timer.daemon = True
        self.timer.start()
        if params is None:
            self.conn.execute(sql)
        else:
            self.conn.execute(sql, params)
        self.cursor = self.conn

    def describe(self) -> tuple[Column, ...]:
        return tuple(
            Column(name=name, type_name=str(type_code), kind=_duckdb_kind(str(type_code)))
            for name, type_code, *_ in self.cursor.description or ()
        )

    def converters(self, columns: tuple[Column, ...]) -> list[Callable[[Any], Any] | None]:
        return [
            to_str if c.type_name == "UUID" else utc_naive if c.kind == "timestamp" else None
            for c in columns
        ]

    def classify(self, exc: Exception) -> Verdict | None:
        import duckdb

        if isinstance(exc, duckdb.InterruptException) and self.timed_out:
            return "timeout"
        if isinstance(exc, duckdb.Error):
            return "error"
        return None

    def close(self, *, drained: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
        # Closing discards an unread streaming result; nothing to drain. A held database's
        # cursor is closed the same way (its variables go with it); the database stays.
        super().close(drained=drained)
        if self._leased:
            self._leased = False
            assert self.held is not None
            self.held.done()


class _PostgresSession(Session):
    """PostgreSQL: a named (server-side) cursor inside one transaction, UTC session."""

    def open(self) -> None:
        super().open()
        from psycopg.types.string import TextLoader

        # JSON and UUID arrive as their text, as on the other engines.
        for type_name in ("json", "jsonb", "uuid"):
            self.conn.adapters.register_loader(type_name, TextLoader)

    def interrupt(self) -> None:
        with suppress(Exception):
            self.conn.cancel_safe(timeout=5)

    def run(self, sql: str, params: Params) -> None:
        # The SETs open the transaction the named cursor needs; statement_timeout is
        # per statement, so it bounds the DECLARE and every FETCH separately.
        self.conn.execute("SET TimeZone TO 'UTC'")
        self.conn.execute(f"SET statement_timeout = {max(1, int(self.timeout_s * 1000))}")
        for name, value in self.variables.items():
            # Custom settings need a dotted name: tally_pii_salt → tally.pii_salt. Local to
            # the transaction the named cursor runs in.
            setting = name.replace("tally_", "tally.", 1)
            self.conn.execute("SELECT set_config(%s, %s, true)", (setting, value))
        self.cursor = self.conn.cursor(name=f"tally_{uuid.uuid4().hex[:16]}")
        self.cursor.execute(sql, params)

    def describe(self) -> tuple[Column, ...]:
        types = self.conn.adapters.types
        columns = []
        for column in self.cursor.description or ():
            info = types.get(column.type_code)
            type_name = info.name if info is not None else str(column.type_code)
            columns.append(Column(column.name, type_name, _POSTGRES_KINDS.get(type_name, "other")))
        return tuple(columns)

    def classify(self, exc: Exception) -> Verdict | None:
        import psycopg

        if isinstance(exc, psycopg.errors.QueryCanceled):
            return "timeout"
        if isinstance(exc, psycopg.OperationalError) and getattr(self.conn, "broken", False):
            return "unavailable"
        if isinstance(exc, psycopg.Error):
            return "error"
        return None

    def message(self, exc: Exception) -> str:
        # message_primary leaves out the "LINE 1: DECLARE … CURSOR FOR …" context, whose
        # caret points into our DECLARE wrapper rather than into the user's SQL.
        diag = getattr(exc, "diag", None)
        primary = getattr(diag, "message_primary", None)
        return primary or str(exc)

    def driver_code(self, exc: Exception) -> str | None:
        return getattr(exc, "sqlstate", None)


class _MySQLSession(Session):
    """MySQL/MariaDB: an unbuffered SSCursor, UTC session, server-side statement timeout."""

    def run(self, sql: str, params: Params) -> None:
        import pymysql.cursors

        setup = self.conn.cursor()
        try:
            # TIMESTAMP columns are converted to the session zone on the way out.
            setup.execute("SET SESSION time_zone = '+00:00'")
            self._set_timeout(setup)
            for name, value in self.variables.items():
                setup.execute(f"SET @{name} = %s", (value,))
        finally:
            setup.close()
        self.cursor = self.conn.cursor(pymysql.cursors.SSCursor)
        self.cursor.execute(sql, params)

    def _set_timeout(self, cursor: Any) -> None:
        import pymysql

        mariadb = "mariadb" in self.conn.get_server_info().lower()
        statements = [
            f"SET SESSION max_statement_time = {self.timeout_s:.3f}",  # MariaDB, seconds
            f"SET SESSION max_execution_time = {max(1, int(self.timeout_s * 1000))}",  # MySQL, ms
        ]
        for statement in statements if mariadb else statements[::-1]:
            try:
                cursor.execute(statement)
                return
            except pymysql.err.OperationalError as exc:
                # 1193: unknown system variable. A MySQL-protocol server with neither
                # (TiDB, older versions) still gets the client-side deadline.
                if exc.args[0] != 1193:
                    raise

    def describe(self) -> tuple[Column, ...]:
        columns = []
        for name, type_code, _display, internal_size, *_ in self.cursor.description or ():
            type_name = _MYSQL_TYPE_NAMES.get(type_code, str(type_code))
            kind = _MYSQL_KINDS.get(type_code, "other")
            # BOOLEAN is an alias of TINYINT(1); the display width is the only trace of it.
            if type_code == _MYSQL_TINY and internal_size == 1:
                type_name, kind = "TINY(1)", "boolean"
            columns.append(Column(name, type_name, kind))
        return tuple(columns)

    def converters(self, columns: tuple[Column, ...]) -> list[Callable[[Any], Any] | None]:
        by_kind: dict[str, Callable[[Any], Any]] = {"boolean": bool, "time": time_of_day}
        return [by_kind.get(c.kind) for c in columns]

    def classify(self, exc: Exception) -> Verdict | None:
        import pymysql

        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _MYSQL_TIMEOUT_CODES:
            return "timeout"
        if code in _MYSQL_CONNECTION_CODES or isinstance(exc, pymysql.err.InterfaceError):
            return "unavailable"
        if isinstance(exc, pymysql.Error):
            return "error"
        return None

    def message(self, exc: Exception) -> str:
        # PyMySQL errors are (code, message) pairs; str() would show the tuple.
        if len(exc.args) >= 2 and isinstance(exc.args[1], str):
            return exc.args[1]
        return str(exc)

    def driver_code(self, exc: Exception) -> str | None:
        return str(exc.args[0]) if exc.args and isinstance(exc.args[0], int) else None

    def close(self, *, drained: bool) -> None:
        if self.cursor is not None and not drained:
            # The protocol cannot stop an unbuffered result from the client: SSCursor.close()
            # and MySQLResult.__del__ would read and discard every remaining row (minutes for
            # a big result). Mark the result finished and drop the socket instead; the server
            # aborts the query on its next write. These two attributes are PyMySQL internals
            # (pinned version); without them the worst case is a slow drain, not wrong data.
            result = getattr(self.cursor, "_result", None)
            if result is not None and hasattr(result, "unbuffered_active"):
                result.unbuffered_active = False
        if self.cursor is not None:
            with suppress(Exception):
                self.cursor.close()
        super().close(drained=drained)


# The DB-API engines; semantic.warehouse.engines adds ClickHouse and Spark (session_for).
SESSIONS: dict[str, type[Session]] = {
    "duckdb": DuckDBSession,
    "postgresql": _PostgresSession,
    "mysql": _MySQLSession,
}


# --- type kinds ----------------------------------------------------------------------------

_DUCKDB_INTEGERS = "TINYINT SMALLINT INTEGER BIGINT HUGEINT UTINYINT USMALLINT UINTEGER UBIGINT"
_DUCKDB_TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS")
_DUCKDB_KINDS: dict[str, ColumnKind] = {
    "BOOLEAN": "boolean",
    **dict.fromkeys((*_DUCKDB_INTEGERS.split(), "UHUGEINT"), "integer"),
    "FLOAT": "float",
    "DOUBLE": "float",
    "VARCHAR": "text",
    "UUID": "text",
    "DATE": "date",
    **dict.fromkeys((*_DUCKDB_TIMESTAMPS, "TIMESTAMP_NS"), "timestamp"),
    "TIME": "time",
    "TIME WITH TIME ZONE": "time",
    "INTERVAL": "interval",
    "JSON": "json",
    "BLOB": "binary",
}


def _duckdb_kind(type_name: str) -> ColumnKind:
    if type_name.startswith("DECIMAL"):
        return "decimal"
    return _DUCKDB_KINDS.get(type_name, "other")


_POSTGRES_KINDS: dict[str, ColumnKind] = {
    "bool": "boolean",
    **dict.fromkeys(("int2", "int4", "int8", "oid"), "integer"),
    "numeric": "decimal",
    **dict.fromkeys(("float4", "float8"), "float"),
    **dict.fromkeys(("text", "varchar", "bpchar", "name", "char", "uuid"), "text"),
    "date": "date",
    **dict.fromkeys(("timestamp", "timestamptz"), "timestamp"),
    **dict.fromkeys(("time", "timetz"), "time"),
    "interval": "interval",
    **dict.fromkeys(("json", "jsonb"), "json"),
    "bytea": "binary",
}

# PyMySQL's FIELD_TYPE codes (pymysql.constants.FIELD_TYPE), spelled out to keep the
# import lazy. JSON (245) is MySQL only: MariaDB sends JSON columns as LONGTEXT (252).
_MYSQL_TINY = 1
_MYSQL_TYPES: dict[int, tuple[str, ColumnKind]] = {
    0: ("DECIMAL", "decimal"),
    1: ("TINY", "integer"),
    2: ("SHORT", "integer"),
    3: ("LONG", "integer"),
    4: ("FLOAT", "float"),
    5: ("DOUBLE", "float"),
    6: ("NULL", "other"),
    7: ("TIMESTAMP", "timestamp"),
    8: ("LONGLONG", "integer"),
    9: ("INT24", "integer"),
    10: ("DATE", "date"),
    11: ("TIME", "time"),
    12: ("DATETIME", "timestamp"),
    13: ("YEAR", "integer"),
    14: ("NEWDATE", "date"),
    15: ("VARCHAR", "text"),
    16: ("BIT", "binary"),
    245: ("JSON", "json"),
    246: ("NEWDECIMAL", "decimal"),
    247: ("ENUM", "text"),
    248: ("SET", "text"),
    249: ("TINY_BLOB", "text"),
    250: ("MEDIUM_BLOB", "text"),
    251: ("LONG_BLOB", "text"),
    252: ("BLOB", "text"),
    253: ("VAR_STRING", "text"),
    254: ("STRING", "text"),
    255: ("GEOMETRY", "binary"),
}
_MYSQL_TYPE_NAMES = {code: name for code, (name, _) in _MYSQL_TYPES.items()}
_MYSQL_KINDS = {code: kind for code, (_, kind) in _MYSQL_TYPES.items()}
# 1969 ER_STATEMENT_TIMEOUT (MariaDB max_statement_time), 3024 ER_QUERY_TIMEOUT (MySQL).
_MYSQL_TIMEOUT_CODES = frozenset({1969, 3024})
# 2003 can't connect, 2006 server gone away, 2013 lost connection, 2055 lost (SSL/other).
_MYSQL_CONNECTION_CODES = frozenset({2003, 2006, 2013, 2055})
