"""Lineage reads: the graph of a release (cached) and the upstream / impact / path / node queries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

from lineage.graph import (
    Hop,
    Impact,
    PathHop,
    impact,
    influences,
    path,
    resolve_node,
    upstream_tree,
)
from lineage.models import LineageNode, Origin
from lineage.services import graphs, load_graph
from registry.models import Release
from registry.selectors import release_get
from semantic.manifests import release_key


def lineage_graph_get(*, release_ref: str | None = None) -> tuple[Release, nx.MultiDiGraph]:
    """A release's lineage graph (latest by default), from the per-process cache when warm."""
    release = release_get(release_ref)
    key = release_key(release)
    graph = graphs.get(key)
    if graph is None:
        graph = load_graph(release)
        graphs.put(key, graph)
    return release, graph


def lineage_upstream(*, node: str, release_ref: str | None = None, depth: int = 12) -> Hop:
    """The upstream tree of a node with the expression at each hop."""
    _, graph = lineage_graph_get(release_ref=release_ref)
    return upstream_tree(graph, resolve_node(graph, node), max_depth=depth)


@dataclass(frozen=True)
class ImpactReport:
    impact: Impact
    release: str
    metric_releases: dict[str, list[str]]

    def as_dict(self) -> dict[str, Any]:
        return {**self.impact.as_dict(), "release": self.release, "pinned_in": self.metric_releases}


def lineage_impact(*, node: str, release_ref: str | None = None) -> ImpactReport:
    """Everything downstream of a node: metric versions, owners, and every stored release that
    pins each affected metric version (from the rows' release ranges)."""
    release, graph = lineage_graph_get(release_ref=release_ref)
    result = impact(graph, resolve_node(graph, node))
    ranges = LineageNode.objects.filter(
        origin=Origin.REGISTRY, kind="metric", node_id__in=list(result.metrics)
    ).values_list("node_id", "valid_from", "valid_to")
    latest = Release.objects.order_by("-number").values_list("number", flat=True).first() or 0
    pinned: dict[str, list[str]] = {}
    for node_id, start, end in ranges:
        pinned.setdefault(node_id, []).extend(
            f"r{n}" for n in range(start, (end if end is not None else latest) + 1)
        )
    return ImpactReport(
        result,
        release.name,
        {k: sorted(set(v), key=lambda r: int(r[1:])) for k, v in pinned.items()},
    )


def lineage_influences(
    *, node: str, release_ref: str | None = None, direct_only: bool = False
) -> list[str]:
    """Every column that influenced a node (direct and indirect, or direct only), sorted."""
    _, graph = lineage_graph_get(release_ref=release_ref)
    return sorted(influences(graph, resolve_node(graph, node), direct_only=direct_only))


def lineage_path(*, a: str, b: str, release_ref: str | None = None) -> list[PathHop]:
    """The shortest lineage path between two nodes (either direction)."""
    _, graph = lineage_graph_get(release_ref=release_ref)
    return path(graph, resolve_node(graph, a), resolve_node(graph, b))


def lineage_node_list(
    *, q: str = "", kind: str = "", release_ref: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Nodes of a release's graph whose id contains ``q``, optionally of one kind, sorted."""
    _, graph = lineage_graph_get(release_ref=release_ref)
    text = q.lower()
    found = sorted(
        n
        for n, d in graph.nodes(data=True)
        if (not kind or d.get("kind") == kind) and (not text or text in n.lower())
    )
    return [
        {
            "id": n,
            "kind": graph.nodes[n].get("kind"),
            "label": graph.nodes[n].get("label"),
            "upstream": graph.in_degree(n),
            "downstream": graph.out_degree(n),
        }
        for n in found[:limit]
    ]
