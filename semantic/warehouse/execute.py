"""Runs SQL on the warehouse through its DB-API driver and returns normalised rows.

One small layer over DuckDB, PostgreSQL (psycopg 3) and MySQL/MariaDB (PyMySQL), used by
``tally query``, the API and the jobs. Every call opens its own connection and closes it at
the end (no pool yet), streams rows from the cursor in batches, enforces a timeout and a
row cap, and turns driver errors into :class:`tally.errors.WarehouseError` with stable codes:

``warehouse_timeout``
    the query ran longer than ``timeout_s`` (server-side cancel, see below).
``warehouse_unavailable``
    the warehouse cannot be reached (connect failed, connection lost, missing DuckDB file).
``warehouse_error``
    the warehouse rejected the SQL; the message is the driver's first line and ``details``
    carries the dialect and the SHA-256 of the SQL, so logs can name a query without its text.

Streaming:
    PostgreSQL uses a server-side (named) cursor, so each batch is one ``FETCH FORWARD n``;
    MySQL/MariaDB use PyMySQL's unbuffered ``SSCursor``; DuckDB's ``fetchmany`` already
    pulls chunks from a streaming result. A consumer holds at most one batch in memory.

Timeouts (``timeout_s`` bounds the whole call: the query and the fetching of its rows):
    PostgreSQL ``SET statement_timeout`` (per statement, so each ``FETCH`` is bounded too);
    MariaDB ``SET SESSION max_statement_time`` (seconds) or MySQL ``max_execution_time``
    (milliseconds, SELECT only), whichever the server has; DuckDB ``con.interrupt()`` from a
    ``threading.Timer``. Between batches a wall-clock deadline is checked as well, so a
    slow consumer cannot keep a cursor open past the limit on any engine.

Value normalisation (the same on every engine, so results compare across engines):
    * ``DECIMAL``/``NUMERIC`` stay :class:`~decimal.Decimal`; integers stay ``int``; floats
      stay ``float``. Aggregates keep each engine's result type (``sum(bigint)`` is a
      Decimal on PostgreSQL and MySQL but an int on DuckDB; ``avg(decimal)`` is a float on
      DuckDB): use :func:`normalize_rows_for_compare` to compare numbers across engines.
    * dates stay :class:`~datetime.date`; timestamps become naive :class:`~datetime.datetime`
      in UTC (time-zone-aware values are converted; sessions run in UTC so that
      ``TIMESTAMP`` on MySQL and ``date_trunc`` on ``timestamptz`` are UTC too).
    * booleans become ``bool`` where the column type says boolean. MySQL/MariaDB have no
      boolean type: ``BOOLEAN`` is ``TINYINT(1)``, so a ``TINYINT(1)`` column is read as bool
      (Connector/J does the same) while a boolean *expression* (``a = b``) arrives as an
      integer column and is left as 0/1: we never guess on integer columns.
    * JSON is returned as its text (``str``) everywhere. PostgreSQL's ``jsonb`` text is
      canonicalised by the server (key order, spacing), so compare JSON after ``json.loads``.
    * UUIDs become ``str`` (MySQL has no UUID type); MySQL ``TIME`` (a timedelta in PyMySQL)
      becomes :class:`~datetime.time` when it is a time of day.

DuckDB files:
    A DuckDB file is opened read-only, so several processes (web workers, jobs) can read
    it at once. DuckDB refuses a second connection to a file with a *different*
    configuration in the same process, but hands out a connection to the cached database
    instance when the configuration is the same. So when this process already holds the
    file open read-write (the demo builder, a test, a job), the read-only open fails
    with ``ConnectionException`` and :func:`open_duckdb` retries with the default
    (read-write) configuration, which reuses that open database instance instead of failing.

This module is Django-free.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any, Literal, NoReturn

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable, connect, duckdb_user_connect
from tally.errors import TallyError, WarehouseError

__all__ = [
    "TIMEOUT_HINT",
    "TIMEOUT_MESSAGE",
    "UNAVAILABLE_HINT",
    "UNAVAILABLE_MESSAGE",
    "CancelScope",
    "Column",
    "ColumnKind",
    "QueryResult",
    "RowBatches",
    "execute",
    "normalize_rows_for_compare",
    "open_duckdb",
    "sql_hash",
    "stream",
]

Row = tuple[Any, ...]
Params = Sequence[Any] | Mapping[str, Any] | None
ColumnKind = Literal[
    "boolean",
    "integer",
    "decimal",
    "float",
    "text",
    "date",
    "timestamp",
    "time",
    "interval",
    "json",
    "binary",
    "other",
]

TIMEOUT_MESSAGE = "the query ran longer than {timeout_s:g} s and was cancelled"
TIMEOUT_HINT = "narrow the time range or the group-by, add a limit, or raise the timeout"
CANCELLED_MESSAGE = "the query was cancelled"
UNAVAILABLE_MESSAGE = "cannot reach the warehouse {url}: {reason}"
UNAVAILABLE_HINT = "check WAREHOUSE_URL and that the warehouse is running and reachable"

# Kept short: a default connect timeout for a warehouse that does not answer should not eat
# the whole query budget, and a healthy server answers in milliseconds.
_MAX_CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Column:
    """One result column.

    Attributes:
        name: the column name as the warehouse reports it.
        type_name: the engine's own type name (``DECIMAL(12,2)``, ``numeric``, ``NEWDECIMAL``).
        kind: the portable kind the values were normalised to.
    """

    name: str
    type_name: str
    kind: ColumnKind


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query, fully fetched and normalised.

    Attributes:
        columns: one :class:`Column` per value in a row.
        rows: tuples of normalised Python values, in the order the warehouse returned them.
        truncated: True when the row cap cut the result off (more rows existed).
        elapsed_s: wall-clock seconds from connecting to closing.
        row_count: ``len(rows)``.
    """

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    truncated: bool
    elapsed_s: float
    row_count: int


