"""Copies DuckDB tables (the demo warehouse) into PostgreSQL or MySQL/MariaDB.

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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable, connect_admin, open_duckdb_admin
from semantic.warehouse.execute import UNAVAILABLE_HINT
from tally.errors import WarehouseError

__all__ = [
    "DEMO_TABLES",
    "INDEXES",
    "TABLE_EXISTS_MESSAGE",
    "copy_duckdb_tables",
    "target_column_type",
]

DEMO_TABLES: tuple[str, ...] = (
    "accounts",
    "users",
    "events",
    "subscriptions",
    "invoices",
    "time_spine",
)
"""The demo warehouse's tables, copied by default."""

INDEXES: Mapping[str, tuple[tuple[str, ...], ...]] = {
    # events is the fact table: queries filter on a time range and join to accounts.
    "events": (("account_id",), ("occurred_at",)),
}
"""Secondary indexes created on copied tables (primary keys come from DuckDB)."""

TABLE_EXISTS_MESSAGE = "table {table} already exists in the target"

MySQLBulk = Literal["load_data", "insert"]

_INSERT_BATCH_ROWS = 5_000
_CSV_CHUNK_BYTES = 1 << 20
# MySQL's row limit is 65,535 bytes over all VARCHARs (4 bytes a character in utf8mb4);
# stay under it with room for the other columns.
_MYSQL_ROW_BYTES = 60_000
_MYSQL_VARCHAR_STEPS = (64, 255, 1024)
# ER_NOT_ALLOWED_COMMAND (1148), MySQL 8 "loading local data is disabled" (3948, 3950).
_MYSQL_NO_LOCAL_INFILE = frozenset({1148, 3948, 3950})


@dataclass(frozen=True)
class _SourceColumn:
    name: str
    duckdb_type: str
    nullable: bool
    max_length: int | None  # longest VARCHAR value, in characters (sizes MySQL VARCHARs)


@dataclass(frozen=True)
class _SourceTable:
    name: str
    columns: tuple[_SourceColumn, ...]
    primary_key: tuple[str, ...]
    rows: int


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
    if target.engine not in ("postgresql", "mysql"):
        raise ValueError(
            f"cannot copy into a {target.engine!r} warehouse; supported: postgresql, mysql"
        )
    with _source_connection(source) as con:
        # CSV output of TIMESTAMPTZ is rendered in the session zone; make it UTC.
        con.execute("SET SESSION TimeZone = 'UTC'")
        specs = [_describe_source(con, table) for table in tables]
        with tempfile.TemporaryDirectory(prefix="tally-copy-") as tmp:
            if target.engine == "postgresql":
                return _copy_to_postgres(con, specs, target, schema, replace, Path(tmp))
            return _copy_to_mysql(con, specs, target, schema, replace, Path(tmp), mysql_bulk)


def target_column_type(duckdb_type: str, engine: str, *, max_length: int | None = None) -> str:
    """The column type a DuckDB type becomes in PostgreSQL or MySQL/MariaDB.

    Args:
        duckdb_type: DuckDB's type name as ``duckdb_columns()`` shows it.
        engine: ``"postgresql"`` or ``"mysql"``.
        max_length: for VARCHAR on MySQL, the longest value in characters (sizes VARCHAR(n)).

    Returns:
        The target's DDL type.

    Raises:
        ValueError: a type with no faithful equivalent (nested types, INTERVAL, …).

    Example:
        >>> target_column_type("DECIMAL(12,2)", "postgresql"), target_column_type("JSON", "mysql")
        ('numeric(12,2)', 'JSON')
        >>> target_column_type("TIMESTAMP", "mysql"), target_column_type("VARCHAR", "mysql", max_length=36)
        ('DATETIME(6)', 'VARCHAR(64)')
    """
    name = duckdb_type.upper()
    if name.startswith("DECIMAL"):
        digits = name[len("DECIMAL") :] or "(18,3)"  # DuckDB's default precision and scale
        return f"numeric{digits}" if engine == "postgresql" else f"DECIMAL{digits}"
    if engine == "postgresql":
        mapped = _POSTGRES_TYPES.get(name)
    elif engine == "mysql":
        if name == "VARCHAR":
            return _mysql_varchar(max_length)
        mapped = _MYSQL_TYPES.get(name)
    else:
        raise ValueError(f"unsupported target engine {engine!r}")
    if mapped is None:
        raise ValueError(f"cannot copy DuckDB type {duckdb_type} to {engine}")
    return mapped


