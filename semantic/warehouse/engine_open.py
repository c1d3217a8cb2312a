"""Opening ClickHouse (chdb embedded, or a server through clickhouse-connect) and Spark (local,
or a cluster through Spark Connect) as warehouses, restricted for user queries.

ClickHouse:
    chdb runs ClickHouse inside this process on a data directory (``chdb:///path``), like a
    DuckDB file. Only one directory per process (chdb's embedded server). A user connection
    opens with ``readonly=1`` (no writes, no DDL, no table functions such as ``file()`` or
    ``url()``, no setting changes), Tally's ClickHouse settings (``CLICKHOUSE_SETTINGS`` of
    semantic.compiler.dialects: UTC, SQL's NULLs from outer joins and CASTs) and the
    query's ``max_execution_time`` fixed at connect time; cancel stops the streaming result.
    A ClickHouse server (``clickhouse://user:password@host:8123/db``) is queried over HTTP
    with the same settings per query; Tally refuses a user whose ``readonly`` is 0 unless
    TALLY_WAREHOUSE_ALLOW_PRIVILEGED=1 (create the user with ``SETTINGS readonly = 2``:
    read-only, per-query settings allowed).

Spark:
    ``spark:///path`` runs Spark in local mode in this process (pyspark, a Java 17 runtime;
    ``spark.*`` query options of the URL are added to the session's configuration),
    one SparkSession per process; each table is a Parquet directory ``path/<database>/<table>``
    and is registered in the session's catalog when the session starts. ``sc://host:15002`` (or
    ``spark://host:15002``) reaches a cluster through Spark Connect. Each query runs in its
    own session (``newSession()`` locally), so session variables (the PII salt) never leak
    between queries; a timeout or cancel interrupts the query's jobs by tag.

Trino:
    ``trino://user@host:8080/catalog/schema`` through the official client; the query itself
    runs in semantic.warehouse.trino_session.

This module is Django-free.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from semantic.compiler.dialects import CLICKHOUSE_SETTINGS
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connect_errors import WarehouseUnavailable

SPARK_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    # Tally's dimensions are often expressions; small demo data need few shuffle partitions.
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
_LOCK = threading.Lock()
_LOCAL_SPARK: dict[str, Any] = {}
# Idle read-only chdb query connections by URL (chdb_query_connection).
_CHDB_LOCK = threading.Lock()
_CHDB_IDLE: dict[str, list[Any]] = {}
_CHDB_IDLE_PER_URL = 4


# --- ClickHouse ----------------------------------------------------------------------------


def chdb_connect(
    path: str, *, user: bool, settings: dict[str, str] | None = None, create: bool = False
) -> Any:
    """A chdb connection to the data directory ``path``; ``user`` connections are read-only
    (``readonly=1``: no writes, DDL, table functions or setting changes) with Tally's
    settings fixed at connect time.

    Raises:
        WarehouseUnavailable: the directory is missing or chdb refuses it (another data
            directory is already open in this process).
    """
    return _chdb_open(_chdb_url(path, user=user, settings=settings, create=create), path)


def chdb_query_connection(path: str, *, settings: dict[str, str] | None = None) -> tuple[str, Any]:
    """A read-only chdb connection for one query: an idle one opened earlier with the same
    URL, or a new one; returns (its URL, the connection). Hand it back with
    ``chdb_query_release`` once its result was read to the end.

    chdb (4.4) leaves native threads and descriptors behind for every connection it closes
    (measured: ~9 descriptors and 5 threads per connect, query and close), so a process
    that opened one per query ran out of descriptors; a connection reused keeps none.

    Raises:
        WarehouseUnavailable: as ``chdb_connect``.
    """
    url = _chdb_url(path, user=True, settings=settings, create=False)
    with _CHDB_LOCK:
        idle = _CHDB_IDLE.get(url)
        if idle:
            return url, idle.pop()
    return url, _chdb_open(url, path)


def chdb_query_release(url: str, conn: Any) -> None:
    """Keeps a query connection whose stream ended for the next query (a few per URL: the
    queries that ran at once); closes a surplus one."""
    with _CHDB_LOCK:
        idle = _CHDB_IDLE.setdefault(url, [])
        if len(idle) < _CHDB_IDLE_PER_URL:
            idle.append(conn)
            return
    conn.close()


def _chdb_url(path: str, *, user: bool, settings: dict[str, str] | None, create: bool) -> str:
    if path != ":memory:" and not create and not os.path.isdir(path):
        raise WarehouseUnavailable(
            f"chdb directory {path} does not exist (load it with `tally demo --warehouse "
            "chdb:///…` or copy_duckdb_tables)"
        )
    values = dict(CLICKHOUSE_SETTINGS)
    values.update(settings or {})
    if user:
        values["readonly"] = "1"
    target = path if path == ":memory:" else os.path.abspath(path)
    return f"{target}?{urlencode(values)}"


def _chdb_open(url: str, path: str) -> Any:
    import chdb

    # chdb serves one data directory per process: idle connections to another one would
    # make it refuse this one.
    target = url.partition("?")[0]
    with _CHDB_LOCK:
        others = [key for key in _CHDB_IDLE if key.partition("?")[0] != target]
        stale = [conn for key in others for conn in _CHDB_IDLE.pop(key)]
    for conn in stale:
        conn.close()
    try:
        return chdb.connect(url)
    except Exception as exc:  # chdb raises RuntimeError for every refusal
        raise WarehouseUnavailable(f"cannot open chdb directory {path}: {exc}") from exc


def clickhouse_client(config: WarehouseConfig, *, timeout_s: float, user: bool) -> Any:
    """A clickhouse-connect client for a ClickHouse server.

    Raises:
        WarehouseUnavailable: the server cannot be reached or refuses the credentials.
    """
    import clickhouse_connect

    options = dict(config.options)
    try:
        return clickhouse_connect.get_client(
            host=config.host,
            port=config.port,
            username=config.user or "default",
            password=config.password or "",
            database=config.database,
            secure=options.get("secure", "false").lower() in ("1", "true"),
            connect_timeout=max(1, int(timeout_s)),
            send_receive_timeout=max(1, int(timeout_s)),
            settings={} if user else dict(CLICKHOUSE_SETTINGS),
        )
    except Exception as exc:  # clickhouse_connect's OperationalError and socket errors
        raise WarehouseUnavailable(f"cannot connect to {config.display_url}: {exc}") from exc


def clickhouse_privileged_because(client: Any) -> str | None:
    """Why a ClickHouse server user is too privileged for Tally (``readonly`` = 0), or None."""
    readonly = client.command("SELECT getSetting('readonly')")
    if str(readonly).strip() in ("0", ""):
        return "its profile allows writes and table functions (readonly = 0)"
    return None


# --- Spark ---------------------------------------------------------------------------------


def spark_session(config: WarehouseConfig) -> Any:
    """The process's Spark session for ``config``: local (created once, its Parquet tables
    registered) or a new Spark Connect session.

    Raises:
        WarehouseUnavailable: pyspark or Java is missing, or the cluster does not answer.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise WarehouseUnavailable("Spark needs pyspark (pip install 'tally[spark]')") from exc
    if config.host is not None:
        url = f"sc://{config.host}:{config.port}"
        if config.user:
            url += f"/;user_id={config.user}"
        if config.password:
            url += f";token={config.password}"
        try:
            session = SparkSession.builder.remote(url).create()
            for key, value in SPARK_CONF.items():
                if key.startswith("spark.sql.") and "arrow" not in key:
                    session.conf.set(key, value)
            if config.database and config.database != "default":
                session.catalog.setCurrentDatabase(config.database)
            return session
        except Exception as exc:  # grpc errors of every kind
            raise WarehouseUnavailable(f"cannot connect to {config.display_url}: {exc}") from exc
    assert config.path is not None
    with _LOCK:
        session = _LOCAL_SPARK.get(config.path)
        if session is not None:
            return session
        if _LOCAL_SPARK:
            raise WarehouseUnavailable(
                f"a local Spark session for {next(iter(_LOCAL_SPARK))} is running in this "
                f"process; one local Spark warehouse per process ({config.path})"
            )
        if not os.path.isdir(config.path):
            raise WarehouseUnavailable(
                f"Spark warehouse directory {config.path} does not exist (load it with "
                "`tally demo --warehouse spark:///…` or copy_duckdb_tables)"
            )
        builder = SparkSession.builder.master(os.environ.get("TALLY_SPARK_MASTER", "local[2]"))
        builder = builder.appName("tally").config(
            "spark.sql.warehouse.dir", os.path.abspath(config.path)
        )
        # spark.* options of the URL (spark:///dir?spark.sql.shuffle.partitions=1) win.
        conf = {**SPARK_CONF, **{k: v for k, v in config.options if k.startswith("spark.")}}
        # The JVM's own clock is UTC too, after the URL's JVM options (kept, not replaced).
        java = conf.pop("spark.driver.extraJavaOptions", "")
        conf["spark.driver.extraJavaOptions"] = f"{java} -Duser.timezone=UTC".strip()
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            session = builder.getOrCreate()
        except Exception as exc:  # no Java, port clash, …
            raise WarehouseUnavailable(f"cannot start local Spark: {exc}") from exc
        session.sparkContext.setLogLevel("ERROR")
        spark_register_tables(session, Path(config.path))
        _LOCAL_SPARK[config.path] = session
        return session


