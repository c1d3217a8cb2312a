"""Query sessions for ClickHouse (chdb, a server) and Spark, and ``session_for`` over every
engine (see semantic.warehouse.engine_open for how each is opened and restricted).

Every engine here hands results over as Arrow record batches, turned into rows of Python
values (Decimal, date, datetime, bool) the same way, so :mod:`semantic.warehouse.execute`
normalises them as it does DuckDB's. Timeouts: chdb and ClickHouse servers stop the query
themselves (``max_execution_time``), Spark's jobs are interrupted by tag from a timer;
cancel stops chdb's stream, kills the server query by id, or interrupts Spark's tag.

This module is Django-free.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

from semantic.warehouse.bigquery_session import BigQuerySession
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable, connect
from semantic.warehouse.engine_open import (
    CLICKHOUSE_SETTINGS,
    chdb_query_connection,
    chdb_query_release,
    spark_user_session,
)
from semantic.warehouse.results import Column, ColumnKind, Params, Row, Verdict
from semantic.warehouse.sessions import SESSIONS, Session
from semantic.warehouse.snowflake_session import SnowflakeSession
from semantic.warehouse.trino_session import TrinoSession
from semantic.warehouse.values import utc_naive

# --- sessions ------------------------------------------------------------------------------


def _arrow_kind(arrow_type: Any) -> ColumnKind:
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return "interval"
    return "other"


class ArrowSession(Session):
    """A session whose engine returns Arrow record batches; rows are cut from them."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.schema: Any = None
        self._batches: Any = None
        self._pending: list[Row] = []
        self._timed_out = False
        self._timer: threading.Timer | None = None

    def describe(self) -> tuple[Column, ...]:
        return tuple(
            Column(name=field.name, type_name=str(field.type), kind=_arrow_kind(field.type))
            for field in self.schema
        )

    def converters(self, columns: tuple[Column, ...]) -> list[Callable[[Any], Any] | None]:
        return [utc_naive if c.kind == "timestamp" else None for c in columns]

    def fetch(self, size: int) -> Sequence[Row]:
        while len(self._pending) < size:
            batch = self._next_batch()
            if batch is None:
                break
            columns = [column.to_pylist() for column in batch.columns]
            self._pending.extend(zip(*columns, strict=True))
        rows, self._pending = self._pending[:size], self._pending[size:]
        return rows

    def _next_batch(self) -> Any:
        raise NotImplementedError

    def message(self, exc: Exception) -> str:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__

    def close(self, *, drained: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _start_timer(self) -> None:
        self._timer = threading.Timer(self.timeout_s, self._on_timeout)
        self._timer.daemon = True
        self._timer.start()

    def _on_timeout(self) -> None:
        self._timed_out = True
        self.interrupt()


_CLICKHOUSE_TIMEOUT = 159  # TIMEOUT_EXCEEDED
_CLICKHOUSE_CANCELLED = 394  # QUERY_WAS_CANCELLED


def _clickhouse_code(exc: BaseException) -> int | None:
    text = str(exc)
    marker = "Code: "
    at = text.find(marker)
    if at < 0:
        return None
    digits = ""
    for char in text[at + len(marker) :]:
        if not char.isdigit():
            break
        digits += char
    return int(digits) if digits else None


class ChdbInterrupted(RuntimeError):
    """The chdb stream was cancelled (timeout or cancel) before its end."""


class ChdbSession(ArrowSession):
    """chdb: a read-only connection per query (reused by a later query once its result was
    read to the end: chdb leaks per connection closed), Arrow streamed chunk by chunk."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.stream: Any = None
        self._chunk_batches: list[Any] = []
        self._interrupted = False
        self._url: str | None = None

    def open(self) -> None:
        assert self.config.path is not None
        self._url, self.conn = chdb_query_connection(
            self.config.path,
            settings={"max_execution_time": f"{max(self.timeout_s, 0.001):.3f}"},
        )

    def run(self, sql: str, params: Params) -> None:
        values = dict(self.variables)
        if isinstance(params, dict):
            values.update(params)
        elif params:
            raise ValueError("chdb takes named parameters ({name:Type}), not positional ones")
        self.stream = self.conn.send_query(sql, "Arrow", params=values)
        self._read_schema()

    def _read_schema(self) -> None:
        import pyarrow as pa

        while True:
            chunk = self.stream.fetch()
            if chunk is None:
                # No chunk at all: ClickHouse sends the header with the first block.
                self.schema = pa.schema([])
                return
            data = chunk.bytes()
            if not data:
                continue
            table = pa.ipc.open_file(data).read_all()
            self.schema = table.schema
            self._chunk_batches = table.to_batches()
            return

    def _next_batch(self) -> Any:
        import pyarrow as pa

        while not self._chunk_batches:
            chunk = self.stream.fetch() if self.stream is not None else None
            if self._interrupted:
                # A cancelled chdb stream simply ends: say so rather than look complete.
                raise ChdbInterrupted("the query was interrupted")
            if chunk is None:
                return None
            data = chunk.bytes()
            if data:
                self._chunk_batches = pa.ipc.open_file(data).read_all().to_batches()
        return self._chunk_batches.pop(0)

    def interrupt(self) -> None:
        self._interrupted = True
        with suppress(Exception):
            if self.stream is not None:
                self.stream.cancel()

    def classify(self, exc: Exception) -> Verdict | None:
        if isinstance(exc, WarehouseUnavailable):
            return "unavailable"
        if isinstance(exc, ChdbInterrupted):
            return "error"
        code = _clickhouse_code(exc)
        if code == _CLICKHOUSE_TIMEOUT:
            return "timeout"
        if code is not None or type(exc).__module__.startswith("chdb"):
            return "error"
        if isinstance(exc, RuntimeError):
            return "error"
        return None

    def message(self, exc: Exception) -> str:
        text = super().message(exc)
        # "Code: 47. DB::Exception: Unknown identifier …. (UNKNOWN_IDENTIFIER)": keep the text.
        return text.split("DB::Exception: ", 1)[-1]

    def driver_code(self, exc: Exception) -> str | None:
        code = _clickhouse_code(exc)
        return None if code is None else str(code)

    def close(self, *, drained: bool) -> None:
        super().close(drained=drained)
        if self.stream is not None and not drained:
            with suppress(Exception):
                self.stream.cancel()
        if self.stream is not None:
            with suppress(Exception):
                self.stream.close()
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if drained and not self._interrupted and self._url is not None:
            # Its stream ended cleanly: the next query may use it (no cursor or stream open).
            chdb_query_release(self._url, conn)
            return
        with suppress(Exception):
            conn.close()


class ClickHouseSession(ArrowSession):
    """A ClickHouse server: Arrow stream over HTTP, settings and timeout per query."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.client: Any = None
        self.stream: Any = None
        self._iterator: Any = None
        self._first: Any = None
        self.query_id = f"tally-{uuid.uuid4().hex}"

    def open(self) -> None:
        self.client = connect(self.config, timeout_s=min(self.timeout_s, 10.0))

    def run(self, sql: str, params: Params) -> None:
        values = dict(self.variables)
        if isinstance(params, dict):
            values.update(params)
        settings = dict(CLICKHOUSE_SETTINGS)
        settings["max_execution_time"] = str(max(1, int(self.timeout_s + 0.999)))
        settings["query_id"] = self.query_id
        self.stream = self.client.query_arrow_stream(sql, parameters=values, settings=settings)
        self._iterator = iter(self.stream.__enter__())
        self._first = next(self._iterator, None)
        self.schema = self._first.schema if self._first is not None else _empty_schema()

    def _next_batch(self) -> Any:
        if self._first is not None:
            batch, self._first = self._first, None
            return batch
        return next(self._iterator, None) if self._iterator is not None else None

    def interrupt(self) -> None:
        with suppress(Exception):
            killer = connect(self.config, timeout_s=5)
            killer.command(f"KILL QUERY WHERE query_id = '{self.query_id}' ASYNC")
            killer.close()

    def classify(self, exc: Exception) -> Verdict | None:
        code = _clickhouse_code(exc)
        if code == _CLICKHOUSE_TIMEOUT:
            return "timeout"
        name = type(exc).__name__
        if name == "OperationalError":
            return "unavailable"
        if code is not None or type(exc).__module__.startswith("clickhouse_connect"):
            return "error"
        return None

    def message(self, exc: Exception) -> str:
        return ChdbSession.message(self, exc)  # type: ignore[arg-type]

    def driver_code(self, exc: Exception) -> str | None:
        code = _clickhouse_code(exc)
        return None if code is None else str(code)

    def close(self, *, drained: bool) -> None:
        super().close(drained=drained)
        if self.stream is not None:
            with suppress(Exception):
                self.stream.__exit__(None, None, None)
        if self.client is not None:
            with suppress(Exception):
                self.client.close()


def _empty_schema() -> Any:
    import pyarrow as pa

    return pa.schema([])


class SparkSessionRun(ArrowSession):
    """Spark: one session per query, the result as Arrow (bounded by the row cap)."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.spark: Any = None
        self.tag = f"tally-{uuid.uuid4().hex}"
        self._batches_left: list[Any] = []
        self._remote = config.host is not None

    def open(self) -> None:
        self.spark = spark_user_session(self.config)

    def run(self, sql: str, params: Params) -> None:
        # Names were checked (checked_variables: tally_[a-z_]+); values are bound.
        for name, value in self.variables.items():
            self.spark.sql(f"DECLARE OR REPLACE VARIABLE {name} STRING")
            self.spark.sql(f"SET VAR {name} = :value", args={"value": value})
        args = dict(params) if isinstance(params, dict) else None
        self.spark.addTag(self.tag)
        self._start_timer()
        try:
            frame = self.spark.sql(sql, args=args) if args else self.spark.sql(sql)
            table = frame.toArrow()
        finally:
            with suppress(Exception):
                self.spark.removeTag(self.tag)
        self.schema = table.schema
        self._batches_left = table.to_batches()

    def _next_batch(self) -> Any:
        return self._batches_left.pop(0) if self._batches_left else None

    def interrupt(self) -> None:
        with suppress(Exception):
            self.spark.interruptTag(self.tag)

    def classify(self, exc: Exception) -> Verdict | None:
        if isinstance(exc, WarehouseUnavailable):
            return "unavailable"
        module = type(exc).__module__
        if module.startswith(("pyspark", "py4j", "grpc")):
            if self._timed_out:
                return "timeout"
            name = type(exc).__name__
            if self._remote and name in ("SparkConnectGrpcException", "RetriesExceeded"):
                return "unavailable"
            return "error"
        return None

    def message(self, exc: Exception) -> str:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        return first[:500]

    def driver_code(self, exc: Exception) -> str | None:
        getter = getattr(exc, "getCondition", None)
        with suppress(Exception):
            if getter is not None:
                return str(getter())
        return None

    def close(self, *, drained: bool) -> None:
        super().close(drained=drained)
        if self._remote and self.spark is not None:
            with suppress(Exception):
                self.spark.stop()


ENGINE_SESSIONS: dict[str, type[Session]] = {
    **SESSIONS,
    "chdb": ChdbSession,
    "clickhouse": ClickHouseSession,
    "spark": SparkSessionRun,
    "trino": TrinoSession,
    "snowflake": SnowflakeSession,
    "bigquery": BigQuerySession,
}


def session_for(config: WarehouseConfig, timeout_s: float) -> Session:
    """The session class of the warehouse's engine, for one query."""
    try:
        return ENGINE_SESSIONS[config.engine](config, timeout_s)
    except KeyError:
        raise ValueError(
            f"no execution support for warehouse engine {config.engine!r}; "
            f"supported: {', '.join(sorted(ENGINE_SESSIONS))}"
        ) from None
