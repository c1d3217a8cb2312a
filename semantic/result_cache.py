"""Result cache of metric queries: a dashboard refresh that repeats a query does not scan
the warehouse again unless the data changed.

Key: the release, the SQL that runs (it holds the query and the row policies and masks
compiled into it) and the row cap, the principal's policy
binding (``Principal.cache_key``: row policies, masks, tenant) plus a digest of the session
values its SQL reads (the PII salt), the warehouse, and the warehouse's DATA VERSION: the row
count and newest time value of every source of the release (one cheap aggregate per model,
itself remembered for TALLY_RESULT_CACHE_VERSION_S so a burst of refreshes costs one look).
Two principals whose policies differ never share an entry: their keys differ.

Entries live in Django's default cache: Redis when TALLY_CACHE_URL is set (shared by every
web process), else this process's memory. Only answers of up to TALLY_RESULT_CACHE_MAX_ROWS
rows are kept, for TALLY_RESULT_CACHE_TTL_S (0 turns the cache off). An entry is a
``StoredAnswer`` (rows pickled and JSON-encoded once, semantic/answers.py). A cache that
cannot be reached (Redis restarting) is a miss, never an error: the query scans instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlglot
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError
from sqlglot import exp

from registry.models import Release
from semantic.answers import StoredAnswer
from semantic.compiler.manifest import Manifest
from semantic.compiler.principal import Principal
from semantic.manifests import manifest_for_release, release_key
from semantic.warehouse.execute import execute
from tally.metrics import RESULT_CACHE

log = logging.getLogger(__name__)

_versions: dict[tuple[Any, ...], tuple[float, DataVersion]] = {}
_versions_lock = threading.Lock()
_version_scan_lock = threading.Lock()
# The source of a write-counter row in the version scan (see write_marker_sql).
WRITES = "writes:"
# Engines whose catalog counts writes to a table (write_marker_sql); DuckDB's come from its
# files (_duckdb_files), its catalog says which sources are tables of that file.
MARKED_DIALECTS = ("postgres", "mysql", "duckdb")
# Where a source has no write mark, how long an answer (a key probe's, a query's) is kept.
UNVERSIONED_TTL_S = 60.0


@dataclass(frozen=True)
class DataVersion:
    """A digest of the sources' state, and whether it sees every write to them.

    ``writes_seen`` is False where the engine exposes no write counter (ClickHouse, Spark,
    Snowflake, BigQuery, Trino…) or a source has none (a view): there an UPDATE that keeps
    the row count and the newest time keeps the digest too.
    """

    digest: str
    writes_seen: bool


def data_version_sql(manifest: Manifest, dialect: str) -> str | None:
    """One row per (model, time dimension): its row count and newest time value, as text;
    then, on PostgreSQL, MariaDB and DuckDB, one row per source table whose writes are marked
    (see :func:`write_marker_sql`)."""
    scans: list[exp.Query] = []
    for model in sorted(manifest.semantic_models.values(), key=lambda m: m.name):
        database, schema, name = model.relation
        table = exp.table_(name, db=schema, catalog=database)
        times = sorted(
            {m.agg_time_dimension for m in model.measures.values()} & set(model.dimensions)
        )
        for dim in times or [""]:
            newest: exp.Expr = exp.Null()
            if dim:
                newest = exp.cast(
                    exp.Max(this=exp.maybe_parse(model.dimensions[dim].expr, dialect=dialect)),
                    exp.DataType.Type.TEXT,
                )
            scans.append(
                exp.select(
                    exp.Literal.string(f"{model.name}.{dim}").as_("src"),
                    exp.Count(this=exp.Star()).as_("n"),
                    exp.cast(newest, exp.DataType.Type.TEXT).as_("newest"),
                ).from_(table)
            )
    relations = _relations(manifest, dialect)
    if relations:
        scans.append(write_marker_sql(relations, dialect))
    if not scans:
        return None
    union: exp.Query = scans[0]
    for scan in scans[1:]:
        union = exp.union(union, scan, distinct=False)
    return union.sql(dialect=dialect)


def _relations(manifest: Manifest, dialect: str) -> list[tuple[str, str, str]]:
    """(database, schema, table) of each source whose writes the engine may mark, once each."""
    if dialect not in MARKED_DIALECTS:
        return []
    return sorted(
        {(m.relation[0] or "", m.relation[1] or "", m.relation[2])
         for m in manifest.semantic_models.values()}
    )  # fmt: skip


def write_marker_sql(relations: list[tuple[str, str, str]], dialect: str) -> exp.Query:
    """One row (``writes:<schema>.<table>``, n, text) per table whose data the engine's write
    mark follows, in one read of the catalog; on PostgreSQL and MariaDB it changes on every
    committed write to the table, whatever the write keeps (an UPDATE that repeats a key
    keeps row counts and times):

    * PostgreSQL: the table's cumulative inserted, updated and deleted row counts
      (``pg_stat_all_tables``). A backend reports them when it goes idle, at most once a
      second (within 60 s when the statistics are locked), so a write is seen that late.
    * MariaDB: ``information_schema.TABLES.UPDATE_TIME``, set at each commit, to the second:
      while it is within the last second the row holds the current time instead, so the
      version keeps changing until a write in the same second can no longer go unseen.
    * DuckDB: a constant row for each base table of the database file, whose stat is the
      mark (``_duckdb_files``).

    No row where the mark does not follow the data: a view (its data lives elsewhere: other
    tables, parquet files), a foreign table, a PostgreSQL partitioned table (writes are
    counted on its partitions), a MariaDB table of an engine keeping no local UPDATE_TIME
    (CONNECT, FEDERATED…) or with none yet (after a restart), a DuckDB table of an attached
    database or a temporary one, or PostgreSQL with ``track_counts`` off. The version then
    says ``writes_seen`` False.

    Example:
        >>> print(write_marker_sql([("", "public", "accounts")], "postgres").sql("postgres"))
        SELECT 'writes:' || schemaname || '.' || relname AS src, n_tup_ins + n_tup_upd + n_tup_del AS n, CAST(NULL AS TEXT) AS newest FROM pg_stat_all_tables WHERE (schemaname = 'public' AND relname = 'accounts') AND (CURRENT_SETTING('track_counts') = 'on' AND relid IN (SELECT oid FROM pg_class WHERE relkind IN ('r', 'm')))
    """
    catalog_col = ""
    if dialect == "postgres":
        schema_col, name_col, table = "schemaname", "relname", "pg_stat_all_tables"
        n = "n_tup_ins + n_tup_upd + n_tup_del"
        # With track_counts off the counters stand still: no mark rather than a blind one. A
        # partitioned table's own counters stand still too (its partitions count the
        # writes); a materialized view's count its refreshes, its only writes.
        newest = "CAST(NULL AS TEXT)"
        only = (
            "current_setting('track_counts') = 'on' "
            "AND relid IN (SELECT oid FROM pg_class WHERE relkind IN ('r', 'm'))"
        )
    elif dialect == "duckdb":
        schema_col, name_col, table = "table_schema", "table_name", "information_schema.tables"
        catalog_col, n, newest = "table_catalog", "0", "CAST(NULL AS TEXT)"
        # Only the database file's own tables: the file's stat says nothing of a view's
        # parquet or CSV files, an attached database or a temporary table.
        only = "table_type = 'BASE TABLE' AND table_catalog = current_database()"
    else:
        schema_col, name_col, table = "TABLE_SCHEMA", "TABLE_NAME", "information_schema.TABLES"
        # MariaDB reports UPDATE_TIME in the session's time zone, as NOW() (both in seconds).
        # Engines that store the rows here set it at commit; InnoDB forgets it on a restart
        # (NULL until the next write): no mark then, or two NULL spells would look alike.
        n = "0"
        only = (
            "TABLE_TYPE = 'BASE TABLE' AND ENGINE IN ('InnoDB', 'MyISAM', 'Aria') "
            "AND NOT UPDATE_TIME IS NULL"
        )
        newest = (
            "CASE WHEN UPDATE_TIME >= NOW() - INTERVAL 1 SECOND "
            "THEN CONCAT('unsettled ', CAST(NOW(6) AS CHAR)) ELSE CAST(UPDATE_TIME AS CHAR) END"
        )
    pairs = [
        exp.and_(
            exp.column(schema_col).eq(exp.Literal.string(schema)),
            exp.column(name_col).eq(exp.Literal.string(name)),
            *([exp.column(catalog_col).eq(exp.Literal.string(database))]
              if catalog_col and database else []),
        )
        for database, schema, name in relations
    ]  # fmt: skip
    src = exp.func(
        "CONCAT", exp.Literal.string(WRITES), exp.column(schema_col), exp.Literal.string("."),
        exp.column(name_col),
    )  # fmt: skip
    return (
        exp.select(
            src.as_("src"),
            sqlglot.parse_one(n, read=dialect).as_("n"),
            sqlglot.parse_one(newest, read=dialect).as_("newest"),
        )
        .from_(sqlglot.parse_one(table, read=dialect, into=exp.Table))
        .where(exp.and_(exp.or_(*pairs), sqlglot.parse_one(only, read=dialect)))
    )


def _duckdb_files(warehouse: Any) -> list[str] | None:
    """The DuckDB database file's and its write-ahead log's (size, modification time): a
    commit appends to the log and a checkpoint rewrites the file, so every write changes
    them (the times are of the kernel's clock tick, a few ms, and a log only grows between
    checkpoints). None for an in-memory database."""
    path = warehouse.path
    if warehouse.engine != "duckdb" or not path or path == ":memory:":
        return None
    marks = []
    for name in (path, path + ".wal"):
        try:
            stat = os.stat(name)
        except FileNotFoundError:
            marks.append(f"{name}: absent")
            continue
        marks.append(f"{name}: {stat.st_size} {stat.st_mtime_ns} {stat.st_ino}")
    return marks


def data_version(release: Release) -> str:
    """A digest of the release's sources' row counts, newest time values and, where the
    engine counts them, writes (see :func:`data_version_detail`)."""
    return data_version_detail(release).digest


def data_version_detail(release: Release) -> DataVersion:
    """The release's data version, looked up at most once per TALLY_RESULT_CACHE_VERSION_S."""
    warehouse = settings.WAREHOUSE
    key = (release_key(release), warehouse.display_url)
    with _versions_lock:
        known = _versions.get(key)
    if known is not None and known[0] > time.monotonic():
        return known[1]
    # One look at a time: when the window ends under load (the SQL API's threads, a burst of
    # refreshes) one thread scans and the others wait for its answer instead of scanning too.
    with _version_scan_lock:
        with _versions_lock:
            known = _versions.get(key)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        now = time.monotonic()
        manifest = manifest_for_release(release)
        sql = data_version_sql(manifest, warehouse.dialect)
        rows: list[Any] = list(map(list, execute(warehouse, sql, timeout_s=60).rows)) if sql else []
        marked = {str(row[0]) for row in rows if str(row[0]).startswith(WRITES)}
        # Every source must be marked: one view among tables leaves the version blind to
        # its data (a parquet file rewritten with the same counts and times).
        writes_seen = bool(marked) and len(marked) == len(_relations(manifest, warehouse.dialect))
        files = _duckdb_files(warehouse)
        if files is not None:
            rows += [[WRITES, 0, mark] for mark in files]
        elif warehouse.dialect == "duckdb":
            writes_seen = False  # in memory: DuckDB's rows above are constant, no file marks
        digest = hashlib.sha256(json.dumps(sorted(rows), default=str).encode()).hexdigest()
        version = DataVersion(digest, writes_seen)
        ttl = float(getattr(settings, "TALLY_RESULT_CACHE_VERSION_S", 5))
        with _versions_lock:
            _versions[key] = (now + ttl, version)
        return version


