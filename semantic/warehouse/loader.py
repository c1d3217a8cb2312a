"""Copies DuckDB tables (the demo warehouse) into PostgreSQL, MySQL/MariaDB, ClickHouse (chdb
or a server) or Spark (a local Parquet warehouse or a Spark Connect cluster).

So that the same compiled queries run on three engines over the same data: the
execution tests and the cross-engine conformance suite compare their results.

How it copies:
    DuckDB writes each table to a temporary CSV file (its own writer, in C++, so Python
    never touches a value), then the target bulk-loads the file:

    * PostgreSQL: ``COPY … FROM STDIN (FORMAT csv)`` through psycopg 3's copy API, the
      whole copy in one transaction (DDL is transactional there), so readers see the old
      tables or the new ones, never a half-loaded one. Primary keys and indexes are built
      after the load (one sort instead of one insert per row), then ``ANALYZE``.
    * MySQL/MariaDB: ``LOAD DATA LOCAL INFILE`` when the server allows it, else multi-row
      INSERT batches of 5,000 rows. Each table is loaded into a staging table and swapped
      in with one atomic ``RENAME TABLE``, because MySQL DDL commits implicitly. InnoDB
      clusters rows by primary key, so the key is declared up front (the rows arrive in
      key order) and secondary indexes are added after the load.
    * ClickHouse: a MergeTree table ordered by the primary key, filled from a Parquet file
      (chdb) or Arrow batches (a server), swapped in with ``EXCHANGE TABLES``
      (semantic.warehouse.load_clickhouse).
    * Spark: Parquet directories under a local warehouse, or ``saveAsTable`` through Spark
      Connect (semantic.warehouse.load_spark).

Type mapping (:func:`target_column_type`) is faithful rather than lossy: BIGINT, INTEGER,
DECIMAL(p,s), DATE, BOOLEAN keep their types; TIMESTAMP becomes ``timestamp`` /
``DATETIME(6)`` (MySQL's default precision would drop microseconds); VARCHAR becomes
``text COLLATE "C"`` on PostgreSQL and ``VARCHAR(n)`` sized from the data on MySQL; JSON
becomes ``jsonb`` / ``JSON`` (LONGTEXT with a JSON_VALID check on MariaDB). Strings use
binary collations (``"C"``; MariaDB ``utf8mb4_nopad_bin``) because DuckDB compares strings
byte by byte: with MySQL's default case-insensitive collation, ``GROUP BY`` and ``=`` would
give different answers than DuckDB on the same data.

This module is Django-free.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.load_clickhouse import copy_to_clickhouse
from semantic.warehouse.load_common import (
    DEMO_TABLES,
    INDEXES,
    TABLE_EXISTS_MESSAGE,
    MySQLBulk,
    describe_source,
    source_connection,
    target_column_type,
)
from semantic.warehouse.load_mysql import copy_to_mysql
from semantic.warehouse.load_postgres import copy_to_postgres
from semantic.warehouse.load_spark import copy_to_spark

__all__ = [
    "DEMO_TABLES",
    "INDEXES",
    "TABLE_EXISTS_MESSAGE",
    "copy_duckdb_tables",
    "target_column_type",
]


def copy_duckdb_tables(
    source: str | os.PathLike[str] | duckdb.DuckDBPyConnection,
    target: WarehouseConfig,
    *,
    tables: Sequence[str] = DEMO_TABLES,
    schema: str | None = None,
    replace: bool = True,
    mysql_bulk: MySQLBulk | None = None,
) -> dict[str, int]:
    """Copies tables from a DuckDB file into a PostgreSQL or MySQL/MariaDB warehouse.

    Idempotent with ``replace=True``: each run drops and recreates the tables, so running it
    twice leaves the same tables. Primary keys are copied from DuckDB and the
    :data:`INDEXES` are created.

    Args:
        source: DuckDB file (opened read-only, see :func:`open_duckdb_admin`) or an open connection.
        target: a ``postgresql`` or ``mysql`` warehouse.
        tables: tables of DuckDB's ``main`` schema to copy, in order.
        schema: target schema (PostgreSQL) or database (MySQL), created if missing;
            None means the connection's current schema or the URL's database.
        replace: replace tables that exist; when False, refuse before copying anything.
        mysql_bulk: ``"load_data"`` or ``"insert"`` to force a MySQL path; None uses
            ``LOAD DATA LOCAL INFILE`` and falls back to INSERT when the server forbids it.

    Returns:
        Rows copied per table, in ``tables`` order.

    Raises:
        WarehouseError: ``warehouse_unavailable`` when the target cannot be reached,
            ``warehouse_table_exists`` when ``replace`` is False and a table exists,
            ``warehouse_error`` when the target rejects a statement or a row.
        ValueError: unsupported engine, missing source table, or unsupported column type.

    Example:
        >>> url = "postgresql://postgres@127.0.0.1/postgres"
        >>> target = parse_warehouse_url(url, base_dir=Path("."))  # doctest: +SKIP
        >>> copy_duckdb_tables("var/warehouse.duckdb", target, schema="demo")  # doctest: +SKIP
        {'accounts': 2000, 'users': 10000, 'events': 200000, ...}
    """
    if target.engine not in ("postgresql", "mysql", "chdb", "clickhouse", "spark"):
        raise ValueError(
            f"cannot copy into a {target.engine!r} warehouse; supported: postgresql, mysql, "
            "chdb, clickhouse, spark"
        )
    with source_connection(source) as con:
        # CSV output of TIMESTAMPTZ is rendered in the session zone; make it UTC.
        con.execute("SET SESSION TimeZone = 'UTC'")
        specs = [describe_source(con, table) for table in tables]
        with tempfile.TemporaryDirectory(prefix="tally-copy-") as tmp:
            if target.engine == "postgresql":
                return copy_to_postgres(con, specs, target, schema, replace, Path(tmp))
            if target.engine in ("chdb", "clickhouse"):
                return copy_to_clickhouse(con, specs, target, schema, replace, Path(tmp))
            if target.engine == "spark":
                return copy_to_spark(con, specs, target, schema, replace)
            return copy_to_mysql(con, specs, target, schema, replace, Path(tmp), mysql_bulk)
