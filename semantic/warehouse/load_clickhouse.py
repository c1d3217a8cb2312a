"""Copies DuckDB tables into ClickHouse: chdb (embedded) reads a Parquet file DuckDB wrote,
a ClickHouse server receives Arrow batches over HTTP; each table is loaded into a staging
table and swapped in with one ``EXCHANGE TABLES`` (see semantic.warehouse.loader).

This module is Django-free.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connect_errors import WarehouseUnavailable
from semantic.warehouse.engine_open import chdb_connect, clickhouse_client
from semantic.warehouse.load_common import (
    SourceColumn,
    SourceTable,
    check_count,
    quote_pg,
    table_exists,
    warehouse_error,
)
from semantic.warehouse.results import UNAVAILABLE_HINT
from tally.errors import WarehouseError

# DuckDB type → ClickHouse. Timestamps are DateTime64 read in UTC (session_timezone).
_CLICKHOUSE_TYPES: dict[str, str] = {
    "BOOLEAN": "Bool",
    "TINYINT": "Int8",
    "SMALLINT": "Int16",
    "INTEGER": "Int32",
    "BIGINT": "Int64",
    "HUGEINT": "Int128",
    "UTINYINT": "UInt8",
    "USMALLINT": "UInt16",
    "UINTEGER": "UInt32",
    "UBIGINT": "UInt64",
    "FLOAT": "Float32",
    "DOUBLE": "Float64",
    "VARCHAR": "String",
    "UUID": "String",
    "JSON": "String",
    "BLOB": "String",
    "DATE": "Date32",
    "TIMESTAMP": "DateTime64(6)",
    "TIMESTAMP_S": "DateTime64(0)",
    "TIMESTAMP_MS": "DateTime64(3)",
    "TIMESTAMP_NS": "DateTime64(9)",
    "TIMESTAMP WITH TIME ZONE": "DateTime64(6, 'UTC')",
}


def clickhouse_column_type(column: SourceColumn) -> str:
    """The ClickHouse type of a DuckDB column, Nullable when the column is.

    Example:
        >>> clickhouse_column_type(SourceColumn("amount", "DECIMAL(12,2)", True, None))
        'Nullable(Decimal(12,2))'
    """
    name = column.duckdb_type.upper()
    if name.startswith("DECIMAL"):
        mapped: str | None = "Decimal" + (name[len("DECIMAL") :] or "(18,3)")
    else:
        mapped = _CLICKHOUSE_TYPES.get(name)
    if mapped is None:
        raise ValueError(f"cannot copy DuckDB type {column.duckdb_type} to ClickHouse")
    return f"Nullable({mapped})" if column.nullable else mapped


def quote_ch(name: str) -> str:
    """Backquoted identifier (ClickHouse)."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _export_expression(column: SourceColumn) -> str:
    name = quote_pg(column.name)
    # Named as the column: ClickHouse reads a file's columns by the target table's names.
    if column.duckdb_type in ("JSON", "UUID"):
        return f"{name}::VARCHAR AS {name}"
    if column.duckdb_type == "HUGEINT":
        return f"{name}::DECIMAL(38,0) AS {name}"
    return name


class _Target:
    """chdb connection or server client behind one ``command`` call."""

    def __init__(self, target: WarehouseConfig) -> None:
        self.target = target
        try:
            if target.engine == "chdb":
                assert target.path is not None
                self.conn: Any = chdb_connect(target.path, user=False, create=True)
            else:
                self.conn = clickhouse_client(target, timeout_s=30, user=False)
        except WarehouseUnavailable as exc:
            raise WarehouseError(
                str(exc),
                code="warehouse_unavailable",
                hint=UNAVAILABLE_HINT,
                details={"dialect": target.dialect},
            ) from exc

    def command(self, sql: str) -> str:
        if self.target.engine == "chdb":
            return str(self.conn.query(sql, "TabSeparated")).strip()
        return str(self.conn.command(sql)).strip()

    def close(self) -> None:
        with suppress(Exception):
            self.conn.close()


def copy_to_clickhouse(
    con: duckdb.DuckDBPyConnection,
    specs: list[SourceTable],
    target: WarehouseConfig,
    schema: str | None,
    replace: bool,
    tmp: Path,
) -> dict[str, int]:
    database = schema or target.database or "default"
    sink = _Target(target)
    counts: dict[str, int] = {}
    try:
        sink.command(f"CREATE DATABASE IF NOT EXISTS {quote_ch(database)}")
        existing = set(
            sink.command(
                "SELECT name FROM system.tables WHERE database = "
                f"'{database.replace(chr(39), chr(92) + chr(39))}'"
            ).split()
        )
        if not replace:
            for spec in specs:
                if spec.name in existing:
                    raise table_exists(target, f"{database}.{spec.name}")
        for spec in specs:
            counts[spec.name] = _load_table(con, sink, spec, database, tmp, spec.name in existing)
    except WarehouseError:
        raise
    except Exception as exc:  # chdb RuntimeError, clickhouse_connect DatabaseError
        text = str(exc).split("DB::Exception: ", 1)[-1]
        raise warehouse_error(target, exc, text) from exc
    finally:
        sink.close()
    return counts


def _load_table(
    con: duckdb.DuckDBPyConnection,
    sink: _Target,
    spec: SourceTable,
    database: str,
    tmp: Path,
    exists: bool,
) -> int:
    final = f"{quote_ch(database)}.{quote_ch(spec.name)}"
    staging = f"{quote_ch(database)}.{quote_ch('_tally_new_' + spec.name)}"
    columns = ",\n    ".join(
        f"{quote_ch(c.name)} {clickhouse_column_type(c)}" for c in spec.columns
    )
    order = ", ".join(quote_ch(k) for k in spec.primary_key) or "tuple()"
    sink.command(f"DROP TABLE IF EXISTS {staging}")
    sink.command(
        f"CREATE TABLE {staging} (\n    {columns}\n) ENGINE = MergeTree ORDER BY ({order})"
    )
    try:
        select = ", ".join(_export_expression(c) for c in spec.columns)
        names = ", ".join(quote_ch(c.name) for c in spec.columns)
        if sink.target.engine == "chdb":
            path = tmp / f"{spec.name}.parquet"
            quoted = str(path).replace("'", "''")
            con.execute(
                f"COPY (SELECT {select} FROM {quote_pg(spec.name)}) TO '{quoted}' (FORMAT parquet)"
            )
            source = str(path).replace("\\", "\\\\").replace("'", "\\'")
            sink.command(f"INSERT INTO {staging} ({names}) SELECT * FROM file('{source}', Parquet)")
            path.unlink()
        else:
            table = con.sql(f"SELECT {select} FROM {quote_pg(spec.name)}").to_arrow_table()
            sink.conn.insert_arrow(f"{database}.{'_tally_new_' + spec.name}", table)
        rows = int(sink.command(f"SELECT count() FROM {staging}"))
        check_count(spec, rows)
        if exists:
            # One EXCHANGE swaps both names atomically: readers see the old table or the new.
            sink.command(f"EXCHANGE TABLES {staging} AND {final}")
            sink.command(f"DROP TABLE {staging}")
        else:
            sink.command(f"RENAME TABLE {staging} TO {final}")
    except BaseException:
        with suppress(Exception):
            sink.command(f"DROP TABLE IF EXISTS {staging}")
        raise
    return rows
