"""What the DuckDB → PostgreSQL/MySQL copy shares: the tables copied, the type mapping, reading
the DuckDB source, connecting to the target and its errors (see semantic.warehouse.loader).

This module is Django-free.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable, connect_admin, open_duckdb_admin
from semantic.warehouse.results import UNAVAILABLE_HINT
from tally.errors import WarehouseError

__all__ = [
    "DEMO_TABLES",
    "INDEXES",
    "TABLE_EXISTS_MESSAGE",
    "MySQLBulk",
    "SourceColumn",
    "SourceTable",
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

INSERT_BATCH_ROWS = 5_000
CSV_CHUNK_BYTES = 1 << 20
# MySQL's row limit is 65,535 bytes over all VARCHARs (4 bytes a character in utf8mb4);
# stay under it with room for the other columns.
MYSQL_ROW_BYTES = 60_000
MYSQL_VARCHAR_STEPS = (64, 255, 1024)
# ER_NOT_ALLOWED_COMMAND (1148), MySQL 8 "loading local data is disabled" (3948, 3950).
MYSQL_NO_LOCAL_INFILE = frozenset({1148, 3948, 3950})


@dataclass(frozen=True)
class SourceColumn:
    name: str
    duckdb_type: str
    nullable: bool
    max_length: int | None  # longest VARCHAR value, in characters (sizes MySQL VARCHARs)


@dataclass(frozen=True)
class SourceTable:
    name: str
    columns: tuple[SourceColumn, ...]
    primary_key: tuple[str, ...]
    rows: int


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
            return mysql_varchar(max_length)
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


def mysql_varchar(max_length: int | None) -> str:
    longest = max_length or 0
    for step in MYSQL_VARCHAR_STEPS:
        if longest <= step:
            return f"VARCHAR({step})"
    return "LONGTEXT"


# --- source ------------------------------------------------------------------------------


@contextmanager
def source_connection(
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


def describe_source(con: duckdb.DuckDBPyConnection, table: str) -> SourceTable:
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
    measures = ", ".join(f"max(length({quote_pg(name)}))" for name in text_columns)
    counted = con.execute(
        f"SELECT count(*){', ' + measures if measures else ''} FROM {quote_pg(table)}"
    ).fetchall()[0]
    lengths = dict(zip(text_columns, counted[1:], strict=True))
    return SourceTable(
        name=table,
        columns=tuple(
            SourceColumn(name, data_type, bool(nullable), lengths.get(name))
            for name, data_type, nullable in columns
        ),
        primary_key=tuple(keys[0][0]) if keys else (),
        rows=int(counted[0]),
    )


def export_csv(
    con: duckdb.DuckDBPyConnection, spec: SourceTable, path: Path, *, engine: str
) -> None:
    """Writes the table as CSV the target's bulk loader reads without per-value work."""
    select = ", ".join(export_expression(c, engine) for c in spec.columns)
    if engine == "postgresql":
        # PostgreSQL CSV: an unquoted empty field is NULL and a quoted one ("") is the
        # empty string, which is exactly how DuckDB writes them.
        options = "HEADER false"
    else:
        # LOAD DATA has no quoted/unquoted distinction for empty fields; with every value
        # quoted, an unquoted NULL is the only null marker (a string 'NULL' stays quoted).
        options = "HEADER false, FORCE_QUOTE *, NULLSTR 'NULL'"
    target = str(path).replace("'", "''")
    con.execute(f"COPY (SELECT {select} FROM {quote_pg(spec.name)}) TO '{target}' ({options})")


def export_expression(column: SourceColumn, engine: str) -> str:
    name = quote_pg(column.name)
    kind = column.duckdb_type
    if kind == "BLOB":
        # PostgreSQL reads bytea in hex form '\x…'; MySQL gets hex and UNHEX()es it.
        return f"'\\x' || hex({name})" if engine == "postgresql" else f"hex({name})"
    if engine == "mysql" and kind == "BOOLEAN":
        return f"{name}::INTEGER"  # LOAD DATA would read 'true' as 0, with a warning
    if engine == "mysql" and kind == "TIMESTAMP WITH TIME ZONE":
        return f"timezone('UTC', {name})"  # DATETIME(6) holding UTC, without the offset
    return name


def fetch_batches(
    con: duckdb.DuckDBPyConnection, spec: SourceTable, size: int
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows for the INSERT path, converted as the CSV path converts them."""
    select = ", ".join(insert_expression(c) for c in spec.columns)
    con.execute(f"SELECT {select} FROM {quote_pg(spec.name)}")
    while batch := con.fetchmany(size):
        yield batch


def insert_expression(column: SourceColumn) -> str:
    name = quote_pg(column.name)
    if column.duckdb_type == "UUID":
        return f"{name}::VARCHAR"  # PyMySQL cannot escape uuid.UUID
    if column.duckdb_type == "TIMESTAMP WITH TIME ZONE":
        return f"timezone('UTC', {name})"
    # Python bool, bytes, Decimal, date and datetime are escaped by PyMySQL itself.
    return name


# --- shared helpers ----------------------------------------------------------------------


def open_target(target: WarehouseConfig, *, local_infile: bool = False) -> Any:
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


def check_count(spec: SourceTable, rows: int) -> None:
    if rows != spec.rows:
        raise WarehouseError(
            f"copied {rows} rows of {spec.name}, but the source has {spec.rows}",
            code="warehouse_error",
        )


def table_exists(target: WarehouseConfig, table: str) -> Exception:
    return WarehouseError(
        TABLE_EXISTS_MESSAGE.format(table=table),
        code="warehouse_table_exists",
        hint="pass replace=True to replace it",
        details={"dialect": target.dialect},
    )


def warehouse_error(target: WarehouseConfig, exc: Exception, message: str) -> Exception:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return WarehouseError(
        lines[0] if lines else type(exc).__name__,
        code="warehouse_error",
        details={"dialect": target.dialect},
    )


def pg_message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    return getattr(diag, "message_primary", None) or str(exc)


def my_message(exc: Exception) -> str:
    if len(exc.args) >= 2 and isinstance(exc.args[1], str):
        return exc.args[1]
    return str(exc)


def index_name(table: str, columns: tuple[str, ...]) -> str:
    return short(f"{table}_{'_'.join(columns)}_idx")


def short(name: str) -> str:
    # PostgreSQL truncates identifiers past 63 bytes and MySQL rejects names past 64.
    if len(name) > 63:
        raise ValueError(f"identifier {name!r} is longer than 63 characters")
    return name


def quote_pg(name: str) -> str:
    """Double-quoted identifier (PostgreSQL and DuckDB)."""
    return '"' + name.replace('"', '""') + '"'


def quote_my(name: str) -> str:
    """Backquoted identifier (MySQL/MariaDB)."""
    return "`" + name.replace("`", "``") + "`"
