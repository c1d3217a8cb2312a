"""Streamed query results for the SQL API and ``POST /api/v1/query?format=arrow``.

``query_stream`` compiles a MetricQuery for the warehouse (for a principal) and yields the
warehouse cursor's batches as they arrive, so neither the server nor the client holds the
whole result. ``arrow_ipc_chunks`` turns those batches into an Arrow IPC stream.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings

from semantic.compiler.api import CompiledQuery
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.execute import CancelScope, Column, RowBatches
from semantic.warehouse.run import compiled_prepare, errors_named, stream_compiled

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
STREAM_BATCH_ROWS = 65_536


def metric_query_compile(
    *,
    query: MetricQuery,
    principal: Principal | None,
    acting_user: Any,
    release_ref: str | None = None,
) -> CompiledQuery:
    """Compiles for the configured warehouse on behalf of ``principal`` (row policies and
    masking, through access control's audited adapter, which writes the audit row)."""
    from semantic.audited import metric_query_compile as audited_compile

    if query.dialect != settings.WAREHOUSE.dialect:
        query = MetricQuery(**{**query.__dict__, "dialect": settings.WAREHOUSE.dialect})
    return audited_compile(
        query=query, release_ref=release_ref, principal=principal, acting_user=acting_user
    )


@dataclass(frozen=True)
class QueryStream:
    compiled: CompiledQuery
    columns: tuple[Column, ...]
    batches: RowBatches


@contextmanager
def query_stream(
    *,
    query: MetricQuery,
    principal: Principal | None,
    acting_user: Any,
    release_ref: str | None = None,
    row_cap: int,
    timeout_s: float,
    batch_size: int = STREAM_BATCH_ROWS,
    cancel: CancelScope | None = None,
) -> Iterator[QueryStream]:
    """Compiles and runs a query, yielding its batches as the warehouse cursor returns them."""
    compiled = metric_query_compile(
        query=query, principal=principal, acting_user=acting_user, release_ref=release_ref
    )
    with stream_compiled(
        compiled,
        principal=principal,
        release_ref=release_ref,
        timeout_s=timeout_s,
        row_cap=row_cap,
        batch_size=batch_size,
        cancel=cancel,
    ) as (columns, batches):
        yield QueryStream(compiled, columns, batches)


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    return {
        "boolean": pa.bool_(),
        "integer": pa.int64(),
        # Decimals travel as float64, as the JSON output shows them.
        "decimal": pa.float64(),
        "float": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "time": pa.time64("us"),
    }.get(kind, pa.string())


def _arrow_array(values: list[Any], kind: str, arrow_type: Any) -> Any:
    import pyarrow as pa

    if kind == "decimal":
        values = [float(v) if isinstance(v, Decimal) else v for v in values]
    elif arrow_type == pa.string():
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]
    return pa.array(values, type=arrow_type)


def arrow_ipc_chunks(result: QueryStream) -> Iterator[bytes]:
    """The result as an Arrow IPC stream: the schema (metadata: release, SQL), one record
    batch per warehouse batch, then an empty batch whose custom metadata says
    ``tally.truncated`` (true when the row cap cut the result) and ``tally.rows``."""
    import pyarrow as pa

    kinds = [c.kind for c in result.columns]
    types = [_arrow_type(k) for k in kinds]
    names = list(result.compiled.columns) or [c.name for c in result.columns]
    schema = pa.schema(
        [pa.field(n, t) for n, t in zip(names, types, strict=True)],
        metadata={"tally.release": result.compiled.release, "tally.sql": result.compiled.sql},
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema) as writer:
        yield _drain(sink)
        for batch in result.batches:
            columns = list(zip(*batch, strict=True)) if batch else [() for _ in names]
            arrays = [
                _arrow_array(list(col), kind, typ)
                for col, kind, typ in zip(columns, kinds, types, strict=True)
            ]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            yield _drain(sink)
        # An IPC stream that stops early reads as complete, so the end says whether the row
        # cap cut the result: an empty last batch whose metadata carries the verdict.
        done = {"tally.truncated": str(result.batches.truncated).lower()}
        done["tally.rows"] = str(result.batches.row_count)
        empty = [pa.array([], type=t) for t in types]
        writer.write_batch(pa.record_batch(empty, schema=schema), custom_metadata=done)
    yield _drain(sink)


