"""Releases and their compiler manifests, cached per process.

Releases are immutable, so a pinned release and its manifest are cached for good; "latest"
is re-read at most every LATEST_TTL_S seconds. The compile cache (semantic.services) and the
time spine services both read releases through here, so neither imports the other.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from registry.models import Release, ReleaseItem
from registry.selectors import release_get
from semantic.compiler.manifest import Manifest, build_manifest
from tally.lru import LRU

MANIFEST_CACHE_SIZE = 8
LATEST_TTL_S = 1.0


_manifests = LRU(MANIFEST_CACHE_SIZE)
_releases = LRU(256)
_latest: list[tuple[float, Release]] = []


def release_key(release: Release) -> tuple[int, str]:
    """The key per-release caches use: number plus creation time. Numbers are unique in one
    registry, and the timestamp keeps a rebuilt registry (tests, a restored backup) from
    hitting another registry's entry."""
    return (release.number, release.created_at.isoformat())


def manifest_for_release(release: Release) -> Manifest:
    """The compiler's snapshot of a release (built once per process and release); for a
    release older than the current one, with the current release's manifest attached as
    ``security``, so its row policies and PII masks apply too (security always comes from the
    latest release; see semantic.compiler.policies.Access)."""
    current = release_resolve(None)
    if release_key(current) == release_key(release):
        return _manifest_of(release)
    key = ("secured", release_key(release), release_key(current))
    cached = _manifests.get(key)
    if cached is None:
        cached = replace(_manifest_of(release), security=_manifest_of(current))
        _manifests.put(key, cached)
    return cached


def _manifest_of(release: Release) -> Manifest:
    key = release_key(release)
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


def manifests_forget() -> None:
    """Empties the release and manifest caches (tests rebuild registries between cases)."""
    _manifests.clear()
    _releases.clear()
    _latest.clear()
