"""Questions asked of a graph: which node a user means, upstream trees, impact and paths."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from lineage.graph.ids import (
    CONTAINS,
    DIRECT,
    HINT_NODE_FORMS,
    INDIRECT,
    MSG_NO_PATH,
    MSG_UNKNOWN_NODE,
    PINNED_IN,
    LineageError,
)
from tally.errors import NotFound


def resolve_node(graph: nx.MultiDiGraph, text: str) -> str:
    """The node id a user means: an exact id, ``metric:name`` (the release's version), a bare
    metric name, ``table.column`` / ``schema.table.column`` or ``table``.

    Raises:
        LineageError: code ``unknown_node`` (404) with did-you-mean suggestions.

    Example:
        >>> G = nx.MultiDiGraph(); G.add_node("column:main.events.revenue", kind="column")
        >>> resolve_node(G, "events.revenue")
        'column:main.events.revenue'
    """
    wanted = text.strip()
    if wanted in graph:
        return wanted
    lowered = wanted.lower()
    if lowered in graph:
        return lowered
    kind, sep, rest = wanted.partition(":")
    candidates: list[str] = []
    if sep and kind == "metric" and "@" not in rest:
        candidates = [n for n in graph if n.startswith(f"metric:{rest}@")]
    elif not sep:
        # A dotted name is a warehouse table or column; a plain one a metric first.
        candidates = [n for n in graph if n.startswith(f"metric:{wanted}@")]
        for prefix in ("column:", "table:") if "." in wanted else ():
            suffix = "." + lowered
            candidates += [
                n
                for n in graph
                if n.startswith(prefix) and (n == prefix + lowered or n.endswith(suffix))
            ]
        for prefix in ("measure:", "dimension:", "entity:", "semantic_model:", "contract:"):
            if prefix + lowered in graph:
                candidates.append(prefix + lowered)
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise LineageError(
            f"{text!r} names {len(candidates)} lineage nodes",
            code="ambiguous_node",
            hint="one of: " + ", ".join(sorted(candidates)[:8]),
        )
    raise NodeNotFound(
        MSG_UNKNOWN_NODE.format(node=text),
        code="unknown_node",
        hint=_suggest(graph, wanted) or HINT_NODE_FORMS,
    )


class NodeNotFound(NotFound):
    default_code = "unknown_node"


def _suggest(graph: nx.MultiDiGraph, text: str) -> str | None:
    import difflib

    names = list(graph.nodes)
    short = {n.split(":", 1)[-1].split("@")[0]: n for n in names}
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.6) or [
        short[s]
        for s in difflib.get_close_matches(text.split(":")[-1], list(short), n=3, cutoff=0.6)
    ]
    return f"did you mean {', '.join(close)}?" if close else None


def upstream(graph: nx.MultiDiGraph, node: str) -> set[str]:
    """Every node ``node`` reads from, directly or not (its ancestors)."""
    return set(nx.ancestors(graph, node))


def downstream(graph: nx.MultiDiGraph, node: str) -> set[str]:
    """Every node that reads ``node`` (its descendants)."""
    return set(nx.descendants(graph, node))


def influences(graph: nx.MultiDiGraph, node: str, *, direct_only: bool = False) -> set[str]:
    """Every warehouse column that influenced ``node``, through any number of hops, as one set:
    those its value is computed from (DIRECT) and, unless ``direct_only``, those that decide
    which rows or branch reach it (INDIRECT: filters, joins, grouping, windows, sorting).
    Containment (table → column) and release pins are not influence and are not followed.

    Example:
        >>> G = nx.MultiDiGraph()
        >>> G.add_node("column:raw.e.a", kind="column"); G.add_node("column:raw.e.k", kind="column")
        >>> G.add_node("column:main.m.x", kind="column")
        >>> G.add_edge("column:raw.e.a", "column:main.m.x", type="derives_from", subtype="direct")
        0
        >>> G.add_edge("column:raw.e.k", "column:main.m.x", type="filters_by", subtype="indirect")
        0
        >>> sorted(influences(G, "column:main.m.x")), sorted(influences(G, "column:main.m.x", direct_only=True))
        (['column:raw.e.a', 'column:raw.e.k'], ['column:raw.e.a'])
    """
    seen: set[str] = set()
    todo = [node]
    while todo:
        current = todo.pop()
        edges = list(graph.in_edges(current, data=True))
        star = current.rsplit(".", 1)[0] + ".*"
        if not any(d.get("type") not in (CONTAINS, PINNED_IN) for _, _, d in edges) and (
            star != current and star in graph
        ):
            # A column of a model whose columns were unknown comes through its `*`.
            edges = list(graph.in_edges(star, data=True))
        for source, _, data in edges:
            if data.get("type") in (CONTAINS, PINNED_IN) or source in seen:
                continue
            if direct_only and data.get("subtype", DIRECT) != DIRECT:
                continue
            seen.add(source)
            todo.append(source)
    seen.discard(node)
    return {n for n in seen if graph.nodes[n].get("kind") == "column"}


@dataclass(frozen=True)
class Hop:
    """One node of an upstream tree and the edge that led to it from its child."""

    node: str
    kind: str
    label: str
    expr: str
    edge_type: str | None
    subtype: str | None
    children: tuple[Hop, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind,
            "label": self.label,
            "expr": self.expr,
            "edge": self.edge_type,
            "subtype": self.subtype,
            "upstream": [c.as_dict() for c in self.children],
        }

    def lines(self, depth: int = 0) -> Iterator[str]:
        """Indented text, one hop per line: ``← [filters_by] dimension events.event_type``."""
        arrow = (
            f"← [{self.edge_type}{'' if self.subtype == DIRECT else ', indirect'}] "
            if depth
            else ""
        )
        expr = f"  = {self.expr}" if self.expr else ""
        yield f"{'  ' * depth}{arrow}{self.kind} {self.label}{expr}"
        for child in self.children:
            yield from child.lines(depth + 1)


def upstream_tree(
    graph: nx.MultiDiGraph,
    node: str,
    *,
    max_depth: int = 12,
    include_indirect: bool = True,
    max_hops: int = 5_000,
) -> Hop:
    """The upstream of ``node`` as a tree with the expression at each hop.

    Structural ``contains`` edges are skipped (a measure's model is not what it reads from);
    a node met twice on one branch is not expanded again, and a subtree already shown in
    full elsewhere is shown once more without its children past ``max_hops`` hops (derived
    metrics over shared inputs form diamonds, whose tree grows exponentially with depth).

    Example:
        >>> G = nx.MultiDiGraph()
        >>> G.add_node("column:main.e.rev", kind="column", label="main.e.rev")
        >>> G.add_node("measure:e.r", kind="measure", label="e.r", expr="sum(rev)")
        >>> G.add_edge("column:main.e.rev", "measure:e.r", type="derives_from", subtype="direct")
        0
        >>> print("\\n".join(upstream_tree(G, "measure:e.r").lines()))
        measure e.r  = sum(rev)
          ← [derives_from] column main.e.rev
    """

    budget = [max_hops]

    def walk(current: str, edge: Mapping[str, Any] | None, seen: frozenset[str], depth: int) -> Hop:
        data = graph.nodes[current]
        children: list[Hop] = []
        budget[0] -= 1
        if depth < max_depth and budget[0] > 0:
            for parent, _, attrs in sorted(
                graph.in_edges(current, data=True), key=lambda e: (e[2].get("type", ""), e[0])
            ):
                if attrs.get("type") in (CONTAINS, PINNED_IN) or parent in seen:
                    continue
                if not include_indirect and attrs.get("subtype") == INDIRECT:
                    continue
                children.append(walk(parent, attrs, seen | {parent}, depth + 1))
        return Hop(
            node=current,
            kind=str(data.get("kind", current.split(":")[0])),
            label=str(data.get("label", current)),
            expr=str(data.get("expr") or ""),
            edge_type=edge.get("type") if edge else None,
            subtype=edge.get("subtype") if edge else None,
            children=tuple(children),
        )

    return walk(node, None, frozenset({node}), 0)


@dataclass(frozen=True)
class Impact:
    """What changes when a column or table changes."""

    node: str
    metrics: tuple[str, ...]
    releases: tuple[str, ...]
    owners: tuple[str, ...]
    nodes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "metrics": list(self.metrics),
            "releases": list(self.releases),
            "owners": list(self.owners),
            "nodes": list(self.nodes),
        }


def impact(graph: nx.MultiDiGraph, node: str) -> Impact:
    """Downstream of a node: affected metric versions, releases, owners to notify, all nodes.

    A table's impact is the union of its columns' (``contains`` edges lead there).

    Example:
        >>> G = nx.MultiDiGraph()
        >>> G.add_node("column:main.e.rev", kind="column")
        >>> G.add_node("metric:r@1.0", kind="metric", owner="finance")
        >>> _ = G.add_edge("column:main.e.rev", "metric:r@1.0", type="derives_from")
        >>> impact(G, "column:main.e.rev").owners
        ('finance',)
    """
    below = nx.descendants(graph, node)
    nodes = graph.nodes
    metrics = sorted(n for n in below if nodes[n].get("kind") == "metric")
    releases = sorted(n for n in below if nodes[n].get("kind") == "release")
    owners = sorted(
        {
            str(nodes[n]["owner"])
            for n in below
            if nodes[n].get("owner") and nodes[n].get("kind") in ("metric", "semantic_model")
        }
    )
    return Impact(node, tuple(metrics), tuple(releases), tuple(owners), tuple(sorted(below)))


@dataclass(frozen=True)
class PathHop:
    node: str
    edge_type: str | None
    expr: str


def path(graph: nx.MultiDiGraph, a: str, b: str) -> list[PathHop]:
    """The shortest lineage path from ``a`` down to ``b`` (or from ``b`` down to ``a``).

    Raises:
        LineageError: code ``no_path`` when neither reaches the other.

    Example:
        >>> G = nx.MultiDiGraph()
        >>> _ = G.add_edge("column:x", "metric:m@1.0", type="derives_from", expr="x")
        >>> [h.node for h in path(G, "metric:m@1.0", "column:x")]
        ['column:x', 'metric:m@1.0']
    """
    for source, target in ((a, b), (b, a)):
        try:
            nodes = nx.shortest_path(graph, source, target)
        except nx.NetworkXNoPath:
            continue
        hops = [PathHop(nodes[0], None, "")]
        for u, v in itertools.pairwise(nodes):
            data = next(iter(graph.get_edge_data(u, v).values()))
            hops.append(PathHop(v, data.get("type"), str(data.get("expr") or "")))
        return hops
    raise LineageError(
        MSG_NO_PATH.format(a=a, b=b),
        code="no_path",
        hint="lineage follows data flow; check that one node is upstream of the other",
    )
