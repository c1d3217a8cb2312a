"""Compile and run metric queries against a pinned release, with manifest and compile caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings

from semantic.answers import StoredAnswer, rows_json
from semantic.compiler.api import CompiledQuery, compile_query
from semantic.compiler.principal import Principal
from semantic.compiler.saved import saved_query_to_query
from semantic.compiler.spec import MetricQuery
from semantic.manifests import (
    manifest_for_release,
    manifests_forget,
    release_key,
    release_resolve,
)
from tally.lru import LRU
from tally.metrics import COMPILE_CACHE

# Re-exported: most callers read releases and manifests through this module.
__all__ = [
    "QueryAnswer",
    "caches_clear",
    "compile_metric_query",
    "manifest_for_release",
    "query_execute",
    "release_resolve",
    "saved_query_apply",
]

COMPILE_CACHE_SIZE = 2048

_compiled = LRU(COMPILE_CACHE_SIZE)


def compile_metric_query(
    *, query: MetricQuery, release_ref: str | None = None, principal: Principal | None = None
) -> CompiledQuery:
    """Compiles a query against a release (default latest) for a principal (None: trusted,
    no row policy or masking) with the row policies and masks of that release and of the
    current one; cached by (release, current release, query, principal's policy key)."""
    release = release_resolve(release_ref)
    key = (
        release_key(release),
        release_key(release_resolve(None)),
        query.cache_key(),
        None if principal is None else principal.cache_key(),
    )
    cached = _compiled.get(key)
    COMPILE_CACHE.labels("miss" if cached is None else "hit").inc()
    if cached is not None:
        return cached
    compiled = compile_query(
        query,
        manifest_for_release(release),
        principal=principal,
        mask_default=settings.TALLY_PII_MASK,
    )
    _compiled.put(key, compiled)
    return compiled


@dataclass(frozen=True)
class QueryAnswer:
    """An answer, fresh from the warehouse (``fresh`` rows) or from the result cache
    (``stored``, whose rows are decoded only when read: the JSON API sends ``rows_json()``)."""

    compiled: CompiledQuery
    columns: tuple[str, ...]
    truncated: bool
    row_count: int
    fresh: tuple[tuple[Any, ...], ...] | None = field(default=None, repr=False)
    stored: StoredAnswer | None = field(default=None, repr=False)

    @cached_property
    def rows(self) -> tuple[tuple[Any, ...], ...]:
        if self.fresh is not None:
            return self.fresh
        assert self.stored is not None
        return self.stored.rows()

    def rows_json(self) -> bytes:
        """The rows as the JSON API's ``rows`` array (from the cache: as stored)."""
        if self.stored is not None and self.stored.rows_json is not None:
            return self.stored.rows_json
        return rows_json(self.rows)


def query_execute(
    *,
    query: MetricQuery,
    release_ref: str | None = None,
    timeout_s: float = 60,
    row_cap: int = 100_000,
    principal: Principal | None = None,
) -> QueryAnswer:
    """Compiles for the configured warehouse's dialect and runs the SQL there (building
    Tally's time spine first when the SQL reads it and the warehouse lacks it); a principal's
    row policies and masks are in the SQL, the PII salt is bound on the session."""
    # Imported here, not at the top: compiling (`tally compile`, `query --explain`, the
    # compile API) never runs SQL, and the warehouse drivers, the result cache (redis) and
    # the time spine builder would cost every short process a tenth of a second.
    from semantic.result_cache import (
        result_cache_max_rows,
        result_cache_ttl,
        result_get,
        result_key,
        result_put,
    )
    from semantic.warehouse.run import run_compiled, session_variables

    warehouse = settings.WAREHOUSE
    if query.dialect != warehouse.dialect:
        query = MetricQuery(**{**query.__dict__, "dialect": warehouse.dialect})
    compiled = compile_metric_query(query=query, release_ref=release_ref, principal=principal)
    key = None
    if result_cache_ttl() > 0:
        # Repeats (dashboard refreshes) are answered from the result cache until the data
        # changes; the key binds the principal's policies, so it never crosses them.
        key = result_key(
            release=release_resolve(release_ref), sql=compiled.sql, row_cap=row_cap,
            principal=principal, variables=session_variables(compiled, principal=principal),
        )  # fmt: skip
        hit = result_get(key) if key is not None else None
        if hit is not None:
            return QueryAnswer(compiled, hit.columns, hit.truncated, hit.row_count, stored=hit)
    # A refused DATE_TRUNC on a text column is named there (warehouse_type), as on every path.
    result = run_compiled(
        compiled,
        principal=principal,
        release_ref=release_ref,
        timeout_s=timeout_s,
        row_cap=row_cap,
    )
    rows = tuple(result.rows)
    if key is None or len(rows) > result_cache_max_rows():
        return QueryAnswer(compiled, compiled.columns, result.truncated, len(rows), fresh=rows)
    stored = StoredAnswer.of(compiled.columns, rows, result.truncated)
    result_put(key, stored)
    return QueryAnswer(
        compiled, compiled.columns, result.truncated, len(rows), fresh=rows, stored=stored
    )


def saved_query_apply(*, name: str, query: MetricQuery, release_ref: str | None) -> MetricQuery:
    """The saved query of the pinned release, merged with the caller's extras."""
    return saved_query_to_query(manifest_for_release(release_resolve(release_ref)), name, query)


def caches_clear() -> None:
    """Empties every in-process cache (tests rebuild registries between cases)."""
    from semantic.key_guard import key_probes_forget
    from semantic.result_cache import result_versions_forget
    from semantic.time_spine import time_spine_forget

    time_spine_forget()
    manifests_forget()
    key_probes_forget()
    _compiled.clear()
    result_versions_forget()
