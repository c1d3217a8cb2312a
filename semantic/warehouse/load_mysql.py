"""Copies DuckDB tables into MySQL/MariaDB: LOAD DATA LOCAL INFILE or INSERT batches into a
staging table, swapped in with one RENAME TABLE (see semantic.warehouse.loader).

This module is Django-free.
"""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path
from typing import Any

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.load_common import (
    INDEXES,
    INSERT_BATCH_ROWS,
    MYSQL_NO_LOCAL_INFILE,
    MYSQL_ROW_BYTES,
    MySQLBulk,
    SourceTable,
    check_count,
    export_csv,
    fetch_batches,
    index_name,
    my_message,
    open_target,
    quote_my,
    short,
    table_exists,
    target_column_type,
    warehouse_error,
)


def copy_to_mysql(
    con: duckdb.DuckDBPyConnection,
    specs: list[SourceTable],
    target: WarehouseConfig,
    schema: str | None,
    replace: bool,
    tmp: Path,
    bulk: MySQLBulk | None,
) -> dict[str, int]:
    import pymysql

    conn = open_target(target, local_infile=bulk != "insert")
    counts: dict[str, int] = {}
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            # Strict mode turns a truncated or mis-typed value into an error on INSERT.
            cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
            database = schema or target.database
            assert database is not None
            if schema is not None:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {quote_my(schema)}")
            collation = _mysql_binary_collation(cur)
            existing = _mysql_tables(cur, database)
            if not replace:
                for spec in specs:
                    if spec.name in existing:
                        raise table_exists(target, f"{database}.{spec.name}")
            for spec in specs:
                counts[spec.name], bulk = _mysql_table(
                    con, cur, spec, database, collation, tmp, bulk, spec.name in existing
                )
    except pymysql.Error as exc:
        raise warehouse_error(target, exc, my_message(exc)) from exc
    finally:
        with suppress(Exception):
            conn.close()
    return counts


def _mysql_table(
    con: duckdb.DuckDBPyConnection,
    cur: Any,
    spec: SourceTable,
    database: str,
    collation: str,
    tmp: Path,
    bulk: MySQLBulk | None,
    exists: bool,
) -> tuple[int, MySQLBulk | None]:
    """Loads one table into a staging table and swaps it in; returns rows and the path used."""
    final = f"{quote_my(database)}.{quote_my(spec.name)}"
    staging = f"{quote_my(database)}.{quote_my(short(f'_tally_new_{spec.name}'))}"
    retired = f"{quote_my(database)}.{quote_my(short(f'_tally_old_{spec.name}'))}"
    cur.execute(f"DROP TABLE IF EXISTS {staging}")
    cur.execute(_mysql_create(spec, staging, collation))
    try:
        if bulk != "insert":
            try:
                rows = _mysql_load_data(con, cur, spec, staging, tmp)
                bulk = "load_data"
            except _LocalInfileRefused:
                if bulk == "load_data":
                    raise
                bulk = "insert"
        if bulk == "insert":
            rows = _mysql_insert(con, cur, spec, staging)
        check_count(spec, rows)
        indexes = [
            f"ADD INDEX {quote_my(index_name(spec.name, index))} "
            f"({', '.join(quote_my(c) for c in index)})"
            for index in INDEXES.get(spec.name, ())
        ]
        if indexes:
            # One ALTER builds every index in one pass over the table.
            cur.execute(f"ALTER TABLE {staging} {', '.join(indexes)}")
        if exists:
            # One RENAME swaps both names atomically: readers see the old table or the new.
            cur.execute(f"DROP TABLE IF EXISTS {retired}")
            cur.execute(f"RENAME TABLE {final} TO {retired}, {staging} TO {final}")
            cur.execute(f"DROP TABLE {retired}")
        else:
            cur.execute(f"RENAME TABLE {staging} TO {final}")
    except BaseException:
        with suppress(Exception):
            cur.execute(f"DROP TABLE IF EXISTS {staging}")
        raise
    return rows, bulk


