"""Connections to the warehouse named by WAREHOUSE_URL (DuckDB, PostgreSQL, MariaDB through
DB-API; chdb, ClickHouse and Spark through semantic.warehouse.engine_open).

Least privilege (issue 18): every connection that can run a query built from user input is
a *user* connection. On DuckDB it opens with external access disabled (no read_text,
read_csv, COPY, ATTACH, extension installs) and the configuration locked, so a compiler bug
cannot read files either. On PostgreSQL and MariaDB Tally checks the role at connect time
and refuses a superuser or a role that can read or write server files, unless
TALLY_WAREHOUSE_ALLOW_PRIVILEGED=1 (``WarehouseConfig.allow_privileged``). Tally's own
administration (copying the demo into a server warehouse) uses the explicitly privileged
``connect_admin`` and ``open_duckdb_admin``, which no query path calls.
"""

from __future__ import annotations

import os
import re
from typing import Any, Protocol

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connect_errors import WarehousePrivileged, WarehouseUnavailable

__all__ = [
    "WarehousePrivileged",
    "WarehouseUnavailable",
    "connect",
    "connect_admin",
    "duckdb_user_connect",
    "open_duckdb_admin",
    "warehouse_ping",
]

# DuckDB settings of every user connection; lock_configuration is SET after the TimeZone
# (setting TimeZone needs ICU loaded, which a config given at open time is applied before).
DUCKDB_USER_CONFIG: dict[str, str] = {"enable_external_access": "false"}
ALLOW_PRIVILEGED_VARIABLE = "TALLY_WAREHOUSE_ALLOW_PRIVILEGED"
MSG_PRIVILEGED = (
    "refusing to query {url} as {user!r}: {why}; Tally queries the warehouse with a "
    "read-only role (set {variable}=1 to override)"
)
MSG_DUCKDB_UNLOCKED = "DuckDB file {path} is open in this process without Tally's restrictions"
# PostgreSQL: a superuser, or a member of the roles that read/write server files or run
# programs (pg_has_role is true for superusers too, and follows indirect membership).
_PG_PRIVILEGE_QUERY = (
    "SELECT r.rolsuper, pg_has_role(current_user, 'pg_read_server_files', 'MEMBER'), "
    "pg_has_role(current_user, 'pg_write_server_files', 'MEMBER'), "
    "pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') "
    "FROM pg_roles AS r WHERE r.rolname = current_user"
)
_PG_PRIVILEGES = (
    "is a superuser",
    "can read server files (pg_read_server_files)",
    "can write server files (pg_write_server_files)",
    "can run server programs (pg_execute_server_program)",
)
# MariaDB/MySQL: global grants (ON *.*) of FILE, SUPER or ALL PRIVILEGES.
_MYSQL_GLOBAL_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON \*\.\* TO ", re.IGNORECASE)
_MYSQL_PRIVILEGED = ("ALL PRIVILEGES", "FILE", "SUPER")


class DBAPIConnection(Protocol):
    """The part of PEP 249 Tally uses."""

    def cursor(self) -> Any: ...

    def close(self) -> None: ...


def connect(config: WarehouseConfig, *, timeout_s: float = 10.0, create: bool = False) -> Any:
    """Opens a least-privilege (user) DB-API connection to the warehouse.

    Args:
        config: parsed WAREHOUSE_URL.
        timeout_s: connect timeout for server warehouses.
        create: for DuckDB, create the file when it does not exist (the demo generator does);
            otherwise a missing file is an error rather than a silently empty warehouse.

    Returns:
        An open DB-API connection; the caller closes it.

    Raises:
        WarehouseUnavailable: the warehouse cannot be reached.
        WarehousePrivileged: the role is a superuser or can read server files (PostgreSQL,
            MariaDB), and ``config.allow_privileged`` is not set.
    """
    conn = _open(config, timeout_s=timeout_s, create=create, user=True)
    # Embedded engines open user connections restricted already (DuckDB without external
    # access, chdb readonly=1); Spark has no roles to check (see docs: read-only access is
    # the cluster's to grant).
    if config.engine in _ROLE_CHECKED and not config.allow_privileged:
        try:
            why = _privileged_because(config, conn)
        except Exception as exc:  # any driver error: the role could not be checked
            conn.close()
            raise WarehouseUnavailable(
                f"cannot check the privileges of {config.user!r} on {config.display_url}: {exc}"
            ) from exc
        if why is not None:
            conn.close()
            raise WarehousePrivileged(
                MSG_PRIVILEGED.format(
                    url=config.display_url,
                    user=config.user,
                    why=why,
                    variable=ALLOW_PRIVILEGED_VARIABLE,
                )
            )
    return conn


def connect_admin(config: WarehouseConfig, *, timeout_s: float = 10.0) -> Any:
    """Opens a privileged connection for Tally's own administration (loading data).

    No role check and, on DuckDB, external access enabled. Never for a query built from
    user input: those go through :func:`connect`.
    """
    return _open(config, timeout_s=timeout_s, create=False, user=False)


