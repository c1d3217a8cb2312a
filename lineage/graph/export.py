"""The graph for other tools: OpenLineage column-lineage facets, node-link JSON and GraphML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from lineage.graph.ids import CONTAINS, DIRECT, PINNED_IN


def _columns_above(graph: nx.MultiDiGraph, node: str, *, direct_only: bool) -> set[str]:
    seen: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        for parent, _, data in graph.in_edges(current, data=True):
            if data.get("type") in (CONTAINS, PINNED_IN) or parent in seen:
                continue
            if direct_only and data.get("subtype") != DIRECT:
                continue
            seen.add(parent)
            stack.append(parent)
    return {n for n in seen if graph.nodes[n].get("kind") == "column"}


def openlineage_column_lineage(
    graph: nx.MultiDiGraph, node: str, *, namespace: str = "tally"
) -> dict[str, Any]:
    """The OpenLineage ``columnLineage`` dataset facet of a node, down to warehouse columns.

    A table's fields are its columns; any other node (a metric version, a measure) is a
    dataset of one field named by its label. A source column is ``DIRECT`` when a path of
    direct edges alone reaches it, else ``INDIRECT``.

    Example:
        >>> G = nx.MultiDiGraph()
        >>> G.add_node("column:raw.e.x", kind="column", label="raw.e.x")
        >>> G.add_node("metric:m@1.0", kind="metric", label="m")
        >>> _ = G.add_edge("column:raw.e.x", "metric:m@1.0", type="derives_from", subtype="direct")
        >>> facet = openlineage_column_lineage(G, "metric:m@1.0")
        >>> facet["fields"]["m"]["inputFields"][0]["field"]
        'x'
    """
    data = graph.nodes[node]
    if data.get("kind") == "table":
        fields = {
            graph.nodes[c].get("label", c).rsplit(".", 1)[-1]: c
            for _, c, d in graph.out_edges(node, data=True)
            if d.get("type") == CONTAINS and graph.nodes[c].get("kind") == "column"
        }
    else:
        fields = {str(data.get("label", node)): node}
    facet: dict[str, Any] = {
        "_producer": "https://github.com/tally/tally",
        "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
        "fields": {},
    }
    for name, field_node in sorted(fields.items()):
        direct = _columns_above(graph, field_node, direct_only=True)
        inputs = []
        for column in sorted(_columns_above(graph, field_node, direct_only=False)):
            table, _, column_name = column[len("column:") :].rpartition(".")
            kind = "DIRECT" if column in direct else "INDIRECT"
            inputs.append(
                {
                    "namespace": namespace,
                    "name": table,
                    "field": column_name,
                    "transformations": [
                        {"type": kind, "subtype": _ol_subtype(graph, column, field_node, kind)}
                    ],
                }
            )
        facet["fields"][name] = {"inputFields": inputs}
    return facet


def _ol_subtype(graph: nx.MultiDiGraph, column: str, target: str, kind: str) -> str:
    # The first hop out of the source column says how it is used (OpenLineage subtypes).
    for _, _, data in graph.out_edges(column, data=True):
        transformation = str(data.get("transformation", ""))
        if kind == "DIRECT" and transformation in ("identity", "transformation", "aggregation"):
            return transformation.upper()
        if kind == "INDIRECT" and transformation in (
            "filter",
            "join",
            "group_by",
            "window",
            "sort",
            "conditional",
        ):
            return transformation.upper()
    return "TRANSFORMATION" if kind == "DIRECT" else "FILTER"


# --------------------------------------------------------------------------- export


def graph_to_json(graph: nx.MultiDiGraph) -> dict[str, Any]:
    """The graph as node-link JSON (networkx's format: ``nodes``, ``edges`` with keys).

    Example:
        >>> G = nx.MultiDiGraph(release="r1")
        >>> _ = G.add_edge("column:a.b.c", "measure:m.x", key="k", type="derives_from")
        >>> sorted(graph_to_json(G))
        ['directed', 'edges', 'graph', 'multigraph', 'nodes']
    """
    plain: nx.MultiDiGraph[str] = nx.MultiDiGraph(release=graph.graph.get("release", ""))
    plain.add_nodes_from(graph.nodes(data=True))
    # (u, v, key, data) is how a MultiGraph takes edges; the stubs only list (u, v[, data]).
    plain.add_edges_from(graph.edges(keys=True, data=True))  # type: ignore[arg-type]
    return nx.node_link_data(plain, edges="edges")


def write_graphml(graph: nx.MultiDiGraph, path: Any) -> None:
    """Writes the graph as GraphML; attribute values GraphML cannot hold (None, lists) are
    written as text or left out."""
    plain: nx.MultiDiGraph[str] = nx.MultiDiGraph(release=str(graph.graph.get("release", "")))

    def clean(attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {
            k: v if isinstance(v, (str, int, float, bool)) else str(v)
            for k, v in attrs.items()
            if v is not None
        }

    plain.add_nodes_from((n, clean(d)) for n, d in graph.nodes(data=True))
    # (u, v, key, data): see graph_to_json.
    plain.add_edges_from(
        (u, v, k, clean(d))  # type: ignore[misc]
        for u, v, k, d in graph.edges(keys=True, data=True)
    )
    nx.write_graphml(plain, path)
