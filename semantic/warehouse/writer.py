"""Statements that change the warehouse: one read-write connection, run in a transaction.

Used by the time spine build and by published views. ClickHouse (chdb or a server) and
Spark have no multi-statement transactions: there the statements run one by one, each
atomic by itself (``CREATE OR REPLACE VIEW`` swaps a view in one step). Driver errors become WarehouseError
with the statement's hash; the statement text goes to the log only.

This module is Django-free.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from sqlglot import exp

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connections import WarehouseUnavailable, connect, connect_admin
from semantic.warehouse.execute import UNAVAILABLE_HINT, UNAVAILABLE_MESSAGE, execute, sql_hash
from semantic.warehouse.held import held_release
from tally.errors import WarehouseError

__all__ = ["Writer", "create_schema", "schema_exists", "statements_apply"]

# The time spine's logger: its build was this module's first user, and log filters name it.
logger = logging.getLogger("tally.time_spine")

# Engines whose DDL runs in a transaction the writer commits (MySQL's DDL commits by itself,
# but its DML does not).
_TRANSACTIONAL = ("duckdb", "postgresql", "mysql")


def schema_exists(config: WarehouseConfig, schema: str) -> bool:
    column: exp.Expression = exp.column("schema_name")
    if config.engine == "duckdb":
        column, schema = exp.Lower(this=column), schema.lower()
    query = (
        exp.select(exp.Literal.number(1))
        .from_(exp.table_("schemata", db="information_schema"))
        .where(exp.EQ(this=column, expression=exp.Literal.string(schema)))
    )
    return bool(execute(config, query.sql(dialect=config.dialect)).rows)


def create_schema(schema: str) -> exp.Create:
    # On MySQL/MariaDB a schema is a database: CREATE SCHEMA is CREATE DATABASE there.
    return exp.Create(this=exp.Table(db=exp.to_identifier(schema)), kind="SCHEMA", exists=True)


class Writer:
    """One read-write connection; runs rendered statements and maps driver errors."""

    def __init__(self, config: WarehouseConfig) -> None:
        self.config = config
        if config.engine == "duckdb" and config.path is not None:
            # A DuckDB file this process holds read-only between queries (a SQL API server)
            # refuses a read-write connection: let go of it first.
            held_release(config.path)
        try:
            # chdb's user connections are readonly=1 (no DDL); this process owns the data
            # directory, as it owns a DuckDB file, and writes only statements Tally built.
            self.conn = connect_admin(config) if config.engine == "chdb" else connect(config)
        except WarehouseUnavailable as exc:
            raise WarehouseError(
                UNAVAILABLE_MESSAGE.format(url=config.display_url, reason=str(exc)),
                code="warehouse_unavailable",
                hint=UNAVAILABLE_HINT,
            ) from exc
        self.transactional = config.engine in _TRANSACTIONAL
        # DuckDB's cursor() is a second connection with its own transaction, so BEGIN and
        # COMMIT must go through the connection itself. A ClickHouse server's client, a
        # Spark session and a BigQuery client run statements themselves (command(), sql(),
        # query()).
        self.cursor: Any = None
        if config.engine == "duckdb":
            self.cursor = self.conn
        elif config.engine not in ("clickhouse", "spark", "bigquery"):
            self.cursor = self.conn.cursor()

    def _execute(self, sql: str) -> None:
        if self.config.engine == "clickhouse":
            self.conn.command(sql)
        elif self.config.engine == "spark":
            self.conn.session.sql(sql).collect()
        elif self.config.engine == "bigquery":
            self.conn.query(sql).result()
        elif self.config.engine == "trino":
            # The Trino client submits the statement; reading its result waits for the end.
            self.cursor.execute(sql)
            self.cursor.fetchall()
        else:
            self.cursor.execute(sql)

    def run(self, statement: exp.Expression) -> None:
        sql = statement.sql(dialect=self.config.dialect)
        try:
            self._execute(sql)
        except Exception as exc:  # any driver error: the statement text is in the log only
            logger.warning("time spine statement failed: %s: %s", sql, exc)
            lines = [line for line in str(exc).strip().splitlines() if line.strip()]
            raise WarehouseError(
                lines[0] if lines else "the warehouse rejected a time spine statement",
                code="warehouse_error",
                details={"dialect": self.config.dialect, "sql_hash": sql_hash(sql)},
            ) from exc

    def begin(self) -> None:
        # psycopg and PyMySQL open a transaction implicitly; DuckDB's Python API autocommits.
        if self.config.engine == "duckdb":
            self.cursor.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        if self.transactional:
            self.conn.commit()

    def rollback(self) -> None:
        if not self.transactional:
            return
        try:
            self.conn.rollback()
        except (
            Exception
        ):  # nothing open (DuckDB after a failed BEGIN); the error that led here counts
            logger.debug("rollback after a failed time spine build", exc_info=True)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            logger.debug("closing the time spine connection", exc_info=True)


def statements_apply(writer: Writer, statements: Iterable[exp.Expression]) -> None:
    """Runs the statements in one transaction: all of them, or (on an error) none."""
    writer.begin()
    try:
        for statement in statements:
            writer.run(statement)
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