def arrow_response_chunks(
    *,
    query: MetricQuery,
    principal: Principal | None,
    acting_user: Any,
    release_ref: str | None,
    row_cap: int,
    timeout_s: float,
) -> Iterator[bytes]:
    """Arrow IPC chunks of a query: natively from DuckDB's Arrow result (no Python values
    in between), through :func:`query_stream` on the other engines."""
    if settings.WAREHOUSE.engine == "duckdb":
        yield from _duckdb_arrow_chunks(
            query=query,
            principal=principal,
            acting_user=acting_user,
            release_ref=release_ref,
            row_cap=row_cap,
            timeout_s=timeout_s,
        )
        return
    with query_stream(
        query=query,
        principal=principal,
        acting_user=acting_user,
        release_ref=release_ref,
        row_cap=row_cap,
        timeout_s=timeout_s,
    ) as result:
        yield from arrow_ipc_chunks(result)


def _duckdb_arrow_chunks(
    *,
    query: MetricQuery,
    principal: Principal | None,
    acting_user: Any,
    release_ref: str | None,
    row_cap: int,
    timeout_s: float,
) -> Iterator[bytes]:
    import duckdb
    import pyarrow as pa

    from semantic.warehouse.execute import TIMEOUT_HINT, TIMEOUT_MESSAGE, sql_hash
    from semantic.warehouse.sessions import duckdb_session_setup, open_duckdb
    from tally.errors import WarehouseError

    compiled = metric_query_compile(
        query=query, principal=principal, acting_user=acting_user, release_ref=release_ref
    )
    ready = compiled_prepare(compiled, principal=principal, release_ref=release_ref)
    config = settings.WAREHOUSE
    assert config.path is not None
    con = open_duckdb(config.path)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.daemon = True
    try:
        # TimeZone is UTC for the whole (locked) instance: see duckdb_user_connect.
        # The PII salt of masked columns: a bound value, never part of the SQL.
        duckdb_session_setup(con, ready.variables)
        timer.start()
        # Named as on every path (a truncated time dimension over text: warehouse_type).
        with errors_named(ready, config):
            try:
                reader = con.sql(ready.sql).to_arrow_reader(STREAM_BATCH_ROWS)
            except duckdb.InterruptException as exc:
                raise WarehouseError(
                    TIMEOUT_MESSAGE.format(timeout_s=timeout_s),
                    code="warehouse_timeout",
                    hint=TIMEOUT_HINT,
                ) from exc
            except duckdb.Error as exc:
                raise WarehouseError(
                    str(exc).splitlines()[0],
                    code="warehouse_error",
                    details={"dialect": config.dialect, "sql_hash": sql_hash(compiled.sql)},
                ) from exc
        # Same shape as the generic path: compiled column names, decimals as float64.
        fields = [
            pa.field(name, pa.float64() if pa.types.is_decimal(f.type) else f.type)
            for name, f in zip(compiled.columns, reader.schema, strict=True)
        ]
        schema = pa.schema(
            fields, metadata={"tally.release": compiled.release, "tally.sql": compiled.sql}
        )
        sink = io.BytesIO()
        rows, truncated = 0, False
        with pa.ipc.new_stream(sink, schema) as writer:
            yield _drain(sink)
            for batch in reader:
                if rows + batch.num_rows > row_cap:
                    batch = batch.slice(0, row_cap - rows)
                    truncated = True
                arrays = [
                    column.cast(field.type) if column.type != field.type else column
                    for column, field in zip(batch.columns, fields, strict=True)
                ]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                rows += batch.num_rows
                yield _drain(sink)
                if truncated:
                    break
            done = {"tally.truncated": str(truncated).lower(), "tally.rows": str(rows)}
            empty = [pa.array([], type=f.type) for f in fields]
            writer.write_batch(pa.record_batch(empty, schema=schema), custom_metadata=done)
        yield _drain(sink)
    finally:
        timer.cancel()
        con.close()


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data
