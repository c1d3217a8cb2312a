"""The stored rows of lineage: a graph's nodes and edges as LineageNode / LineageEdge rows with
release ranges, and the delta writes that keep those ranges (see lineage/models.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import networkx as nx

from lineage.graph import PINNED_IN, GraphDelta
from lineage.models import LineageEdge, LineageNode, Origin
from tally.bulk import rows_insert

# Written separately from node attributes, so they are not duplicated in the JSON column.
NODE_FIELDS = ("kind", "label", "src")
EDGE_FIELDS = ("type", "subtype", "transformation", "expr", "src")


def node_row(node: str, data: Mapping[str, Any], *, number: int | None, origin: str) -> LineageNode:
    return LineageNode(
        node_id=node,
        kind=data.get("kind", ""),
        label=str(data.get("label", ""))[:500],
        src=data.get("src", ""),
        attrs={k: v for k, v in data.items() if k not in NODE_FIELDS},
        origin=origin,
        valid_from=number,
    )


def edge_row(
    edge: tuple[str, str, str], data: Mapping[str, Any], *, number: int | None, origin: str
) -> LineageEdge:
    u, v, key = edge
    return LineageEdge(
        source=u,
        target=v,
        key=key,
        origin=origin,
        valid_from=number,
        **{f: data.get(f, "") for f in EDGE_FIELDS},
    )


def _node_values(
    node: str, data: Mapping[str, Any], *, number: int | None, origin: str
) -> dict[str, Any]:
    """A LineageNode row as plain values (what _insert writes; no model instance)."""
    return {
        "node_id": node,
        "kind": data.get("kind", ""),
        "label": str(data.get("label", ""))[:500],
        "src": data.get("src", ""),
        "attrs": {k: v for k, v in data.items() if k not in NODE_FIELDS},
        "origin": origin,
        "valid_from": number,
        "valid_to": None,
    }


def _edge_values(
    edge: tuple[str, str, str], data: Mapping[str, Any], *, number: int | None, origin: str
) -> dict[str, Any]:
    u, v, key = edge
    return {
        "source": u,
        "target": v,
        "key": key,
        "origin": origin,
        "valid_from": number,
        "valid_to": None,
        **{f: data.get(f, "") for f in EDGE_FIELDS},
    }


def _insert(model: type[Any], objs: Iterable[Any], *, batch: int = 2000) -> None:
    """Inserts unsaved rows (objects or dicts) with executemany instead of bulk_create.

    A full graph is hundreds of thousands of rows; bulk_create spends most of its time
    compiling each field of each row. Plain values go as they are; JSON goes through the
    field's ``get_db_prep_save`` (the vendor's adaptation).
    """
    from django.db import connection, models

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    getters = [
        (f.attname, f.get_db_prep_save if isinstance(f, models.JSONField) else None) for f in fields
    ]

    def prepared() -> Iterator[list[Any]]:
        for obj in objs:
            values = obj if isinstance(obj, dict) else obj.__dict__
            yield [
                prep(values[name], connection) if prep else values[name] for name, prep in getters
            ]

    rows_insert(model._meta.db_table, [f.column for f in fields], prepared(), batch=batch)


def _stored(graph: nx.MultiDiGraph) -> tuple[dict[str, Any], dict[tuple[str, str, str], Any]]:
    """The parts of a release graph that are stored: not the release node nor pinned_in
    edges (ranges stand for them), nor imported SQL lineage (stored on import)."""
    nodes = {
        n: d for n, d in graph.nodes(data=True) if d.get("src") != "release" and not _is_sql(d)
    }
    edges = {
        (u, v, k): d
        for u, v, k, d in graph.edges(keys=True, data=True)
        if d.get("type") != PINNED_IN and not _is_sql(d)
    }
    return nodes, edges


def _is_sql(data: Mapping[str, Any]) -> bool:
    return str(data.get("src", "")).startswith("sql")


def _open(model: type[Any]) -> Any:
    return model.objects.filter(origin=Origin.REGISTRY, valid_to__isnull=True)


def _retire(model: type[Any], pks: Iterable[int], number: int) -> None:
    """Ends rows at the release before ``number``; rows born in ``number`` itself go."""
    pks = list(pks)
    for start in range(0, len(pks), 500):
        chunk = pks[start : start + 500]
        model.objects.filter(pk__in=chunk, valid_from__gte=number).delete()
        model.objects.filter(pk__in=chunk, valid_from__lt=number).update(valid_to=number - 1)


def write_delta(delta: GraphDelta, number: int) -> None:
    # Lookups go in chunks: SQLite caps the parameters of one statement.
    removed_nodes = sorted(delta.removed_nodes)
    for start in range(0, len(removed_nodes), 500):
        chunk = removed_nodes[start : start + 500]
        _retire(
            LineageNode,
            _open(LineageNode).filter(node_id__in=chunk).values_list("pk", flat=True),
            number,
        )
    removed = set(delta.removed_edges)
    sources = sorted({u for u, _, _ in removed})
    edge_pks: list[int] = []
    for start in range(0, len(sources), 500):
        edge_pks += [
            pk
            for pk, u, v, k in _open(LineageEdge)
            .filter(source__in=sources[start : start + 500])
            .values_list("pk", "source", "target", "key")
            if (u, v, k) in removed
        ]
    _retire(LineageEdge, edge_pks, number)
    _insert(
        LineageNode,
        (
            _node_values(n, d, number=number, origin=Origin.REGISTRY)
            for n, d in delta.added_nodes.items()
            if d.get("src") != "release"
        ),
    )
    _insert(
        LineageEdge,
        (
            _edge_values(e, d, number=number, origin=Origin.REGISTRY)
            for e, d in delta.added_edges.items()
            if d.get("type") != PINNED_IN
        ),
    )


def stored_delta(graph: nx.MultiDiGraph) -> GraphDelta:
    """The delta from the stored open rows to ``graph`` (what a full rebuild writes)."""
    nodes, edges = _stored(graph)
    open_nodes = {
        n: {"kind": k, "label": lab, "src": s, **a}
        for n, k, lab, s, a in _open(LineageNode).values_list(
            "node_id", "kind", "label", "src", "attrs"
        )
    }
    open_edges = {
        (u, v, k): dict(zip(EDGE_FIELDS, rest, strict=True))
        for u, v, k, *rest in _open(LineageEdge).values_list(
            "source", "target", "key", *EDGE_FIELDS
        )
    }
    wanted_nodes = {n: {**d, "label": str(d.get("label", ""))[:500]} for n, d in nodes.items()}
    wanted_edges = {e: {f: d.get(f, "") for f in EDGE_FIELDS} for e, d in edges.items()}
    return GraphDelta(
        removed_nodes=frozenset(n for n, d in open_nodes.items() if wanted_nodes.get(n) != d),
        added_nodes={n: d for n, d in wanted_nodes.items() if open_nodes.get(n) != d},
        removed_edges=frozenset(e for e, d in open_edges.items() if wanted_edges.get(e) != d),
        added_edges={e: d for e, d in wanted_edges.items() if open_edges.get(e) != d},
    )
