"""Stored values of a superseded definition: find them, and recompute them under the new one.

A value row names the metric version and release that produced it. When a release pins a
metric version whose *major* differs from the one its stored values came from (the numbers
change, as the proposal's numbers check said), those values are stale: the release queues a
backfill run per stored grain over the stored range (or the compute lookback, whichever is
larger), as Minerva does. Until it has run, the pages say which version the numbers shown
come from; the old numbers stay readable as the revisions of each value (``old_run``).
A minor change (description, owner) keeps the numbers: nothing is recomputed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max, Min

from registry.models import DefinitionVersion, Release
from registry.selectors import metric_versions_in_release
from semantic.jobs.compute import compute_run_create, lookback_days_for
from semantic.models import ComputeRun, MetricValue

BACKFILL_TRIGGER = "backfill"


@dataclass(frozen=True)
class StoredVersions:
    """What a metric's stored values at one grain were computed with, against the current
    version: ``stale`` when any of them is of another major version."""

    metric: str
    grain: str
    current: str  # semver of the metric in the release asked about
    stored: dict[str, int]  # semver -> values
    start: dt.date
    end: dt.date
    stale: bool
    backfill: ComputeRun | None  # the newest backfill run of this release for it, if any

    @property
    def shown_versions(self) -> list[str]:
        return sorted(self.stored, key=_semver_key)


def _semver_key(semver: str) -> tuple[int, ...]:
    return tuple(int(p) for p in semver.split(".") if p.isdigit())


def stored_versions(
    *, release: Release, metrics: Sequence[str] | None = None
) -> list[StoredVersions]:
    """Per (metric, grain) with stored values: the versions they came from, and whether they
    are stale in ``release``. One grouped query over the values."""
    current = metric_versions_in_release(release=release, metrics=metrics)
    if not current:
        return []
    rows = (
        MetricValue.objects.filter(metric_name__in=list(current))
        .values("metric_name", "grain", "metric_version")
        .annotate(n=Count("id"), first=Min("period_start"), last=Max("period_start"))
    )
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["metric_name"], row["grain"]), []).append(row)
    versions = DefinitionVersion.objects.in_bulk(
        {r["metric_version"] for rs in grouped.values() for r in rs}
    )
    runs = _open_or_latest_backfills(release, {m for m, _ in grouped})
    out = []
    for (metric, grain), parts in sorted(grouped.items()):
        now = current[metric]
        stored: dict[str, int] = {}
        stale = False
        for r in parts:
            v = versions[r["metric_version"]]
            stored[v.semver] = stored.get(v.semver, 0) + r["n"]
            stale = stale or v.major != now.major
        out.append(
            StoredVersions(
                metric=metric,
                grain=grain,
                current=now.semver,
                stored=stored,
                start=min(r["first"] for r in parts),
                end=max(r["last"] for r in parts),
                stale=stale,
                backfill=runs.get((metric, grain)),
            )
        )
    return out


def _open_or_latest_backfills(
    release: Release, metrics: set[str]
) -> dict[tuple[str, str], ComputeRun]:
    found: dict[tuple[str, str], ComputeRun] = {}
    for run in ComputeRun.objects.filter(release=release, trigger=BACKFILL_TRIGGER).order_by("-id"):
        for metric in run.metrics:
            if metric in metrics:
                found.setdefault((metric, run.grain), run)
    return found


def backfill_stale(
    *, release: Release, metrics: Sequence[str] | None = None, acting_user: Any = None
) -> list[ComputeRun]:
    """Queues one run per stale (metric, grain) of ``release`` that has no open or finished
    backfill in it yet (idempotent: a second call adds nothing). The range is the stored one,
    widened to the compute lookback."""
    runs = []
    for s in stored_versions(release=release, metrics=metrics):
        if not s.stale or s.backfill is not None:
            continue
        runs.append(
            _recompute(s, release=release, trigger=BACKFILL_TRIGGER, acting_user=acting_user)
        )
    return runs


def metric_recompute(*, metric: str, release: Release, acting_user: Any) -> list[ComputeRun]:
    """The UI's and API's recompute action: one run per stored grain of ``metric``, over its
    stored range, under ``release`` (the caller checked the ``compute`` permission)."""
    return [
        _recompute(s, release=release, trigger="manual", acting_user=acting_user)
        for s in stored_versions(release=release, metrics=[metric])
    ]


def _recompute(
    s: StoredVersions, *, release: Release, trigger: str, acting_user: Any
) -> ComputeRun:
    lookback = lookback_days_for(release=release, metrics=[s.metric])
    end = s.end
    start = min(s.start, end - dt.timedelta(days=lookback))
    # compute_run_create is one durable transaction (the run row and its audit event).
    return compute_run_create(
        metrics=[s.metric],
        grain=s.grain,
        start=start,
        end=end,
        release_ref=release.name,
        trigger=trigger,
        acting_user=acting_user,
    )