# DuckDB type → PostgreSQL. Unsigned types widen so every value fits.
_POSTGRES_TYPES: dict[str, str] = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(38,0)",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": 'text COLLATE "C"',
    "UUID": "uuid",
    "JSON": "jsonb",
    "BLOB": "bytea",
    "DATE": "date",
    "TIME": "time",
    "TIME WITH TIME ZONE": "timetz",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp(0)",
    "TIMESTAMP_MS": "timestamp(3)",
    "TIMESTAMP_NS": "timestamp",  # PostgreSQL stops at microseconds
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}

# DuckDB type → MySQL/MariaDB. TIMESTAMPTZ goes to DATETIME(6) holding UTC: MySQL's
# TIMESTAMP type ends in 2038 and converts through the session zone on every read.
_MYSQL_TYPES: dict[str, str] = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "TINYINT",
    "SMALLINT": "SMALLINT",
    "INTEGER": "INT",
    "BIGINT": "BIGINT",
    "HUGEINT": "DECIMAL(38,0)",
    "UTINYINT": "TINYINT UNSIGNED",
    "USMALLINT": "SMALLINT UNSIGNED",
    "UINTEGER": "INT UNSIGNED",
    "UBIGINT": "BIGINT UNSIGNED",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "UUID": "CHAR(36)",
    "JSON": "JSON",
    "BLOB": "LONGBLOB",
    "DATE": "DATE",
    "TIME": "TIME(6)",
    "TIMESTAMP": "DATETIME(6)",
    "TIMESTAMP_S": "DATETIME",
    "TIMESTAMP_MS": "DATETIME(3)",
    "TIMESTAMP_NS": "DATETIME(6)",
    "TIMESTAMP WITH TIME ZONE": "DATETIME(6)",
}


def _mysql_varchar(max_length: int | None) -> str:
    longest = max_length or 0
    for step in _MYSQL_VARCHAR_STEPS:
        if longest <= step:
            return f"VARCHAR({step})"
    return "LONGTEXT"


# --- source ------------------------------------------------------------------------------


@contextmanager
def _source_connection(
    source: str | os.PathLike[str] | duckdb.DuckDBPyConnection,
) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(source, duckdb.DuckDBPyConnection):
        # A cursor is a new connection to the same database: our SET stays off the caller's.
        cursor = source.cursor()
        try:
            yield cursor
        finally:
            cursor.close()
        return
    if not os.path.exists(source):
        raise ValueError(f"DuckDB file {os.fspath(source)} does not exist")
    # Admin connection (issue 18): the copy exports CSV files, which user connections cannot.
    con = open_duckdb_admin(source)
    try:
        yield con
    finally:
        con.close()


def _describe_source(con: duckdb.DuckDBPyConnection, table: str) -> _SourceTable:
    """Columns, primary key and row count of one table in DuckDB's main schema."""
    columns = con.execute(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    if not columns:
        raise ValueError(f"table {table} is not in the DuckDB source")
    keys = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
        [table],
    ).fetchall()
    text_columns = [name for name, data_type, _ in columns if data_type == "VARCHAR"]
    measures = ", ".join(f"max(length({_quote_pg(name)}))" for name in text_columns)
    counted = con.execute(
        f"SELECT count(*){', ' + measures if measures else ''} FROM {_quote_pg(table)}"
    ).fetchall()[0]
    lengths = dict(zip(text_columns, counted[1:], strict=True))
    return _SourceTable(
        name=table,
        columns=tuple(
            _SourceColumn(name, data_type, bool(nullable), lengths.get(name))
            for name, data_type, nullable in columns
        ),
        primary_key=tuple(keys[0][0]) if keys else (),
        rows=int(counted[0]),
    )


