"""READS for the lineage explorer: a node's neighbourhood laid out in columns (upstream to the
left, downstream to the right) for a server-drawn SVG the page pans and zooms."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
from django.urls import reverse
from django.utils.http import urlencode

from lineage.graph import CONTAINS, PINNED_IN, resolve_node
from lineage.selectors import ImpactReport, lineage_graph_get, lineage_impact

COL_W = 250
ROW_H = 46
NODE_W = 200
NODE_H = 32
MAX_PER_COLUMN = 30
# Edges the explorer follows: data flow only (a model "contains" its fields, and a release
# pins every metric: following those would pull in the whole registry).
SKIP_EDGES = (CONTAINS, PINNED_IN)


@dataclass(frozen=True)
class GraphNode:
    id: str
    kind: str
    label: str
    layer: int
    x: int
    y: int
    focus: bool
    expanded: bool
    hidden_up: int
    hidden_down: int
    page_url: str
    expand_url: str


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    type: str
    indirect: bool
    path: str


@dataclass(frozen=True)
class GraphView:
    focus: str
    release: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    width: int
    height: int
    truncated: int
    expand: tuple[str, ...]
    depth: int


def node_page_url(node: str) -> str:
    """The page of a node: a metric or contract page, else the explorer focused on it."""
    kind, _, rest = node.partition(":")
    if kind == "metric":
        return reverse("metric-detail", args=[rest.split("@")[0]])
    if kind == "contract":
        return reverse("contract-detail", args=[rest])
    if kind == "value":
        return reverse("value-trace", args=[rest])
    return reverse("lineage") + "?" + urlencode({"node": node})


def _flows(graph: nx.MultiDiGraph, node: str, upstream: bool) -> Iterable[tuple[str, dict]]:
    edges = graph.in_edges(node, data=True) if upstream else graph.out_edges(node, data=True)
    for a, b, data in edges:
        if data.get("type") not in SKIP_EDGES:
            yield (a if upstream else b), data


def lineage_view_get(
    *,
    node: str,
    depth: int = 2,
    expand: Iterable[str] = (),
    release_ref: str | None = None,
) -> GraphView:
    """The nodes within ``depth`` hops up and down of ``node`` (plus the direct neighbours of
    every expanded node), in columns by signed distance, with edge paths."""
    release, graph = lineage_graph_get(release_ref=release_ref)
    focus = resolve_node(graph, node)
    layer: dict[str, int] = {focus: 0}
    for upstream in (True, False):
        sign = -1 if upstream else 1
        queue = deque([(focus, 0)])
        while queue:
            current, dist = queue.popleft()
            if dist >= depth:
                continue
            for other, _ in _flows(graph, current, upstream):
                if other not in layer:
                    layer[other] = sign * (dist + 1)
                    queue.append((other, dist + 1))
    expanded = tuple(dict.fromkeys(e for e in expand if e in graph))
    for item in expanded:
        base = layer.setdefault(item, 0)
        for other, _ in _flows(graph, item, True):
            layer.setdefault(other, base - 1)
        for other, _ in _flows(graph, item, False):
            layer.setdefault(other, base + 1)
    columns: dict[int, list[str]] = {}
    for n, col in layer.items():
        columns.setdefault(col, []).append(n)
    truncated = 0
    keep: set[str] = set()
    for col, members in columns.items():
        # Focus and expanded nodes first, then by kind and name, so the cut is stable.
        members.sort(
            key=lambda n: (n != focus, n not in expanded, graph.nodes[n].get("kind", ""), n)
        )
        truncated += max(0, len(members) - MAX_PER_COLUMN)
        columns[col] = members[:MAX_PER_COLUMN]
        keep.update(columns[col])
    first = min(columns)
    tallest = max(len(m) for m in columns.values())
    height = max(tallest * ROW_H + 20, 160)
    nodes: list[GraphNode] = []
    where: dict[str, tuple[int, int]] = {}
    for col in sorted(columns):
        members = columns[col]
        top = (height - len(members) * ROW_H) // 2
        for i, n in enumerate(members):
            x, y = (col - first) * COL_W + 10, top + i * ROW_H + 7
            where[n] = (x, y)
            data = graph.nodes[n]
            up = sum(1 for o, _ in _flows(graph, n, True) if o not in keep)
            down = sum(1 for o, _ in _flows(graph, n, False) if o not in keep)
            nodes.append(
                GraphNode(
                    id=n,
                    kind=str(data.get("kind", n.split(":")[0])),
                    label=str(data.get("label") or n.split(":", 1)[-1]),
                    layer=col,
                    x=x,
                    y=y,
                    focus=n == focus,
                    expanded=n in expanded,
                    hidden_up=up,
                    hidden_down=down,
                    page_url=node_page_url(n),
                    expand_url=reverse("lineage")
                    + "?"
                    + urlencode(
                        [("node", focus), ("depth", depth)]
                        + [("expand", e) for e in (*expanded, n) if e != focus]
                    ),
                )
            )
    edges: list[GraphEdge] = []
    seen: set[tuple[str, str]] = set()
    for a, b, data in graph.subgraph(keep).edges(data=True):
        if data.get("type") in SKIP_EDGES or (a, b) in seen:
            continue
        seen.add((a, b))
        (x1, y1), (x2, y2) = where[a], where[b]
        sx, sy, tx, ty = x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2
        bend = max(40, abs(tx - sx) // 2)
        path = f"M{sx},{sy} C{sx + bend},{sy} {tx - bend},{ty} {tx},{ty}"
        edges.append(
            GraphEdge(a, b, str(data.get("type", "")), data.get("subtype") == "indirect", path)
        )
    width = (max(columns) - first + 1) * COL_W
    return GraphView(focus, release.name, nodes, edges, width, height, truncated, expanded, depth)


def lineage_impact_get(*, node: str) -> ImpactReport:
    """Everything downstream of a column or table (the selector the API uses)."""
    return lineage_impact(node=node)


def contracts_upstream_get(*, node: str) -> list[str]:
    """The names of the data contracts a node reads from (through any number of hops)."""
    _, graph = lineage_graph_get()
    found = resolve_node(graph, node)
    return sorted(
        {
            n.split(":", 1)[1].split(".", 1)[0]
            for n in nx.ancestors(graph, found)
            if n.startswith(("contract_column:", "contract:"))
        }
    )
