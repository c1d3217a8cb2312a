"""Result cache of metric queries: a dashboard refresh that repeats a query does not scan
the warehouse again unless the data changed.

Key: the release, the normalized query (``MetricQuery.cache_key``), the principal's policy
binding (``Principal.cache_key``: row policies, masks, tenant) plus a digest of the session
values its SQL reads (the PII salt), the warehouse, and the warehouse's DATA VERSION: the row
count and newest time value of every source of the release (one cheap aggregate per model,
itself remembered for TALLY_RESULT_CACHE_VERSION_S so a burst of refreshes costs one look).
Two principals whose policies differ never share an entry: their keys differ.

Entries live in Django's default cache: Redis when TALLY_CACHE_URL is set (shared by every
web process), else this process's memory. Only answers of up to TALLY_RESULT_CACHE_MAX_ROWS
rows are kept, for TALLY_RESULT_CACHE_TTL_S (0 turns the cache off).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from sqlglot import exp

from registry.models import Release
from semantic.compiler.manifest import Manifest
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.manifests import manifest_for_release, release_key
from semantic.warehouse.execute import execute
from tally.metrics import RESULT_CACHE

_versions: dict[tuple[Any, ...], tuple[float, str]] = {}
_versions_lock = threading.Lock()


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
    now = time.monotonic()
    with _versions_lock:
        known = _versions.get(key)
    if known is not None and known[0] > now:
        return known[1]
    sql = data_version_sql(manifest_for_release(release), warehouse.dialect)
    rows = execute(warehouse, sql, timeout_s=60).rows if sql else []
    version = hashlib.sha256(json.dumps(sorted(map(list, rows)), default=str).encode()).hexdigest()
    ttl = float(getattr(settings, "TALLY_RESULT_CACHE_VERSION_S", 5))
    with _versions_lock:
        _versions[key] = (now + ttl, version)
    return version


def result_cache_key(
    *, release: Release, query: MetricQuery, principal: Principal | None,
    variables: dict[str, str], version: str,
) -> str:  # fmt: skip
    """The cache key of one answer (see the module docstring for what it binds)."""
    parts = (
        release_key(release),
        query.cache_key(),
        None if principal is None else principal.cache_key(),
        # The salt never enters the key itself, only a digest of it.
        hashlib.sha256(json.dumps(sorted(variables.items())).encode()).hexdigest(),
        settings.WAREHOUSE.display_url,
        version,
    )
    return "tally:result:" + hashlib.sha256(repr(parts).encode()).hexdigest()


def result_get(key: str) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...], bool] | None:
    """A cached (columns, rows, truncated), or None."""
    found = cache.get(key)
    RESULT_CACHE.labels("miss" if found is None else "hit").inc()
    return found


def result_put(
    key: str, columns: tuple[str, ...], rows: tuple[tuple[Any, ...], ...], truncated: bool
) -> None:
    """Keeps an answer small enough to be worth it."""
    if len(rows) <= int(getattr(settings, "TALLY_RESULT_CACHE_MAX_ROWS", 10_000)):
        cache.set(key, (columns, rows, truncated), timeout=result_cache_ttl())


def result_cache_ttl() -> float:
    return float(getattr(settings, "TALLY_RESULT_CACHE_TTL_S", 300))


def result_versions_forget() -> None:
    with _versions_lock:
        _versions.clear()