def spark_register_tables(session: Any, root: Path) -> None:
    """Registers each Parquet directory ``root/<database>/<table>`` as ``database.table``.

    ``<name>.db`` directories are Spark's own (the location of a database it created, such
    as the schema of published views), not a database of Parquet tables.
    """
    for database in sorted(root.iterdir()):
        if not database.is_dir() or database.name.startswith((".", "_")):
            continue
        if database.name.endswith(".db"):
            continue
        session.sql(f"CREATE DATABASE IF NOT EXISTS `{database.name}`")
        for entry in sorted(database.iterdir()):
            if entry.is_dir() and not entry.name.startswith((".", "_")):
                # resolve(): a symlinked table (Tally's time spine) is registered at the
                # directory it points to now, which later swaps of the link leave in place.
                session.sql(
                    f"CREATE TABLE IF NOT EXISTS `{database.name}`.`{entry.name}` "
                    f"USING parquet LOCATION '{_location(entry.resolve())}'"
                )


def _qualified(database: str, name: str) -> str:
    return ".".join(f"`{part.replace('`', '``')}`" for part in (database, name))


def _location(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def spark_table_locate(session: Any, database: str, name: str, location: Path) -> None:
    """Points ``database.name`` at the Parquet directory ``location`` in one catalog step:
    registered when missing, else moved (a query planned before reads the old files)."""
    session.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    if session.catalog.tableExists(_qualified(database, name)):
        session.sql(f"ALTER TABLE `{database}`.`{name}` SET LOCATION '{_location(location)}'")
    else:
        session.sql(
            f"CREATE TABLE `{database}`.`{name}` USING parquet LOCATION '{_location(location)}'"
        )


def spark_table_exists(config: WarehouseConfig, database: str, name: str) -> bool:
    """Whether the Spark catalog holds ``database.name`` (Spark has no information_schema)."""
    session = spark_session(config)
    try:
        return bool(session.catalog.tableExists(_qualified(database, name)))
    finally:
        if config.host is not None:
            session.stop()


def spark_user_session(config: WarehouseConfig) -> Any:
    """A session of its own for one query (its variables and tags), sharing the engine."""
    base = spark_session(config)
    if config.host is not None:
        return base
    return base.newSession()


class SparkHandle:
    """What ``connect`` returns for Spark: the session, for a ping and a close."""

    def __init__(self, config: WarehouseConfig) -> None:
        self.config = config
        self.session = spark_session(config)

    def ping(self) -> None:
        self.session.sql("SELECT 1").collect()

    def close(self) -> None:
        # The local session lives as long as the process; a Connect session ends here.
        if self.config.host is not None:
            self.session.stop()


def local_spark_running(config: WarehouseConfig) -> Any:
    """This process's local Spark session on ``config.path``, or None when none started."""
    with _LOCK:
        return _LOCAL_SPARK.get(config.path or "")


def trino_catalog_schema(config: WarehouseConfig) -> tuple[str, str]:
    """The catalog and schema of ``trino://…/catalog/schema`` (schema ``default`` if absent).

    Example:
        >>> from semantic.warehouse.config import WarehouseConfig as C
        >>> trino_catalog_schema(C(engine="trino", dialect="trino", database="hive/sales"))
        ('hive', 'sales')
    """
    catalog, _, schema = (config.database or "").partition("/")
    return catalog, schema or "default"


def trino_connect(config: WarehouseConfig, *, timeout_s: float) -> Any:
    """A Trino DB-API connection (no request is sent until the first statement)."""
    try:
        import trino
    except ImportError as exc:
        raise WarehouseUnavailable(
            "the Trino client is not installed (pip install 'tally[trino]')"
        ) from exc
    catalog, schema = trino_catalog_schema(config)
    options = dict(config.options)
    secure = options.get("secure", "").lower() in ("1", "true", "yes")
    auth = None
    if config.password:
        if not secure:
            raise WarehouseUnavailable(
                "Trino accepts a password over HTTPS only: add ?secure=true to WAREHOUSE_URL"
            )
        auth = trino.auth.BasicAuthentication(config.user or "", config.password)
    return trino.dbapi.connect(
        host=config.host or "",
        port=config.port,
        user=config.user or "tally",
        catalog=catalog,
        schema=schema,
        http_scheme="https" if secure else "http",
        auth=auth,
        source="tally",
        timezone="UTC",
        request_timeout=max(1.0, timeout_s),
        max_attempts=1,
        session_properties={"query_max_run_time": f"{max(1, int(timeout_s + 0.999))}s"},
    )