def _export_csv(
    con: duckdb.DuckDBPyConnection, spec: _SourceTable, path: Path, *, engine: str
) -> None:
    """Writes the table as CSV the target's bulk loader reads without per-value work."""
    select = ", ".join(_export_expression(c, engine) for c in spec.columns)
    if engine == "postgresql":
        # PostgreSQL CSV: an unquoted empty field is NULL and a quoted one ("") is the
        # empty string, which is exactly how DuckDB writes them.
        options = "HEADER false"
    else:
        # LOAD DATA has no quoted/unquoted distinction for empty fields; with every value
        # quoted, an unquoted NULL is the only null marker (a string 'NULL' stays quoted).
        options = "HEADER false, FORCE_QUOTE *, NULLSTR 'NULL'"
    target = str(path).replace("'", "''")
    con.execute(f"COPY (SELECT {select} FROM {_quote_pg(spec.name)}) TO '{target}' ({options})")


def _export_expression(column: _SourceColumn, engine: str) -> str:
    name = _quote_pg(column.name)
    kind = column.duckdb_type
    if kind == "BLOB":
        # PostgreSQL reads bytea in hex form '\x…'; MySQL gets hex and UNHEX()es it.
        return f"'\\x' || hex({name})" if engine == "postgresql" else f"hex({name})"
    if engine == "mysql" and kind == "BOOLEAN":
        return f"{name}::INTEGER"  # LOAD DATA would read 'true' as 0, with a warning
    if engine == "mysql" and kind == "TIMESTAMP WITH TIME ZONE":
        return f"timezone('UTC', {name})"  # DATETIME(6) holding UTC, without the offset
    return name