def duckdb_user_connect(path: str, *, read_only: bool) -> Any:
    """A DuckDB connection for user queries: UTC, no external access, configuration locked.

    Raises:
        duckdb.Error: the file cannot be opened (e.g. ``ConnectionException`` when this
            process holds it open with another configuration).
        WarehouseUnavailable: the instance is shared with a connection that is not locked.
    """
    import duckdb

    con = duckdb.connect(path, read_only=read_only, config=dict(DUCKDB_USER_CONFIG))
    try:
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        con.execute("SET lock_configuration = true")
    except duckdb.InvalidInputException:
        # Another user connection of this process's instance locked it already.
        pass
    # fetchall: DuckDB refuses the next statement while a result is left unfinished.
    settings = con.execute(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration'),"
        " current_setting('TimeZone')"
    ).fetchall()
    if settings != [(False, True, "UTC")]:
        con.close()
        raise WarehouseUnavailable(MSG_DUCKDB_UNLOCKED.format(path=path))
    return con


def open_duckdb_admin(path: str | os.PathLike[str]) -> Any:
    """Opens a DuckDB file with the default configuration (external access on) for Tally's
    own administration, read-only when no connection of this process holds it read-write."""
    import duckdb

    name = os.fspath(path)
    try:
        return duckdb.connect(name, read_only=True)
    except duckdb.ConnectionException:
        return duckdb.connect(name)


_ROLE_CHECKED = ("postgresql", "mysql", "clickhouse", "snowflake")


def _privileged_because(config: WarehouseConfig, conn: Any) -> str | None:
    """Why the connected role is too privileged for Tally, or None."""
    if config.engine == "clickhouse":
        from semantic.warehouse.engine_open import clickhouse_privileged_because

        return clickhouse_privileged_because(conn)
    if config.engine == "snowflake":
        from semantic.warehouse.cloud_open import snowflake_privileged_because

        return snowflake_privileged_because(conn)
    cur = conn.cursor()
    try:
        if config.engine == "postgresql":
            cur.execute(_PG_PRIVILEGE_QUERY)
            row = cur.fetchone()
            conn.rollback()  # leave no transaction open behind the check
            if row is None:
                return "its role is not in pg_roles"
            reasons = [text for flag, text in zip(row, _PG_PRIVILEGES, strict=True) if flag]
            return " and ".join(reasons) or None
        cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        held: set[str] = set()
        for (grant,) in cur.fetchall():
            match = _MYSQL_GLOBAL_GRANT.match(str(grant))
            if match:
                held.update(p.strip().upper() for p in match["privileges"].split(","))
        found = [p for p in _MYSQL_PRIVILEGED if p in held]
        return f"it holds {', '.join(found)} on *.*" if found else None
    finally:
        cur.close()


def _open(config: WarehouseConfig, *, timeout_s: float, create: bool, user: bool) -> Any:
    if config.engine == "duckdb":
        import duckdb

        assert config.path is not None
        if config.path != ":memory:" and not create and not os.path.exists(config.path):
            raise WarehouseUnavailable(
                f"DuckDB file {config.path} does not exist (run `tally generate-demo` or "
                "`tally demo` to build the demo warehouse)"
            )
        try:
            if user:
                return duckdb_user_connect(config.path, read_only=False)
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
    if config.engine in ("chdb", "clickhouse", "spark"):
        from semantic.warehouse import engine_open

        if config.engine == "chdb":
            assert config.path is not None
            return engine_open.chdb_connect(config.path, user=user, create=create)
        if config.engine == "clickhouse":
            return engine_open.clickhouse_client(config, timeout_s=timeout_s, user=user)
        return engine_open.SparkHandle(config)
    if config.engine == "trino":
        from semantic.warehouse.engine_open import trino_connect

        return trino_connect(config, timeout_s=timeout_s)
    if config.engine == "snowflake":
        from semantic.warehouse.cloud_open import snowflake_connect

        return snowflake_connect(config, timeout_s=timeout_s)
    if config.engine == "bigquery":
        from semantic.warehouse.cloud_open import bigquery_client

        return bigquery_client(config)
    raise WarehouseUnavailable(f"no driver for warehouse engine {config.engine!r}")


def _chdb_ping(config: WarehouseConfig) -> None:
    # On a pooled query connection: /healthz pings on every call, and chdb leaves threads
    # and descriptors behind for each connection closed (engine_open.chdb_query_connection).
    from semantic.warehouse.engine_open import chdb_query_connection, chdb_query_release

    assert config.path is not None
    url, conn = chdb_query_connection(config.path)
    try:
        conn.query("SELECT 1", "CSV")
    except Exception as exc:  # any driver error means "not healthy"; the text says which
        conn.close()
        raise WarehouseUnavailable(f"{config.display_url} did not answer SELECT 1: {exc}") from exc
    chdb_query_release(url, conn)


def warehouse_ping(config: WarehouseConfig, *, timeout_s: float = 3.0) -> None:
    """Runs ``SELECT 1`` on the warehouse.

    Raises:
        WarehouseUnavailable: it cannot be reached or does not answer.
    """
    if config.engine == "chdb":
        _chdb_ping(config)
        return
    conn = connect(config, timeout_s=timeout_s)
    try:
        if config.engine in ("clickhouse", "spark"):
            if conn.ping() is False:  # clickhouse-connect answers False rather than raising
                raise WarehouseUnavailable("ping failed")
        elif config.engine == "bigquery":
            from semantic.warehouse.cloud_open import bigquery_ping

            bigquery_ping(conn, timeout_s=timeout_s)
        else:
            cur = conn.cursor()
            cur.execute("SELECT 1")
            cur.fetchall()
    except Exception as exc:  # any driver error means "not healthy"; the text says which
        raise WarehouseUnavailable(f"{config.display_url} did not answer SELECT 1: {exc}") from exc
    finally:
        conn.close()
