"""DB-API connections to the warehouse named by WAREHOUSE_URL (DuckDB, PostgreSQL, MariaDB)."""

from __future__ import annotations

import os
from typing import Any, Protocol

from semantic.warehouse.config import WarehouseConfig


class WarehouseUnavailable(ConnectionError):
    """The warehouse cannot be reached (down, missing file, bad credentials)."""


class DBAPIConnection(Protocol):
    """The part of PEP 249 Tally uses."""

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


def connect(config: WarehouseConfig, *, timeout_s: float = 10.0, create: bool = False) -> Any:
    """Opens a DB-API connection to the warehouse.

    Args:
        config: parsed WAREHOUSE_URL.
        timeout_s: connect timeout for server warehouses.
        create: for DuckDB, create the file when it does not exist (the demo generator does);
            otherwise a missing file is an error rather than a silently empty warehouse.

    Returns:
        An open DB-API connection; the caller closes it.

    Raises:
        WarehouseUnavailable: the warehouse cannot be reached.
    """
    if config.engine == "duckdb":
        import duckdb

        assert config.path is not None
        if config.path != ":memory:" and not create and not os.path.exists(config.path):
            raise WarehouseUnavailable(
                f"DuckDB file {config.path} does not exist (run `tally generate-demo` or "
                "`tally demo` to build the demo warehouse)"
            )
        try:
            return duckdb.connect(config.path)
        except duckdb.Error as exc:
            raise WarehouseUnavailable(f"cannot open DuckDB file {config.path}: {exc}") from exc
    if config.engine == "postgresql":
        import psycopg

        try:
            return psycopg.connect(
                host=config.host,
                port=config.port,
                user=config.user,
                password=config.password,
                dbname=config.database,
                connect_timeout=max(1, int(timeout_s)),
                **dict(config.options),
            )
        except psycopg.Error as exc:
            raise WarehouseUnavailable(f"cannot connect to {config.display_url}: {exc}") from exc
    if config.engine == "mysql":
        import pymysql

        try:
            return pymysql.connect(
                host=config.host,
                port=config.port,
                user=config.user or "root",
                password=config.password or "",
                database=config.database,
                connect_timeout=timeout_s,
            )
        except pymysql.Error as exc:
            raise WarehouseUnavailable(f"cannot connect to {config.display_url}: {exc}") from exc
    raise WarehouseUnavailable(f"no driver for warehouse engine {config.engine!r}")


def warehouse_ping(config: WarehouseConfig, *, timeout_s: float = 3.0) -> None:
    """Runs ``SELECT 1`` on the warehouse.

    Raises:
        WarehouseUnavailable: it cannot be reached or does not answer.
    """
    conn = connect(config, timeout_s=timeout_s)
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()
    except Exception as exc:  # any driver error means "not healthy"; the text says which
        raise WarehouseUnavailable(f"{config.display_url} did not answer SELECT 1: {exc}") from exc
    finally:
        conn.close()