def _fetch_batches(
    con: duckdb.DuckDBPyConnection, spec: _SourceTable, size: int
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows for the INSERT path, converted as the CSV path converts them."""
    select = ", ".join(_insert_expression(c) for c in spec.columns)
    con.execute(f"SELECT {select} FROM {_quote_pg(spec.name)}")
    while batch := con.fetchmany(size):
        yield batch


def _insert_expression(column: _SourceColumn) -> str:
    name = _quote_pg(column.name)
    if column.duckdb_type == "UUID":
        return f"{name}::VARCHAR"  # PyMySQL cannot escape uuid.UUID
    if column.duckdb_type == "TIMESTAMP WITH TIME ZONE":
        return f"timezone('UTC', {name})"
    # Python bool, bytes, Decimal, date and datetime are escaped by PyMySQL itself.
    return name


# --- PostgreSQL --------------------------------------------------------------------------


def _copy_to_postgres(
    con: duckdb.DuckDBPyConnection,
    specs: list[_SourceTable],
    target: WarehouseConfig,
    schema: str | None,
    replace: bool,
    tmp: Path,
) -> dict[str, int]:
    import psycopg

    conn = _open_target(target)
    counts: dict[str, int] = {}
    try:
        with conn.transaction(), conn.cursor() as cur:
            if schema is not None:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_pg(schema)}")
            else:
                schema = str(cur.execute("SELECT current_schema()").fetchone()[0])
            if not replace:
                for spec in specs:
                    found = cur.execute(
                        "SELECT to_regclass(%s)", [f"{_quote_pg(schema)}.{_quote_pg(spec.name)}"]
                    ).fetchone()
                    if found is not None and found[0] is not None:
                        raise _table_exists(target, f"{schema}.{spec.name}")
            for spec in specs:
                counts[spec.name] = _postgres_table(con, cur, spec, schema, tmp)
    except psycopg.Error as exc:
        raise _warehouse_error(target, exc, _pg_message(exc)) from exc
    finally:
        with suppress(Exception):
            conn.close()
    return counts


def _postgres_table(
    con: duckdb.DuckDBPyConnection, cur: Any, spec: _SourceTable, schema: str, tmp: Path
) -> int:
    table = f"{_quote_pg(schema)}.{_quote_pg(spec.name)}"
    columns = ",\n    ".join(
        f"{_quote_pg(c.name)} {target_column_type(c.duckdb_type, 'postgresql')}"
        + ("" if c.nullable else " NOT NULL")
        for c in spec.columns
    )
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute(f"CREATE TABLE {table} (\n    {columns}\n)")
    path = tmp / f"{spec.name}.csv"
    _export_csv(con, spec, path, engine="postgresql")
    names = ", ".join(_quote_pg(c.name) for c in spec.columns)
    with cur.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT csv)") as copy, path.open("rb") as f:
        while chunk := f.read(_CSV_CHUNK_BYTES):
            copy.write(chunk)
    rows = cur.rowcount
    path.unlink()
    # Keys and indexes after the load: one sort each instead of index upkeep per row.
    if spec.primary_key:
        keys = ", ".join(_quote_pg(k) for k in spec.primary_key)
        cur.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({keys})")
    for index in INDEXES.get(spec.name, ()):
        cur.execute(
            f"CREATE INDEX {_quote_pg(_index_name(spec.name, index))} ON {table} "
            f"({', '.join(_quote_pg(c) for c in index)})"
        )
    cur.execute(f"ANALYZE {table}")
    _check_count(spec, rows)
    return rows


# --- MySQL / MariaDB ---------------------------------------------------------------------


def _copy_to_mysql(
    con: duckdb.DuckDBPyConnection,
    specs: list[_SourceTable],
    target: WarehouseConfig,
    schema: str | None,
    replace: bool,
    tmp: Path,
    bulk: MySQLBulk | None,
) -> dict[str, int]:
    import pymysql

    conn = _open_target(target, local_infile=bulk != "insert")
    counts: dict[str, int] = {}
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            # Strict mode turns a truncated or mis-typed value into an error on INSERT.
            cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
            database = schema or target.database
            assert database is not None
            if schema is not None:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {_quote_my(schema)}")
            collation = _mysql_binary_collation(cur)
            existing = _mysql_tables(cur, database)
            if not replace:
                for spec in specs:
                    if spec.name in existing:
                        raise _table_exists(target, f"{database}.{spec.name}")
            for spec in specs:
                counts[spec.name], bulk = _mysql_table(
                    con, cur, spec, database, collation, tmp, bulk, spec.name in existing
                )
    except pymysql.Error as exc:
        raise _warehouse_error(target, exc, _my_message(exc)) from exc
    finally:
        with suppress(Exception):
            conn.close()
    return counts


def _mysql_table(
    con: duckdb.DuckDBPyConnection,
    cur: Any,
    spec: _SourceTable,
    database: str,
    collation: str,
    tmp: Path,
    bulk: MySQLBulk | None,
    exists: bool,
) -> tuple[int, MySQLBulk | None]:
    """Loads one table into a staging table and swaps it in; returns rows and the path used."""
    final = f"{_quote_my(database)}.{_quote_my(spec.name)}"
    staging = f"{_quote_my(database)}.{_quote_my(_short(f'_tally_new_{spec.name}'))}"
    retired = f"{_quote_my(database)}.{_quote_my(_short(f'_tally_old_{spec.name}'))}"
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
        _check_count(spec, rows)
        indexes = [
            f"ADD INDEX {_quote_my(_index_name(spec.name, index))} "
            f"({', '.join(_quote_my(c) for c in index)})"
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


def _mysql_create(spec: _SourceTable, table: str, collation: str) -> str:
    types = _mysql_column_types(spec)
    lines = [
        f"{_quote_my(c.name)} {types[c.name]}" + ("" if c.nullable else " NOT NULL")
        for c in spec.columns
    ]
    if spec.primary_key:
        lines.append(f"PRIMARY KEY ({', '.join(_quote_my(k) for k in spec.primary_key)})")
    body = ",\n    ".join(lines)
    return (
        f"CREATE TABLE {table} (\n    {body}\n) "
        f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation}"
    )


def _mysql_column_types(spec: _SourceTable) -> dict[str, str]:
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
        if total <= _MYSQL_ROW_BYTES:
            break
        types[name] = "LONGTEXT"
        total -= 4 * widths[name]
    return types


class _LocalInfileRefused(Exception):
    """The server (or client) does not allow LOAD DATA LOCAL INFILE."""


def _mysql_load_data(
    con: duckdb.DuckDBPyConnection, cur: Any, spec: _SourceTable, table: str, tmp: Path
) -> int:
    import pymysql

    path = tmp / f"{spec.name}.csv"
    _export_csv(con, spec, path, engine="mysql")
    targets, sets = [], []
    for column in spec.columns:
        if column.duckdb_type == "BLOB":
            variable = f"@v{len(sets)}"
            targets.append(variable)
            sets.append(f"{_quote_my(column.name)} = UNHEX({variable})")
        else:
            targets.append(_quote_my(column.name))
    statement = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
        "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' "
        f"LINES TERMINATED BY '\\n' ({', '.join(targets)})"
        + (f" SET {', '.join(sets)}" if sets else "")
    )
    try:
        rows = cur.execute(statement, [str(path)])
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] in _MYSQL_NO_LOCAL_INFILE:
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


def _mysql_insert(con: duckdb.DuckDBPyConnection, cur: Any, spec: _SourceTable, table: str) -> int:
    names = ", ".join(_quote_my(c.name) for c in spec.columns)
    placeholders = ", ".join(["%s"] * len(spec.columns))
    # PyMySQL's executemany rewrites this into multi-row INSERTs (up to ~1 MB each).
    statement = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"
    rows = 0
    for batch in _fetch_batches(con, spec, _INSERT_BATCH_ROWS):
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


# --- shared helpers ----------------------------------------------------------------------


def _open_target(target: WarehouseConfig, *, local_infile: bool = False) -> Any:
    try:
        if target.engine == "mysql" and local_infile:
            import pymysql

            # connect() does not enable LOCAL INFILE (a client capability that lets the
            # server ask for files), so the loader opens its own connection.
            try:
                return pymysql.connect(
                    host=target.host,
                    port=target.port or 3306,
                    user=target.user or "root",
                    password=target.password or "",
                    database=target.database,
                    connect_timeout=10,
                    local_infile=True,
                    autocommit=True,
                )
            except pymysql.Error as exc:
                raise WarehouseUnavailable(
                    f"cannot connect to {target.display_url}: {exc}"
                ) from exc
        conn = connect_admin(target)
        if target.engine == "mysql":
            conn.autocommit(True)
        return conn
    except WarehouseUnavailable as exc:
        raise WarehouseError(
            str(exc),
            code="warehouse_unavailable",
            hint=UNAVAILABLE_HINT,
            details={"dialect": target.dialect},
        ) from exc


def _check_count(spec: _SourceTable, rows: int) -> None:
    if rows != spec.rows:
        raise WarehouseError(
            f"copied {rows} rows of {spec.name}, but the source has {spec.rows}",
            code="warehouse_error",
        )


def _table_exists(target: WarehouseConfig, table: str) -> Exception:
    return WarehouseError(
        TABLE_EXISTS_MESSAGE.format(table=table),
        code="warehouse_table_exists",
        hint="pass replace=True to replace it",
        details={"dialect": target.dialect},
    )


def _warehouse_error(target: WarehouseConfig, exc: Exception, message: str) -> Exception:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return WarehouseError(
        lines[0] if lines else type(exc).__name__,
        code="warehouse_error",
        details={"dialect": target.dialect},
    )


def _pg_message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    return getattr(diag, "message_primary", None) or str(exc)


def _my_message(exc: Exception) -> str:
    if len(exc.args) >= 2 and isinstance(exc.args[1], str):
        return exc.args[1]
    return str(exc)


def _index_name(table: str, columns: tuple[str, ...]) -> str:
    return _short(f"{table}_{'_'.join(columns)}_idx")


def _short(name: str) -> str:
    # PostgreSQL truncates identifiers past 63 bytes and MySQL rejects names past 64.
    if len(name) > 63:
        raise ValueError(f"identifier {name!r} is longer than 63 characters")
    return name


def _quote_pg(name: str) -> str:
    """Double-quoted identifier (PostgreSQL and DuckDB)."""
    return '"' + name.replace('"', '""') + '"'


def _quote_my(name: str) -> str:
    """Backquoted identifier (MySQL/MariaDB)."""
    return "`" + name.replace("`", "``") + "`"
