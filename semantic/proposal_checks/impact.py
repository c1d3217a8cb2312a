"""The impact check: what a change reaches downstream — metrics, saved queries, owners, the
releases that pin today's versions and the stored values the next compute would restate."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Max, Min

from registry.definitions.project import METRIC, SAVED_QUERY
from registry.models import ReleaseItem
from registry.services.proposal_checks.inputs import CheckInputs, Result, Status, downstream_metrics
from semantic.models import MetricValue


def _owner(spec: dict[str, Any] | None) -> str | None:
    meta = ((spec or {}).get("config") or {}).get("meta") or {}
    return str(meta["owner"]) if meta.get("owner") else None


def _stored_values(metrics: list[str]) -> list[dict[str, Any]]:
    """Current computed values of the affected metrics, per metric and grain: the numbers
    dashboards show today that the change would restate on the next compute."""
    rows = (
        MetricValue.objects.filter(metric_name__in=metrics)
        .values("metric_name", "grain")
        .annotate(values=Count("id"), first=Min("period_start"), last=Max("period_start"))
        .order_by("metric_name", "grain")
    )
    return [
        {
            "metric": row["metric_name"],
            "grain": row["grain"],
            "values": row["values"],
            "periods": f"{row['first']}..{row['last']}",
        }
        for row in rows
    ]


def check_impact(inputs: CheckInputs) -> Result:
    keys = [(c.kind, c.name) for c in inputs.changes]
    # Downstream of what changes, in the release as it would be (and of what is retired).
    union = {**{k: p.spec for k, p in inputs.base.items()}, **inputs.merged}
    metrics = downstream_metrics(union, keys)
    direct = {n for k, n in keys if k == METRIC}
    saved = sorted(
        n
        for (k, n), s in inputs.merged.items()
        if k == SAVED_QUERY
        and set((s.get("query_params") or {}).get("metrics") or []) & set(metrics)
    )
    owners = sorted(
        {o for m in metrics if (o := _owner(union.get((METRIC, m))))}
        | {o for k in keys if (o := _owner(union.get(k)))}
    )
    version_ids = [p.version_id for k, p in inputs.base.items() if k in set(keys)]
    releases = sorted(
        set(
            ReleaseItem.objects.filter(version_id__in=version_ids).values_list(
                "release__number", flat=True
            )
        )
    )
    details = {
        "changed": [f"{k}:{n}" for k, n in keys],
        "downstream_metrics": [m for m in metrics if m not in direct],
        "saved_queries": saved,
        "owners": owners,
        "releases_pinning_current_versions": [f"r{n}" for n in releases],
        "stored_values": _stored_values(metrics),
    }
    stored = sum(row["values"] for row in details["stored_values"])
    summary = (
        f"{len(keys)} changed, {len(details['downstream_metrics'])} downstream metric(s), "
        f"{stored} stored value(s), "
        f"{len(saved)} saved quer{'y' if len(saved) == 1 else 'ies'}, owners: "
        + (", ".join(owners) or "none")
    )
    return Status.PASSED, summary, details