class CancelScope:
    """Lets another thread interrupt the query a :func:`stream` runs (a CancelRequest of
    the SQL API, a closed client). ``cancel()`` before the query starts interrupts it as
    soon as it does; ``requested`` tells the caller why its query failed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._interrupt: Callable[[], None] | None = None
        self.requested = False

    def bind(self, interrupt: Callable[[], None] | None) -> None:
        with self._lock:
            self._interrupt = interrupt
            requested = self.requested
        if requested and interrupt is not None:
            interrupt()

    def cancel(self) -> None:
        with self._lock:
            self.requested = True
            interrupt = self._interrupt
        if interrupt is not None:
            interrupt()


def sql_hash(sql: str) -> str:
    """SHA-256 of the SQL text, the id errors and logs carry instead of the SQL itself.

    Example:
        >>> sql_hash("SELECT 1")[:12]
        'e004ebd5b553'
    """
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


def execute(
    config: WarehouseConfig,
    sql: str,
    *,
    timeout_s: float = 60,
    row_cap: int = 1_000_000,
    params: Params = None,
    variables: Mapping[str, str] | None = None,
) -> QueryResult:
    """Runs one query and returns all its rows (up to ``row_cap``), normalised.

    Built on :func:`stream`; see the module docstring for timeouts and value normalisation.

    Args:
        config: the warehouse (parsed ``WAREHOUSE_URL``).
        sql: one statement that returns rows (on PostgreSQL it runs inside
            ``DECLARE … CURSOR FOR``, so it must be a query: SELECT, WITH, VALUES, TABLE).
        timeout_s: limit on the whole call, in seconds.
        row_cap: most rows returned; ``truncated`` says whether more existed.
        params: bind parameters in the driver's paramstyle (``%s`` for PostgreSQL and
            MySQL, ``?`` or ``$1`` for DuckDB); None sends the SQL as written.
        variables: session variables the SQL reads (e.g. ``tally_pii_salt``, see
            semantic.compiler.policies), set with bound parameters before it runs, so
            their values appear in no SQL text.

    Returns:
        The :class:`QueryResult`.

    Raises:
        WarehouseError: ``warehouse_timeout``, ``warehouse_unavailable`` or ``warehouse_error``.
        ValueError: a limit is out of range.

    Example:
        >>> memory = WarehouseConfig(engine="duckdb", dialect="duckdb", path=":memory:")
        >>> result = execute(memory, "SELECT 2 AS n, 1.50::DECIMAL(12, 2) AS amount, TRUE AS ok")
        >>> [(c.name, c.kind) for c in result.columns]
        [('n', 'integer'), ('amount', 'decimal'), ('ok', 'boolean')]
        >>> result.rows, result.truncated
        (((2, Decimal('1.50'), True),), False)
        >>> execute(memory, "SELECT * FROM range(5)", row_cap=3).truncated
        True
    """
    started = time.perf_counter()
    with stream(
        config,
        sql,
        timeout_s=timeout_s,
        row_cap=row_cap,
        batch_size=10_000,
        params=params,
        variables=variables,
    ) as (columns, batches):
        rows = tuple(row for batch in batches for row in batch)
    return QueryResult(
        columns=columns,
        rows=rows,
        truncated=batches.truncated,
        elapsed_s=time.perf_counter() - started,
        row_count=len(rows),
    )


@contextmanager
def stream(
    config: WarehouseConfig,
    sql: str,
    *,
    timeout_s: float = 60,
    row_cap: int = 1_000_000,
    batch_size: int = 10_000,
    params: Params = None,
    variables: Mapping[str, str] | None = None,
    cancel: CancelScope | None = None,
) -> Iterator[tuple[tuple[Column, ...], RowBatches]]:
    """Runs one query and yields its columns and an iterator of row batches.

    Rows come from the cursor ``batch_size`` at a time (a server-side cursor on
    PostgreSQL, an unbuffered cursor on MySQL), so memory holds one batch, not the result.
    Leaving the block early (break, exception) cancels the rest of the result without
    reading it. After iterating, ``batches.truncated`` tells whether the row cap cut the
    result off and ``batches.row_count`` how many rows were yielded.

    Args:
        config: the warehouse.
        sql: one query (see :func:`execute`).
        timeout_s: limit on the whole call, fetching included.
        row_cap: most rows yielded in total.
        batch_size: rows per fetch and per yielded batch (the last may be shorter).
        params: bind parameters in the driver's paramstyle.
        variables: session variables to set first (see :func:`execute`).
        cancel: lets another thread interrupt the query (and the fetching of its rows).

    Yields:
        ``(columns, batches)``: a tuple of :class:`Column` and a :class:`RowBatches`.

    Raises:
        WarehouseError: on connect and execute here, and from iterating ``batches``.
        ValueError: a limit is out of range.

    Example:
        >>> memory = WarehouseConfig(engine="duckdb", dialect="duckdb", path=":memory:")
        >>> with stream(memory, "SELECT * FROM range(5) AS t(i)", batch_size=2) as (cols, batches):
        ...     sizes = [len(batch) for batch in batches]
        >>> cols[0].name, sizes, batches.truncated
        ('i', [2, 2, 1], False)
    """
    _check_limits(timeout_s=timeout_s, row_cap=row_cap, batch_size=batch_size)
    context = _ErrorContext(config=config, sql_hash=sql_hash(sql), timeout_s=timeout_s)
    session = _session_for(config, timeout_s)
    session.variables = _checked_variables(variables)
    deadline = time.monotonic() + timeout_s
    batches: RowBatches | None = None
    try:
        try:
            session.open()
        except WarehouseUnavailable as exc:
            raise context.unavailable(str(exc)) from exc
        except Exception as exc:
            context.reraise(session, exc)
        if cancel is not None:
            cancel.bind(session.interrupt)
            # interrupt() on an idle connection does nothing: a cancel that came first wins here.
            if cancel.requested:
                raise WarehouseError(CANCELLED_MESSAGE, code="warehouse_cancelled")
        try:
            session.run(_strip_terminator(sql), params)
            columns = session.describe()
        except Exception as exc:
            context.reraise(session, exc)
        batches = RowBatches(
            session,
            _row_converter(session.converters(columns)),
            context=context,
            row_cap=row_cap,
            batch_size=batch_size,
            deadline=deadline,
        )
        yield columns, batches
    finally:
        if cancel is not None:
            cancel.bind(None)
        if batches is not None:
            batches._closed = True
        session.close(drained=batches is not None and batches._drained)


class RowBatches(Iterator[tuple[Row, ...]]):
    """Batches of normalised rows from an open cursor; usable only inside :func:`stream`.

    Attributes:
        row_count: rows yielded so far.
        truncated: True once the row cap stopped the iteration while rows remained.
    """

    def __init__(
        self,
        session: _Session,
        convert: Callable[[Sequence[Row]], tuple[Row, ...]],
        *,
        context: _ErrorContext,
        row_cap: int,
        batch_size: int,
        deadline: float,
    ) -> None:
        self._session = session
        self._convert = convert
        self._context = context
        self._row_cap = row_cap
        self._batch_size = batch_size
        self._deadline = deadline
        self._done = False
        self._drained = False
        self._closed = False
        self.row_count = 0
        self.truncated = False

    def __iter__(self) -> RowBatches:
        return self

    def __next__(self) -> tuple[Row, ...]:
        if self._done:
            raise StopIteration
        if self._closed:
            raise RuntimeError("the stream is closed; iterate inside the `with stream(...)` block")
        remaining = self._row_cap - self.row_count
        if remaining <= 0:
            # Peek one row: a result of exactly row_cap rows is complete, not truncated.
            self.truncated = bool(self._fetch(1))
            self._done = True
            self._drained = not self.truncated
            raise StopIteration
        rows = self._fetch(min(self._batch_size, remaining))
        if not rows:
            # Only an empty fetch ends the result: a driver may legally return short batches.
            self._done = self._drained = True
            raise StopIteration
        self.row_count += len(rows)
        return self._convert(rows)

    def _fetch(self, size: int) -> Sequence[Row]:
        # Checked before each fetch, not after: rows already received are never thrown away.
        if time.monotonic() > self._deadline:
            self._done = True
            raise self._context.timeout()
        try:
            return self._session.fetch(size)
        except Exception as exc:
            self._done = True
            self._context.reraise(self._session, exc)


def normalize_rows_for_compare(
    rows: Iterable[Sequence[Any]], *, float_digits: int = 10
) -> tuple[Row, ...]:
    """Puts numbers in one canonical form so rows from different engines compare equal.

    Every int, float and Decimal (not bool) becomes a float rounded to ``float_digits``
    significant digits: ``Decimal('3.50')``, ``3.5`` and ``Decimal('3.5000000000001')`` are
    all ``3.5``, and ``sum()`` as a DuckDB int equals the same sum as a PostgreSQL Decimal.
    ``-0.0`` becomes ``0.0``. NaN becomes one shared NaN object: NaN is never ``==`` to
    itself, but tuple and list equality check identity first, so rows holding NaN in the
    same place compare equal. Other values are left as they are.

    Args:
        rows: rows from :func:`execute` (or any sequences of values).
        float_digits: significant digits kept.

    Returns:
        The rows as tuples, numbers replaced.

    Example:
        >>> a = normalize_rows_for_compare([(Decimal("3.50"), 7, -0.0, float("nan"), "x")])
        >>> b = normalize_rows_for_compare([(3.5000000000004, Decimal("7"), 0.0, Decimal("NaN"), "x")])
        >>> a == b, a[0][:3]
        (True, (3.5, 7.0, 0.0))
    """
    if float_digits < 1:
        raise ValueError(f"float_digits must be at least 1, got {float_digits}")
    return tuple(tuple(_canonical_number(value, float_digits) for value in row) for row in rows)


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
    name = os.fspath(path)
    # Security hook (issue 18): user connections, no external access, configuration locked.
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


# --- errors ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ErrorContext:
    """What every WarehouseError of one call carries."""

    config: WarehouseConfig
    sql_hash: str
    timeout_s: float

    @property
    def details(self) -> dict[str, Any]:
        return {"dialect": self.config.dialect, "sql_hash": self.sql_hash}

    def timeout(self) -> Exception:
        return WarehouseError(
            TIMEOUT_MESSAGE.format(timeout_s=self.timeout_s),
            code="warehouse_timeout",
            hint=TIMEOUT_HINT,
            details=self.details,
        )

    def unavailable(self, reason: str) -> Exception:
        return WarehouseError(
            UNAVAILABLE_MESSAGE.format(url=self.config.display_url, reason=_first_line(reason)),
            code="warehouse_unavailable",
            hint=UNAVAILABLE_HINT,
            details=self.details,
        )

    def reraise(self, session: _Session, exc: Exception) -> NoReturn:
        """Raises the WarehouseError for a driver error, or ``exc`` itself for anything else."""
        translated = self.translate(session, exc)
        if translated is exc:
            raise exc
        raise translated from exc

    def translate(self, session: _Session, exc: Exception) -> Exception:
        """The WarehouseError for a driver error; anything else is returned unchanged."""
        if isinstance(exc, TallyError):
            return exc
        verdict = session.classify(exc)
        if verdict is None:
            return exc
        if verdict == "timeout":
            return self.timeout()
        if verdict == "unavailable":
            return self.unavailable(session.message(exc))
        details = self.details
        code = session.driver_code(exc)
        if code is not None:
            details["driver_code"] = code
        return WarehouseError(
            _first_line(session.message(exc)), code="warehouse_error", details=details
        )


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown warehouse error"


# --- engine sessions ---------------------------------------------------------------------

Verdict = Literal["timeout", "unavailable", "error"]


_VARIABLE_NAME = re.compile(r"^tally_[a-z_]+$")


def _checked_variables(variables: Mapping[str, str] | None) -> dict[str, str]:
    # Names go into SET statements as identifiers: only Tally's own, fixed names.
    for name in variables or {}:
        if not _VARIABLE_NAME.match(name):
            raise ValueError(f"not a Tally session variable: {name!r}")
    return dict(variables or {})


class _Session:
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
        return [_utc_naive if c.kind == "timestamp" else None for c in columns]

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


class _DuckDBSession(_Session):
    """DuckDB: read-only connection, interrupt from a timer thread on timeout."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.timed_out = False
        self.timer: threading.Timer | None = None

    def open(self) -> None:
        assert self.config.path is not None
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
        # TimeZone is UTC for the whole (locked) instance: see duckdb_user_connect.
        for name, value in self.variables.items():
            self.conn.execute(f"SET VARIABLE {name} = $1", [value])
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
            _to_str if c.type_name == "UUID" else _utc_naive if c.kind == "timestamp" else None
            for c in columns
        ]

    def classify(self, exc: Exception) -> Verdict | None:
        if isinstance(exc, duckdb.InterruptException) and self.timed_out:
            return "timeout"
        if isinstance(exc, duckdb.Error):
            return "error"
        return None

    def close(self, *, drained: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
        # Closing discards an unread streaming result; nothing to drain.
        super().close(drained=drained)


class _PostgresSession(_Session):
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


class _MySQLSession(_Session):
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
        by_kind: dict[str, Callable[[Any], Any]] = {"boolean": bool, "time": _time_of_day}
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


_SESSIONS: dict[str, type[_Session]] = {
    "duckdb": _DuckDBSession,
    "postgresql": _PostgresSession,
    "mysql": _MySQLSession,
}


def _session_for(config: WarehouseConfig, timeout_s: float) -> _Session:
    try:
        return _SESSIONS[config.engine](config, timeout_s)
    except KeyError:
        raise ValueError(
            f"no execution support for warehouse engine {config.engine!r}; "
            f"supported: {', '.join(sorted(_SESSIONS))}"
        ) from None


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


# --- value normalisation -----------------------------------------------------------------


def _utc_naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _to_str(value: Any) -> Any:
    return str(value)


def _time_of_day(value: Any) -> Any:
    # PyMySQL returns TIME as a timedelta because MySQL TIME is a duration (-838h..838h);
    # only values within one day are times of day, the rest stay durations.
    if isinstance(value, timedelta) and timedelta(0) <= value < timedelta(days=1):
        return (datetime.min + value).time()
    return value


def _row_converter(
    converters: list[Callable[[Any], Any] | None],
) -> Callable[[Sequence[Row]], tuple[Row, ...]]:
    """A function turning a fetched batch into normalised row tuples."""
    active = [(i, fn) for i, fn in enumerate(converters) if fn is not None]
    if not active:
        # The common case (integers, decimals, text, naive timestamps) costs one tuple().
        return lambda batch: tuple(tuple(row) for row in batch)

    def convert(batch: Sequence[Row]) -> tuple[Row, ...]:
        out = []
        for row in batch:
            values = list(row)
            for i, fn in active:
                if values[i] is not None:
                    values[i] = fn(values[i])
            out.append(tuple(values))
        return tuple(out)

    return convert


_NAN = float("nan")


def _canonical_number(value: Any, digits: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return _NAN
        if math.isinf(value):
            return value
        # repr() is the shortest text that round-trips, so 0.1 compares as Decimal('0.1')
        # rather than as 0.1000000000000000055…, which would round differently at a tie.
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if value.is_nan():
            return _NAN
        if value.is_infinite():
            return float(value)
        number = value
    else:
        number = Decimal(value)
    if number.is_zero():
        return 0.0
    quantum = Decimal(1).scaleb(number.adjusted() - digits + 1)
    # quantize() fails when the result needs more digits than the context allows.
    with localcontext() as context:
        context.prec = max(context.prec, digits + 2)
        return float(number.quantize(quantum))


def _check_limits(*, timeout_s: float, row_cap: int, batch_size: int) -> None:
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if row_cap < 0:
        raise ValueError(f"row_cap must be at least 0, got {row_cap}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def _strip_terminator(sql: str) -> str:
    """Drops trailing semicolons: PostgreSQL wraps the query in DECLARE … CURSOR FOR."""
    return sql.rstrip().rstrip(";").rstrip()
