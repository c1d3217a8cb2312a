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
import threading
import time
from typing import Any

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

_versions: dict[tuple[Any, ...], tuple[float, str]] = {}
_versions_lock = threading.Lock()
_version_scan_lock = threading.Lock()


def data_version_sql(manifest: Manifest, dialect: str) -> str | None:
    """One row per (model, time dimension): its row count and newest time value, as text."""
    scans: list[exp.Select] = []
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
    if not scans:
        return None
    union: exp.Query = scans[0]
    for scan in scans[1:]:
        union = exp.union(union, scan, distinct=False)
    return union.sql(dialect=dialect)


def data_version(release: Release) -> str:
    """A digest of the release's sources' row counts and newest time values."""
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
        sql = data_version_sql(manifest_for_release(release), warehouse.dialect)
        rows = execute(warehouse, sql, timeout_s=60).rows if sql else []
        digest = hashlib.sha256(json.dumps(sorted(map(list, rows)), default=str).encode())
        ttl = float(getattr(settings, "TALLY_RESULT_CACHE_VERSION_S", 5))
        with _versions_lock:
            _versions[key] = (now + ttl, digest.hexdigest())
        return digest.hexdigest()


def result_key(
    *, release: Release, sql: str, row_cap: int, principal: Principal | None,
    variables: dict[str, str],
) -> str:  # fmt: skip
    """The cache key of one answer now: :func:`result_cache_key` at the current data
    version (looked up at most once per TALLY_RESULT_CACHE_VERSION_S)."""
    return result_cache_key(
        release=release, sql=sql, row_cap=row_cap, principal=principal, variables=variables,
        version=data_version(release),
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


def result_versions_forget() -> None:
    with _versions_lock:
        _versions.clear()