def _mysql_create(spec: SourceTable, table: str, collation: str) -> str:
    types = _mysql_column_types(spec)
    lines = [
        f"{quote_my(c.name)} {types[c.name]}" + ("" if c.nullable else " NOT NULL")
        for c in spec.columns
    ]
    if spec.primary_key:
        lines.append(f"PRIMARY KEY ({', '.join(quote_my(k) for k in spec.primary_key)})")
    body = ",\n    ".join(lines)
    return (
        f"CREATE TABLE {table} (\n    {body}\n) "
        f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation}"
    )


def _mysql_column_types(spec: SourceTable) -> dict[str, str]:
    """Column types, with the widest VARCHARs turned into LONGTEXT if the row would not fit."""
    types = {
        c.name: target_column_type(c.duckdb_type, "mysql", max_length=c.max_length)
        for c in spec.columns
    }
    widths = {
        name: int(t[len("VARCHAR(") : -1]) for name, t in types.items() if t.startswith("VARCHAR(")
    }
    total = 4 * sum(widths.values())
    # Key columns must stay VARCHAR to be indexable; widen the others to LONGTEXT, widest
    # first, until the row fits (LONGTEXT is stored off-page and counts a few bytes).
    for name in sorted(set(widths) - set(spec.primary_key), key=lambda n: -widths[n]):
        if total <= MYSQL_ROW_BYTES:
            break
        types[name] = "LONGTEXT"
        total -= 4 * widths[name]
    return types


class _LocalInfileRefused(Exception):
    """The server (or client) does not allow LOAD DATA LOCAL INFILE."""


def _mysql_load_data(
    con: duckdb.DuckDBPyConnection, cur: Any, spec: SourceTable, table: str, tmp: Path
) -> int:
    import pymysql

    path = tmp / f"{spec.name}.csv"
    export_csv(con, spec, path, engine="mysql")
    targets, sets = [], []
    for column in spec.columns:
        if column.duckdb_type == "BLOB":
            variable = f"@v{len(sets)}"
            targets.append(variable)
            sets.append(f"{quote_my(column.name)} = UNHEX({variable})")
        else:
            targets.append(quote_my(column.name))
    statement = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
        f"LINES TERMINATED BY '\\n' ({', '.join(targets)})"
        + (f" SET {', '.join(sets)}" if sets else "")
    )
    try:
        rows = cur.execute(statement, [str(path)])
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] in MYSQL_NO_LOCAL_INFILE:
            raise _LocalInfileRefused(str(exc)) from exc
        raise
    finally:
        path.unlink(missing_ok=True)
    # With LOCAL, the server cannot stop the client mid-file, so bad values, truncations
    # and duplicate keys are warnings, not errors (an implicit IGNORE). Treat any as fatal.
    cur.execute("SHOW WARNINGS LIMIT 3")
    warnings = cur.fetchall()
    if warnings:
        raise pymysql.err.DataError(
            warnings[0][1], f"LOAD DATA into {spec.name}: " + "; ".join(w[2] for w in warnings)
        )
    return int(rows)


def _mysql_insert(con: duckdb.DuckDBPyConnection, cur: Any, spec: SourceTable, table: str) -> int:
    names = ", ".join(quote_my(c.name) for c in spec.columns)
    placeholders = ", ".join(["%s"] * len(spec.columns))
    # PyMySQL's executemany rewrites this into multi-row INSERTs (up to ~1 MB each).
    statement = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"
    rows = 0
    for batch in fetch_batches(con, spec, INSERT_BATCH_ROWS):
        cur.executemany(statement, batch)
        rows += len(batch)
    return rows


def _mysql_binary_collation(cur: Any) -> str:
    """A byte-wise, no-pad utf8mb4 collation, the closest to DuckDB's string comparison."""
    cur.execute(
        "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN "
        "('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')"
    )
    found = {name for (name,) in cur.fetchall()}
    # MariaDB spells it nopad_bin, MySQL 8 0900_bin; utf8mb4_bin pads trailing spaces.
    for name in ("utf8mb4_nopad_bin", "utf8mb4_0900_bin"):
        if name in found:
            return name
    return "utf8mb4_bin"


def _mysql_tables(cur: Any, database: str) -> set[str]:
    cur.execute(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", [database]
    )
    return {name for (name,) in cur.fetchall()}
