"""Compile and run metric queries against a pinned release, with manifest and compile caches."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from registry.models import Release, ReleaseItem
from registry.selectors import release_get
from semantic.compiler.api import CompiledQuery, compile_query
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.policies import SALT_NAME, SecuredSelect
from semantic.compiler.principal import Principal
from semantic.compiler.saved import saved_query_to_query
from semantic.compiler.spec import MetricQuery

MANIFEST_CACHE_SIZE = 8
COMPILE_CACHE_SIZE = 2048


class _LRU:
    """A small thread-safe LRU; releases are immutable, so entries never go stale."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_manifests = _LRU(MANIFEST_CACHE_SIZE)
_compiled = _LRU(COMPILE_CACHE_SIZE)


def _release_key(release: Release) -> tuple[int, str]:
    # Number plus creation time: numbers are unique in one registry, and the timestamp keeps
    # a rebuilt registry (tests, a restored backup) from hitting another registry's entry.
    return (release.number, release.created_at.isoformat())


def manifest_for_release(release: Release) -> Manifest:
    """The compiler's snapshot of a release (built once per process and release); for a
    release older than the current one, with the current release's manifest attached as
    ``security``, so its row policies and PII masks apply too (security always comes from the
    latest release; see semantic.compiler.policies.Access)."""
    current = release_resolve(None)
    if _release_key(current) == _release_key(release):
        return _manifest_of(release)
    key = ("secured", _release_key(release), _release_key(current))
    cached = _manifests.get(key)
    if cached is None:
        cached = replace(_manifest_of(release), security=_manifest_of(current))
        _manifests.put(key, cached)
    return cached


def _manifest_of(release: Release) -> Manifest:
    key = _release_key(release)
    cached = _manifests.get(key)
    if cached is not None:
        return cached
    rows = ReleaseItem.objects.filter(release=release).values_list(
        "definition__kind", "definition__name", "version__spec", "version__major", "version__minor"
    )
    manifest = build_manifest(
        ((kind, name, spec, f"{major}.{minor}") for kind, name, spec, major, minor in rows),
        release=release.name,
    )
    _manifests.put(key, manifest)
    return manifest


LATEST_TTL_S = 1.0
_releases = _LRU(256)
_latest: list[tuple[float, Release]] = []


def release_resolve(ref: str | None) -> Release:
    """release_get with an in-process cache: pinned releases are immutable (cached for good);
    "latest" is re-read at most every LATEST_TTL_S seconds, and at once after a publish in this
    process (post_save signal), so a cache hit costs no database round trip."""
    if ref in (None, "", "latest"):
        now = time.monotonic()
        if _latest and now - _latest[0][0] < LATEST_TTL_S:
            return _latest[0][1]
        release = release_get(None)
        _latest[:] = [(now, release)]
        return release
    cached = _releases.get(ref)
    if cached is None:
        cached = release_get(ref)
        _releases.put(ref, cached)
    return cached


@receiver(post_save, sender=Release)
def _forget_latest(**kwargs: Any) -> None:
    _latest.clear()


def compile_metric_query(
    *, query: MetricQuery, release_ref: str | None = None, principal: Principal | None = None
) -> CompiledQuery:
    """Compiles a query against a release (default latest) for a principal (None: trusted,
    no row policy or masking) with the row policies and masks of that release and of the
    current one; cached by (release, current release, query, principal's policy key)."""
    release = release_resolve(release_ref)
    key = (
        _release_key(release),
        _release_key(release_resolve(None)),
        query.cache_key(),
        None if principal is None else principal.cache_key(),
    )
    cached = _compiled.get(key)
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


def pii_salt_for(principal: Principal | None) -> str:
    """The pseudonym salt a principal's query binds: TALLY_PII_SALT, or with
    TALLY_PII_SALT_PER_TENANT an HMAC of it and the principal's tenant binding, so the same
    person's pseudonym differs between tenants (a principal bound to no tenant: the salt)."""
    salt: str = settings.TALLY_PII_SALT
    tenant = principal.attributes.get("tenant_id") if principal is not None else None
    if not settings.TALLY_PII_SALT_PER_TENANT or tenant is None or tenant == "":
        return salt
    return hmac.new(salt.encode(), f"tenant:{tenant}".encode(), hashlib.sha256).hexdigest()


def session_variables(
    compiled: CompiledQuery | SecuredSelect, *, principal: Principal | None
) -> dict[str, str]:
    """The values of the session variables a compiled (or secured) query reads (the PII
    salt of the principal it was compiled for), for the executor to bind; never shown or
    logged. ``principal`` is required so that no caller binds the shared salt by mistake."""
    return {SALT_NAME: pii_salt_for(principal)} if compiled.parameters else {}


@dataclass(frozen=True)
class QueryAnswer:
    compiled: CompiledQuery
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool


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
    from semantic.time_spine import time_spine_ensure
    from semantic.warehouse.execute import execute

    warehouse = settings.WAREHOUSE
    if query.dialect != warehouse.dialect:
        query = MetricQuery(**{**query.__dict__, "dialect": warehouse.dialect})
    compiled = compile_metric_query(query=query, release_ref=release_ref, principal=principal)
    time_spine_ensure(sql=compiled.sql, release_ref=release_ref)
    result = execute(
        warehouse,
        compiled.sql,
        timeout_s=timeout_s,
        row_cap=row_cap,
        variables=session_variables(compiled, principal=principal),
    )
    return QueryAnswer(compiled, compiled.columns, tuple(result.rows), result.truncated)


def saved_query_apply(*, name: str, query: MetricQuery, release_ref: str | None) -> MetricQuery:
    """The saved query of the pinned release, merged with the caller's extras."""
    return saved_query_to_query(manifest_for_release(release_resolve(release_ref)), name, query)


def caches_clear() -> None:
    """Empties every in-process cache (tests rebuild registries between cases)."""
    from semantic.time_spine import time_spine_forget

    time_spine_forget()
    _manifests.clear()
    _compiled.clear()
    _releases.clear()
    _latest.clear()
