"""Building a release's graph: every definition's elements merged and written into networkx."""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

import networkx as nx

from lineage.graph.elements import (
    Elements,
    Inputs,
    contract_elements,
    inputs_read,
    semantic_model_elements,
)
from lineage.graph.ids import SHARED, DefinitionRow
from lineage.graph.metrics import metric_elements, release_elements
from registry.definitions.project import CONTRACT, METRIC, SEMANTIC_MODEL


def elements_for(inputs: Inputs, key: str, release: str) -> Elements:
    kind, _, name = key.partition(":")
    if kind == CONTRACT:
        return contract_elements(name, inputs.contracts[name], inputs.contract_tables_of(name))
    if kind == SEMANTIC_MODEL:
        return semantic_model_elements(inputs, name)
    if kind == METRIC:
        return metric_elements(inputs, name)
    if key == "release" and release:
        return release_elements(inputs, release)
    return Elements()


def graph_keys(inputs: Inputs) -> list[str]:
    return sorted(k for k in inputs.specs if k.split(":")[0] in (CONTRACT, SEMANTIC_MODEL, METRIC))


def elements_merge(into: Elements, part: Elements) -> None:
    for node, attrs in part.nodes.items():
        existing = into.nodes.get(node)
        # An owned node (a contract column) is never demoted to a shared placeholder.
        if existing is None or (existing["src"] == SHARED and attrs["src"] != SHARED):
            into.nodes[node] = attrs
    into.edges.update(part.edges)


# networkx's plain dicts behind graph.nodes / graph.succ / graph.pred (node → attributes;
# u → v → key → attributes), which the hot paths below read and write directly.
_NodeDict = dict[str, dict[str, Any]]
_AdjDict = dict[str, dict[str, MutableMapping[str, Any]]]


def graph_internals(graph: nx.MultiDiGraph) -> tuple[_NodeDict, _AdjDict, _AdjDict]:
    """``graph._node, graph._succ, graph._pred``: the same dict objects, not copies."""
    # Private in networkx, so types-networkx does not declare them; they exist on every graph.
    return graph._node, graph._succ, graph._pred  # type: ignore[attr-defined]


def elements_apply(graph: nx.MultiDiGraph, el: Elements) -> None:
    # The plain dicts behind the graph: membership tests and writes in hot loops.
    nodes, succ, pred = graph_internals(graph)
    fresh: _NodeDict = {}
    for node, attrs in el.nodes.items():
        if node in nodes and nodes[node].get("src") != SHARED and attrs["src"] == SHARED:
            continue
        fresh[node] = attrs
    for u, v, _ in el.edges:
        for end in (u, v):
            if end not in fresh and end not in nodes:
                # A hop to a node no definition declares (a dimension a filter names that the
                # model lacks) still shows in lineage, as a placeholder.
                fresh[end] = {
                    "kind": end.split(":")[0],
                    "label": end.split(":", 1)[1],
                    "src": SHARED,
                }
    index = graph.graph.get("by_src")
    if index is not None:
        for node in fresh:
            if node in nodes:
                index.get(nodes[node].get("src"), (set(), ()))[0].discard(node)
    graph.add_nodes_from(fresh.items())
    # networkx's add_edges_from builds a view object per edge to look the key up; writing
    # the adjacency dicts directly is 4x faster on a 400k-edge build. Same structure:
    # succ[u][v] and pred[v][u] share one {key: attributes} dict.
    # type(graph): the stubs declare the factories as class attributes (they are: ``dict``).
    key_dict, attr_dict = type(graph).edge_key_dict_factory, type(graph).edge_attr_dict_factory
    for (u, v, k), d in el.edges.items():
        keys = succ[u].get(v)
        if keys is None:
            keys = succ[u][v] = pred[v][u] = key_dict()
        existing = keys.get(k)
        if existing is None:
            keys[k] = attr_dict()
            keys[k].update(d)
        else:
            existing.update(d)
    if index is not None:
        for node, attrs in fresh.items():
            if attrs["src"] != "release":
                index.setdefault(attrs["src"], (set(), set()))[0].add(node)
        for edge, attrs in el.edges.items():
            if attrs["src"] != "release":
                index.setdefault(attrs["src"], (set(), set()))[1].add(edge)


# Keyed by src; a lookup may pass None (``.get("src")`` of a node without one) and finds nothing.
_SrcIndex = dict[str | None, tuple[set[str], set[tuple[str, str, str]]]]


def src_index(graph: nx.MultiDiGraph) -> _SrcIndex:
    """Definition → the nodes and edges it produced, kept on the graph so an incremental
    update finds what to replace without scanning every node."""
    index = graph.graph.get("by_src")
    if index is None:
        index = {}
        for node, src in graph.nodes(data="src"):
            if src != "release":
                index.setdefault(src, (set(), set()))[0].add(node)
        for u, v, k, src in graph.edges(keys=True, data="src"):
            if src != "release":
                index.setdefault(src, (set(), set()))[1].add((u, v, k))
        graph.graph["by_src"] = index
    return index


def build_graph(rows: Iterable[DefinitionRow], *, release: str = "") -> nx.MultiDiGraph:
    """Builds the lineage graph of one release from its (kind, name, spec, version) rows.

    Args:
        rows: every definition the release pins, as ``build_manifest`` takes them.
        release: the release name (``r3``); when given, a release node and a ``pinned_in``
            edge from every metric version are added.

    Returns:
        A ``MultiDiGraph`` whose edges point downstream; ``G.graph`` holds ``release`` and
        ``versions`` (definition key → version, what :func:`graph_update` diffs).

    Example:
        >>> rows = [("semantic_model", "e", {"name": "e", "model": "ref('events')",
        ...     "measures": [{"name": "rev", "agg": "sum", "expr": "revenue"}]}, "1.0"),
        ...     ("metric", "revenue", {"name": "revenue", "type": "simple",
        ...     "type_params": {"measure": "rev"}}, "1.0")]
        >>> G = build_graph(rows, release="r1")
        >>> from lineage.graph import upstream
        >>> sorted(upstream(G, "metric:revenue@1.0"))[:2]
        ['column:main.events.revenue', 'measure:e.rev']
    """
    inputs = inputs_read(rows, release)
    graph: nx.MultiDiGraph[str] = nx.MultiDiGraph(
        release=release, versions=dict(inputs.versions), inputs=inputs
    )
    merged = Elements()
    for key in graph_keys(inputs):
        elements_merge(merged, elements_for(inputs, key, release))
    if release:
        elements_merge(merged, elements_for(inputs, "release", release))
    graph.graph["by_src"] = {}  # filled by elements_apply as it adds
    elements_apply(graph, merged)
    return graph
