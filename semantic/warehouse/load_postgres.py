"""Copies DuckDB tables into PostgreSQL: CSV through COPY, in one transaction (see
semantic.warehouse.loader).

This module is Django-free.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.load_common import (
    CSV_CHUNK_BYTES,
    INDEXES,
    SourceTable,
    check_count,
    export_csv,
    index_name,
    open_target,
    pg_message,
    quote_pg,
    table_exists,
    target_column_type,
    warehouse_error,
)


def copy_to_postgres(
    con: duckdb.DuckDBPyConnection,
    specs: list[SourceTable],
    target: WarehouseConfig,
    schema: str | None,
    replace: bool,
    tmp: Path,
) -> dict[str, int]:
    import psycopg

    conn = open_target(target)
    counts: dict[str, int] = {}
    try:
        with conn.transaction(), conn.cursor() as cur:
            if schema is not None:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_pg(schema)}")
            else:
                schema = str(cur.execute("SELECT current_schema()").fetchone()[0])
            if not replace:
                for spec in specs:
                    found = cur.execute(
                        "SELECT to_regclass(%s)", [f"{quote_pg(schema)}.{quote_pg(spec.name)}"]
                    ).fetchone()
                    if found is not None and found[0] is not None:
                        raise table_exists(target, f"{schema}.{spec.name}")
            for spec in specs:
                counts[spec.name] = _postgres_table(con, cur, spec, schema, tmp)
    except psycopg.Error as exc:
        raise warehouse_error(target, exc, pg_message(exc)) from exc
    finally:
        with suppress(Exception):
            conn.close()
    return counts


def _postgres_table(
    con: duckdb.DuckDBPyConnection, cur: Any, spec: SourceTable, schema: str, tmp: Path
) -> int:
    table = f"{quote_pg(schema)}.{quote_pg(spec.name)}"
    columns = ",\n    ".join(
        f"{quote_pg(c.name)} {target_column_type(c.duckdb_type, 'postgresql')}"
        + ("" if c.nullable else " NOT NULL")
        for c in spec.columns
    )
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(f"CREATE TABLE {table} (\n    {columns}\n)")
    path = tmp / f"{spec.name}.csv"
    export_csv(con, spec, path, engine="postgresql")
    names = ", ".join(quote_pg(c.name) for c in spec.columns)
    with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT csv)") as copy, path.open("rb") as f:
        while chunk := f.read(CSV_CHUNK_BYTES):
            copy.write(chunk)
    rows = cur.rowcount
    path.unlink()
    # Keys and indexes after the load: one sort each instead of index upkeep per row.
    if spec.primary_key:
        keys = ", ".join(quote_pg(k) for k in spec.primary_key)
        cur.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({keys})")
    for index in INDEXES.get(spec.name, ()):
        cur.execute(
            f"CREATE INDEX {quote_pg(index_name(spec.name, index))} ON {table} "
            f"({', '.join(quote_pg(c) for c in index)})"
        )
    cur.execute(f"ANALYZE {table}")
    check_count(spec, rows)
    return rows
