"""Incremental updates: the delta from a parent release's graph to a child's, and applying it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from lineage.graph.build import (
    elements_apply,
    elements_for,
    elements_merge,
    graph_internals,
    src_index,
)
from lineage.graph.elements import Elements, Inputs, inputs_read
from lineage.graph.ids import PINNED_IN, SHARED, DefinitionRow
from lineage.graph.metrics import metric_node
from registry.definitions.contracts import contract_tables
from registry.definitions.project import CONTRACT, METRIC, SEMANTIC_MODEL
from registry.definitions.rules import metric_inputs


@dataclass(frozen=True)
class GraphDelta:
    """What turns one release's graph into the next one's."""

    removed_nodes: frozenset[str]
    added_nodes: Mapping[str, dict[str, Any]]
    removed_edges: frozenset[tuple[str, str, str]]
    added_edges: Mapping[tuple[str, str, str], dict[str, Any]]
    # What the new graph was built from, kept for the next update (not part of the delta).
    inputs: Any = field(default=None, compare=False, repr=False)
    rename: tuple[str, str] | None = None  # the release node: parent's id → child's

    @property
    def size(self) -> int:
        return (
            len(self.removed_nodes)
            + len(self.added_nodes)
            + len(self.removed_edges)
            + len(self.added_edges)
        )


def _affected(graph: nx.MultiDiGraph, inputs: Inputs, changed: set[str]) -> set[str]:
    """Definitions whose elements must be rebuilt when ``changed`` definitions changed."""
    affected = set(changed)
    manifest = inputs.manifest
    for key in changed:
        kind, _, name = key.partition(":")
        if kind == CONTRACT:
            # A model's columns route through the contract columns of the table it reads.
            old = src_index(graph).get(key, ((), ()))[0]
            for node in old:
                affected |= {graph.edges[e]["src"] for e in graph.out_edges(node, keys=True)}
            tables = set(contract_tables(dict(inputs.contracts.get(name, {}))))
            affected |= {
                f"{SEMANTIC_MODEL}:{m.name}"
                for m in manifest.semantic_models.values()
                if m.relation[2] in tables
            }
    # Metrics read semantic elements and other metrics' versions; both can move.
    for key in list(affected):
        kind, _, name = key.partition(":")
        if kind == SEMANTIC_MODEL:
            owned = src_index(graph).get(key, ((), ()))[0]
            for node in owned:
                for _, _, data in graph.out_edges(node, data=True):
                    if str(data.get("src", "")).startswith(f"{METRIC}:"):
                        affected.add(data["src"])
            model = manifest.semantic_models.get(name)
            for measure in model.measures if model else ():
                affected |= {
                    f"{METRIC}:{m}"
                    for m, metric in manifest.metrics.items()
                    if measure
                    in {n for k, n, _ in metric_inputs(dict(metric.spec)) if k == "measure"}
                }
    readers = inputs.readers
    pending = [k.partition(":")[2] for k in affected if k.startswith(f"{METRIC}:")]
    while pending:
        for reader in readers.get(pending.pop(), ()):
            key = f"{METRIC}:{reader}"
            if key not in affected:
                affected.add(key)
                pending.append(reader)
    return {k for k in affected if k}


def graph_delta(
    graph: nx.MultiDiGraph, rows: Iterable[DefinitionRow], *, release: str
) -> GraphDelta:
    """The delta from ``graph`` (a parent release's) to the graph of ``rows``.

    Only definitions whose version changed, and the ones that read them, are rebuilt; a
    delta applied with :func:`graph_apply_delta` gives the same graph as :func:`build_graph`.

    Example:
        >>> from lineage.graph import build_graph
        >>> rows = [("metric", "m", {"name": "m", "type": "simple"}, "1.0")]
        >>> G = build_graph(rows, release="r1")
        >>> delta = graph_delta(G, rows, release="r2")
        >>> delta.size, delta.rename
        (0, ('release:r1', 'release:r2'))
    """
    inputs = inputs_read(rows, release, graph.graph.get("inputs"))
    old_versions: Mapping[str, str] = graph.graph.get("versions", {})
    changed = {
        k
        for k in set(old_versions) | set(inputs.versions)
        if old_versions.get(k) != inputs.versions.get(k)
    }
    affected = _affected(graph, inputs, changed)
    fresh = Elements()
    for key in sorted(affected):
        if key in inputs.specs:
            elements_merge(fresh, elements_for(inputs, key, release))
    # The release node is renamed in place (see graph_apply_delta); only metric versions
    # that are new need a pinned_in edge, the others keep theirs.
    old_release = f"release:{graph.graph.get('release')}" if graph.graph.get("release") else None
    new_release = f"release:{release}" if release else None
    if new_release:
        pins = Elements()
        pins.node(new_release, "release", release, "release")
        for node, attrs in fresh.nodes.items():
            if attrs.get("kind") == "metric" and node not in graph:
                pins.edge(node, new_release, PINNED_IN, src="release", transformation="identity")
        if old_release not in graph:
            for name in inputs.manifest.metrics:
                pins.edge(
                    metric_node(inputs, name),
                    new_release,
                    PINNED_IN,
                    src="release",
                    transformation="identity",
                )
            pins.nodes[new_release]["src"] = "release"
        fresh.edges.update(pins.edges)
        if old_release not in graph:
            fresh.nodes.update(pins.nodes)
    index = src_index(graph)
    old_edges = {e: graph.edges[e] for key in affected for e in index.get(key, ((), ()))[1]}
    old_nodes = {n for key in affected for n in index.get(key, ((), ()))[0]}
    removed_edges = {e for e in old_edges if e not in fresh.edges or fresh.edges[e] != old_edges[e]}
    added_edges = {e: d for e, d in fresh.edges.items() if old_edges.get(e) != d}
    shared_added = {n: d for n, d in fresh.nodes.items() if d["src"] == SHARED and n not in graph}
    owned_added = {
        n: d for n, d in fresh.nodes.items() if d["src"] != SHARED and graph.nodes.get(n) != d
    }
    removed_nodes = {
        n for n in old_nodes if n not in fresh.nodes or fresh.nodes[n] != graph.nodes[n]
    }
    # Shared warehouse nodes go once no edge is left on them.
    touched = {end for e in removed_edges for end in e[:2] if end in graph}
    remaining = {end for e in fresh.edges for end in e[:2]}
    for node in touched:
        if graph.nodes[node].get("src") != SHARED or node in remaining:
            continue
        live = [
            e
            for e in (*graph.in_edges(node, keys=True), *graph.out_edges(node, keys=True))
            if e not in removed_edges
        ]
        if not live:
            removed_nodes.add(node)
    return GraphDelta(
        removed_nodes=frozenset(removed_nodes),
        added_nodes={**shared_added, **owned_added},
        removed_edges=frozenset(removed_edges),
        added_edges=added_edges,
        inputs=inputs,
        rename=(
            (old_release, new_release)
            if old_release is not None and old_release in graph and new_release
            else None
        ),
    )


def graph_apply_delta(
    graph: nx.MultiDiGraph,
    delta: GraphDelta,
    *,
    release: str,
    versions: Mapping[str, str],
    inputs: Inputs | None = None,
) -> nx.MultiDiGraph:
    """Applies ``delta`` to ``graph`` in place and returns it (now the new release's graph)."""
    index = src_index(graph)
    if delta.rename and delta.rename[0] != delta.rename[1]:
        _rename_node(graph, *delta.rename)
        graph.nodes[delta.rename[1]]["label"] = delta.rename[1].split(":", 1)[1]
    for u, v, k in delta.removed_edges:
        if graph.has_edge(u, v, k):
            index.get(graph.edges[u, v, k].get("src"), (set(), set()))[1].discard((u, v, k))
            graph.remove_edge(u, v, k)
    for node in delta.removed_nodes:
        if node in graph and node not in delta.added_nodes:
            index.get(graph.nodes[node].get("src"), (set(), set()))[0].discard(node)
            graph.remove_node(node)
    for node, attrs in delta.added_nodes.items():
        if node in graph:
            index.get(graph.nodes[node].get("src"), (set(), set()))[0].discard(node)
            graph.nodes[node].clear()
            graph.nodes[node].update(attrs)
            index.setdefault(attrs["src"], (set(), set()))[0].add(node)
    elements_apply(
        graph,
        Elements(
            {n: d for n, d in delta.added_nodes.items() if n not in graph}, dict(delta.added_edges)
        ),
    )
    graph.graph["release"] = release
    graph.graph["versions"] = dict(versions)
    inputs = inputs if inputs is not None else delta.inputs
    if inputs is not None:
        graph.graph["inputs"] = inputs
    else:
        graph.graph.pop("inputs", None)
    return graph


def _rename_node(graph: nx.MultiDiGraph, old: str, new: str) -> None:
    """Renames a node keeping its edges, in O(degree) dict moves.

    ``nx.relabel_nodes(copy=False)`` removes and re-adds every edge one by one; the release
    node has an edge from every metric version (10,000 in a large registry), so this moves
    the adjacency entries directly (networkx's documented ``_succ``/``_pred``/``_node``).
    """
    nodes, succ, pred = graph_internals(graph)
    nodes[new] = nodes.pop(old)
    pred[new] = pred.pop(old)
    succ[new] = succ.pop(old)
    for u in pred[new]:
        succ[u][new] = succ[u].pop(old)
    for v in succ[new]:
        pred[v][new] = pred[v].pop(old)


def graph_update(
    graph: nx.MultiDiGraph, rows: Iterable[DefinitionRow], *, release: str
) -> nx.MultiDiGraph:
    """Turns a parent release's graph into ``release``'s, in place, rebuilding only what moved."""
    rows = list(rows)
    delta = graph_delta(graph, rows, release=release)
    return graph_apply_delta(
        graph, delta, release=release, versions={f"{k}:{n}": v for k, n, _, v in rows}
    )
