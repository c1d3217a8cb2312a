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

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable
from semantic.warehouse.engines import session_for
from semantic.warehouse.results import (
    CANCELLED_MESSAGE,
    TIMEOUT_HINT,
    TIMEOUT_MESSAGE,
    UNAVAILABLE_HINT,
    UNAVAILABLE_MESSAGE,
    Column,
    ColumnKind,
    ErrorContext,
    Params,
    QueryResult,
    Row,
    sql_hash,
)
from semantic.warehouse.sessions import (
    DuckDBSession,
    HeldCursors,
    Session,
    checked_variables,
    open_duckdb,
)
from semantic.warehouse.values import normalize_rows_for_compare, row_converter
from tally.errors import WarehouseError

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


def execute(
    config: WarehouseConfig,
    sql: str,
    *,
    timeout_s: float = 60,
    row_cap: int = 1_000_000,
    params: Params = None,
    variables: Mapping[str, str] | None = None,
    held: HeldCursors | None = None,
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
        held: a DuckDB database held open for this file (see :func:`stream`).

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
        held=held,
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
    held: HeldCursors | None = None,
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
        held: a DuckDB database held open (semantic.warehouse.held) for this file: the
            query runs on a cursor of it rather than on a connection opened for it.

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
    context = ErrorContext(config=config, sql_hash=sql_hash(sql), timeout_s=timeout_s)
    session = session_for(config, timeout_s)
    session.variables = checked_variables(variables)
    if held is not None and isinstance(session, DuckDBSession) and held.path == config.path:
        session.held = held
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
            row_converter(session.converters(columns)),
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
        session: Session,
        convert: Callable[[Sequence[Row]], tuple[Row, ...]],
        *,
        context: ErrorContext,
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