def result_key(
    *, release: Release, sql: str, row_cap: int, principal: Principal | None,
    variables: dict[str, str],
) -> str | None:  # fmt: skip
    """The cache key of one answer now: :func:`result_cache_key` at the current data
    version (looked up at most once per TALLY_RESULT_CACHE_VERSION_S); None when the answer
    must not be kept (a version blind to writes, with TALLY_KEY_PROBE_UNVERSIONED_S 0)."""
    detail = data_version_detail(release)
    version = detail.digest
    if not detail.writes_seen:
        # The digest misses an UPDATE (or a rewritten parquet file behind a view) that keeps
        # counts and times: an answer is shared only within one window of the unversioned
        # lifetime, the same bound as the fan-out guard's (wall clock: every process agrees).
        window = unversioned_ttl()
        if window <= 0:
            return None
        version += f" window {int(time.time() // window)}"
    return result_cache_key(
        release=release, sql=sql, row_cap=row_cap, principal=principal, variables=variables,
        version=version,
    )  # fmt: skip


def result_cache_key(
    *, release: Release, sql: str, row_cap: int, principal: Principal | None,
    variables: dict[str, str], version: str,
) -> str:  # fmt: skip
    """The cache key of one answer (see the module docstring for what it binds)."""
    parts = (
        release_key(release),
        hashlib.sha256(sql.encode()).hexdigest(),
        row_cap,
        None if principal is None else principal.cache_key(),
        # The salt never enters the key itself, only a digest of it.
        hashlib.sha256(json.dumps(sorted(variables.items())).encode()).hexdigest(),
        settings.WAREHOUSE.display_url,
        version,
    )
    return "tally:result:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def result_get(key: str) -> StoredAnswer | None:
    """The cached answer, or None (also when the cache cannot be reached)."""
    try:
        found = cache.get(key)
    except (RedisError, OSError) as exc:
        log.warning("result cache unreachable, scanning instead: %s", exc)
        found = None
    # An entry of an older layout (a cache shared across an upgrade) is a miss.
    if not isinstance(found, StoredAnswer):
        found = None
    RESULT_CACHE.labels("miss" if found is None else "hit").inc()
    return found


def result_put(key: str, answer: StoredAnswer) -> None:
    """Keeps an answer small enough to be worth it (a cache that cannot be reached keeps
    nothing, and the caller still gets its answer)."""
    if answer.row_count > result_cache_max_rows():
        return
    try:
        cache.set(key, answer, timeout=result_cache_ttl())
    except (RedisError, OSError) as exc:
        log.warning("result cache unreachable, answer not kept: %s", exc)


def result_cache_max_rows() -> int:
    return int(getattr(settings, "TALLY_RESULT_CACHE_MAX_ROWS", 10_000))


def result_cache_ttl() -> float:
    return float(getattr(settings, "TALLY_RESULT_CACHE_TTL_S", 300))


def unversioned_ttl() -> float:
    """How long an answer is kept at a data version blind to some writes (no write mark)."""
    return float(getattr(settings, "TALLY_KEY_PROBE_UNVERSIONED_S", UNVERSIONED_TTL_S))


def result_versions_forget() -> None:
    with _versions_lock:
        _versions.clear()
