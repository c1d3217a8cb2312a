"""Copies DuckDB tables into Spark: for a local Spark warehouse (``spark:///dir``) DuckDB
writes each table as a Parquet directory ``dir/<database>/<table>`` (no Spark needed to
load; the database is ``schema``, default ``default``); for a
Spark Connect cluster the rows go over as Arrow into ``saveAsTable`` (see
semantic.warehouse.loader).

Timestamps are written as instants (TIMESTAMPTZ, read in UTC by Tally's Spark sessions), so
Spark types them TIMESTAMP as every dialect Tally compiles for expects; JSON and UUID become
STRING and HUGEINT DECIMAL(38,0).

This module is Django-free.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.load_common import SourceColumn, SourceTable, quote_pg, table_exists

_UNSUPPORTED = ("INTERVAL", "TIME", "TIME WITH TIME ZONE", "UHUGEINT")


def _export_expression(column: SourceColumn) -> str:
    name = quote_pg(column.name)
    kind = column.duckdb_type.upper()
    if kind in _UNSUPPORTED or "[" in kind or kind.startswith(("STRUCT", "MAP", "UNION")):
        raise ValueError(f"cannot copy DuckDB type {column.duckdb_type} to Spark")
    if kind in ("JSON", "UUID"):
        return f"{name}::VARCHAR AS {name}"
    if kind == "HUGEINT":
        return f"{name}::DECIMAL(38,0) AS {name}"
    if kind.startswith("TIMESTAMP") and "TIME ZONE" not in kind:
        # A naive timestamp is UTC in Tally; as an instant Spark reads it as TIMESTAMP.
        return f"timezone('UTC', {name}) AS {name}"
    return name


def copy_to_spark(
    con: duckdb.DuckDBPyConnection,
    specs: list[SourceTable],
    target: WarehouseConfig,
    schema: str | None,
    replace: bool,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    if target.host is not None:
        return _copy_to_connect(con, specs, target, schema, replace)
    assert target.path is not None
    database = schema or "default"
    root = Path(target.path) / database
    root.mkdir(parents=True, exist_ok=True)
    if not replace:
        for spec in specs:
            if (root / spec.name).exists():
                raise table_exists(target, f"{database}.{spec.name}")
    for spec in specs:
        select = ", ".join(_export_expression(c) for c in spec.columns)
        staging = root / f"_tally_new_{spec.name}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        quoted = str(staging / "part-0.parquet").replace("'", "''")
        con.execute(
            f"COPY (SELECT {select} FROM {quote_pg(spec.name)}) TO '{quoted}' (FORMAT parquet)"
        )
        final = root / spec.name
        retired = root / f"_tally_old_{spec.name}"
        if final.exists():
            final.rename(retired)
        staging.rename(final)
        shutil.rmtree(retired, ignore_errors=True)
        counts[spec.name] = spec.rows
    _refresh_local(target, specs, database)
    return counts


def _refresh_local(target: WarehouseConfig, specs: list[SourceTable], database: str) -> None:
    """A local session already running in this process sees the new files and tables."""
    from semantic.warehouse.engine_open import local_spark_running, spark_register_tables

    session = local_spark_running(target)
    if session is None:
        return
    assert target.path is not None
    spark_register_tables(session, Path(target.path))
    for spec in specs:
        session.sql(f"REFRESH TABLE `{database}`.`{spec.name}`")


def _copy_to_connect(
    con: duckdb.DuckDBPyConnection,
    specs: list[SourceTable],
    target: WarehouseConfig,
    schema: str | None,
    replace: bool,
) -> dict[str, int]:
    from semantic.warehouse.engine_open import spark_session

    session = spark_session(target)
    counts: dict[str, int] = {}
    try:
        database = schema or target.database or "default"
        session.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
        for spec in specs:
            name = f"`{database}`.`{spec.name}`"
            if not replace and session.catalog.tableExists(spec.name, database):
                raise table_exists(target, f"{database}.{spec.name}")
            select = ", ".join(_export_expression(c) for c in spec.columns)
            table = con.sql(f"SELECT {select} FROM {quote_pg(spec.name)}").to_arrow_table()
            session.createDataFrame(table).write.mode("overwrite").saveAsTable(name)
            counts[spec.name] = table.num_rows
    finally:
        session.stop()
    return counts
