"""What every proposal check reads: the base release and the proposal's revision, once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registry.definitions.changes import MAJOR, classify_change
from registry.definitions.project import METRIC, SEMANTIC_MODEL
from registry.definitions.rules import metric_inputs
from registry.models import Proposal, ProposalChange, ProposalCheck
from registry.selectors import PinnedSpec, proposal_changes, release_specs
from semantic.compiler.manifest import Manifest, build_manifest

Status = ProposalCheck.CheckStatus
Result = tuple[str, str, dict[str, Any]]  # (status, summary, details)


class CheckInputs:
    """The base release and the proposal's current revision, read once per check."""

    def __init__(self, proposal: Proposal, revision: int) -> None:
        self.proposal = proposal
        self.changes: list[ProposalChange] = proposal_changes(proposal=proposal, revision=revision)
        self.base: dict[tuple[str, str], PinnedSpec] = release_specs(release=proposal.base_release)
        self.merged: dict[tuple[str, str], dict[str, Any]] = {
            k: p.spec for k, p in self.base.items()
        }
        for change in self.changes:
            key = (change.kind, change.name)
            if change.spec is None:
                self.merged.pop(key, None)
            else:
                self.merged[key] = change.spec

    def manifest(self, *, new: bool) -> Manifest:
        specs = self.merged if new else {k: p.spec for k, p in self.base.items()}
        versions = {k: p.semver for k, p in self.base.items()}
        rows = (
            (k, n, spec, "proposed" if new and self.changed((k, n)) else versions.get((k, n), ""))
            for (k, n), spec in specs.items()
        )
        label = f"proposal #{self.proposal.pk}" if new else self.base_name
        return build_manifest(rows, release=label)

    @property
    def base_name(self) -> str:
        return self.proposal.base_release.name if self.proposal.base_release else "empty"

    def changed(self, key: tuple[str, str]) -> bool:
        return any((c.kind, c.name) == key for c in self.changes)


def downstream_metrics(
    specs: dict[tuple[str, str], dict[str, Any]], keys: Iterable[tuple[str, str]]
) -> list[str]:
    """Metrics that read the given definitions, directly or through other metrics."""
    measures: set[str] = set()
    metrics: set[str] = set()
    for kind, name in keys:
        spec = specs.get((kind, name))
        if kind == SEMANTIC_MODEL and spec:
            measures.update(m["name"] for m in spec.get("measures") or [])
        elif kind == METRIC:
            metrics.add(name)
    all_metrics = {n: s for (k, n), s in specs.items() if k == METRIC}
    found = {
        n
        for n, s in all_metrics.items()
        if any(k == "measure" and m in measures for k, m, _ in metric_inputs(s))
    } | metrics
    # Ratio, derived, cumulative and conversion metrics built on affected metrics.
    grew = True
    while grew:
        more = {
            n
            for n, s in all_metrics.items()
            if n not in found and any(k == "metric" and m in found for k, m, _ in metric_inputs(s))
        }
        found |= more
        grew = bool(more)
    return sorted(found)


def metrics_to_check(inputs: CheckInputs, *, meaning_only: bool = False) -> list[str]:
    """Changed metrics first, then the metrics downstream of any change; with
    ``meaning_only``, only changes that can alter numbers (new, or a major bump) count."""
    keys = []
    for change in inputs.changes:
        if change.spec is None:
            continue
        old = inputs.base.get((change.kind, change.name))
        minor = old is not None and (
            classify_change(change.kind, old.spec, change.spec).level != MAJOR
        )
        if meaning_only and minor:
            continue
        keys.append((change.kind, change.name))
    direct = [n for k, n in keys if k == METRIC]
    found = downstream_metrics(inputs.merged, keys)
    ordered = direct + [m for m in found if m not in direct]
    return [m for m in ordered if (METRIC, m) in inputs.merged]
