"""Lineage writes: store a release's graph (full or incremental) and import upstream SQL lineage.

The in-memory graph of a release is cached per process (releases are immutable); the stored
rows carry release ranges (see lineage/models.py; rows ↔ graph in lineage/storage.py), so an
incremental update touches only the rows of what changed. What triggers a store (a published
release) is in lineage/receivers.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import networkx as nx
from django.db import transaction
from django.db.models import Q

from lineage.graph import (
    PINNED_IN,
    SHARED,
    DefinitionRow,
    GraphDelta,
    add_column_edges,
    build_graph,
    graph_apply_delta,
    graph_delta,
)
from lineage.models import LineageBuild, LineageEdge, LineageNode, Origin
from lineage.sql_lineage import ColumnEdge, SqlModel, project_lineage
from lineage.storage import EDGE_FIELDS, edge_row, node_row, stored_delta, write_delta
from registry.models import Release, ReleaseItem
from semantic.manifests import release_key
from tally.lru import LRU

GRAPH_CACHE_SIZE = 4


# Release graphs, keyed like semantic's manifest cache (release_key).
graphs: LRU[tuple[int, str], nx.MultiDiGraph] = LRU(GRAPH_CACHE_SIZE)


def release_rows(release: Release) -> list[DefinitionRow]:
    """The (kind, name, spec, version) rows a release pins, as build_manifest reads them."""
    rows = ReleaseItem.objects.filter(release=release).values_list(
        "definition__kind", "definition__name", "version__spec", "version__major", "version__minor"
    )
    return [(kind, name, spec, f"{major}.{minor}") for kind, name, spec, major, minor in rows]


# --------------------------------------------------------------------------- services


@dataclass(frozen=True)
class BuildResult:
    build: LineageBuild
    graph: nx.MultiDiGraph


@transaction.atomic
def lineage_rebuild(*, release: Release) -> BuildResult:
    """Builds a release's lineage from its definitions and stores it (one transaction).

    Rows that did not change keep their range; changed or gone ones are closed at the
    previous release. Rebuilding a release older than the last one stored is refused (the
    ranges after it would be wrong), so it is built in memory only.
    """
    started = time.perf_counter()
    graph = build_graph(release_rows(release), release=release.name)
    _add_stored_sql(graph)
    last = LineageBuild.objects.order_by("-release_number").first()
    if last is not None and last.release_number > release.number:
        graphs.put(release_key(release), graph)
        return BuildResult(LineageBuild(release_number=release.number, mode="full"), graph)
    delta = stored_delta(graph)
    write_delta(delta, release.number)
    build = _record(release, LineageBuild.Mode.FULL, delta, started)
    graphs.put(release_key(release), graph)
    return BuildResult(build, graph)


def _record(release: Release, mode: str, delta: GraphDelta, started: float) -> LineageBuild:
    build, _ = LineageBuild.objects.update_or_create(
        release_number=release.number,
        defaults={
            "mode": mode,
            "nodes_changed": len(delta.removed_nodes) + len(delta.added_nodes),
            "edges_changed": len(delta.removed_edges) + len(delta.added_edges),
            "duration_ms": (time.perf_counter() - started) * 1000,
        },
    )
    return build


@transaction.atomic
def lineage_update(*, release: Release) -> BuildResult:
    """Stores a newly published release's lineage incrementally from its parent's.

    Falls back to :func:`lineage_rebuild` when the parent's lineage is not the one stored.
    """
    started = time.perf_counter()
    parent = release.parent
    last = LineageBuild.objects.order_by("-release_number").first()
    if parent is None or last is None or last.release_number != parent.number:
        return lineage_rebuild(release=release)
    # The parent's cached graph becomes the child's (mutated in place), so it leaves the
    # cache first: a reader must never see a half-updated graph under the parent's key.
    graph = graphs.pop(release_key(parent))
    if graph is None:
        graph = load_graph(parent)
    rows = release_rows(release)
    delta = graph_delta(graph, rows, release=release.name)
    write_delta(delta, release.number)
    graph_apply_delta(
        graph, delta, release=release.name, versions={f"{k}:{n}": v for k, n, _, v in rows}
    )
    build = _record(release, LineageBuild.Mode.INCREMENTAL, delta, started)
    graphs.put(release_key(release), graph)
    return BuildResult(build, graph)


def load_graph(release: Release) -> nx.MultiDiGraph:
    """A release's graph from the stored rows (no write); built in memory when none cover it."""
    covered = LineageBuild.objects.filter(release_number__gte=release.number).exists()
    if not covered:
        graph = build_graph(release_rows(release), release=release.name)
        _add_stored_sql(graph)
        return graph
    number = release.number
    in_range = Q(origin=Origin.REGISTRY, valid_from__lte=number) & (
        Q(valid_to__isnull=True) | Q(valid_to__gte=number)
    )
    versions = {f"{k}:{n}": v for k, n, _, v in release_rows(release)}
    graph = nx.MultiDiGraph(release=release.name, versions=versions)
    for node, kind, label, src, attrs in LineageNode.objects.filter(in_range).values_list(
        "node_id", "kind", "label", "src", "attrs"
    ):
        graph.add_node(node, kind=kind, label=label, src=src, **attrs)
    for u, v, key, *rest in LineageEdge.objects.filter(in_range).values_list(
        "source", "target", "key", *EDGE_FIELDS
    ):
        graph.add_edge(u, v, key=key, **dict(zip(EDGE_FIELDS, rest, strict=True)))
    release_node = f"release:{release.name}"
    graph.add_node(release_node, kind="release", label=release.name, src="release")
    for node, data in list(graph.nodes(data=True)):
        if data.get("kind") == "metric":
            graph.add_edge(node, release_node, key=f"{PINNED_IN}|identity|", type=PINNED_IN,
                           subtype="direct", transformation="identity", expr="", src="release")  # fmt: skip
    _add_stored_sql(graph)
    return graph


def _add_stored_sql(graph: nx.MultiDiGraph) -> None:
    for node, kind, label, src, attrs in LineageNode.objects.filter(origin=Origin.SQL).values_list(
        "node_id", "kind", "label", "src", "attrs"
    ):
        if node not in graph:
            graph.add_node(node, kind=kind, label=label, src=src, **attrs)
    for u, v, key, *rest in LineageEdge.objects.filter(origin=Origin.SQL).values_list(
        "source", "target", "key", *EDGE_FIELDS
    ):
        graph.add_edge(u, v, key=key, **dict(zip(EDGE_FIELDS, rest, strict=True)))


def _contract_schema() -> dict[str, list[str]]:
    """``schema.table`` → columns the latest release's contracts declare: what SQL models
    read is often exactly those tables, so ``*`` over them expands."""
    from registry.definitions.contracts import contract_schema_name, contract_tables

    latest = Release.objects.order_by("-number").first()
    if latest is None:
        return {}
    known: dict[str, list[str]] = {}
    for spec in ReleaseItem.objects.filter(release=latest, definition__kind="contract").values_list(
        "version__spec", flat=True
    ):
        schema = contract_schema_name(spec) or "main"
        for table, columns in contract_tables(spec).items():
            known[f"{schema}.{table}"] = [c.name for c in columns]
    return known


@dataclass(frozen=True)
class SqlImportResult:
    models: int
    edges: int
    direct: int
    indirect: int
    columns: int
    # Statements whose lineage is missing: {"file", "line", "reason"} each.
    issues: tuple[dict[str, str | int], ...] = ()


@transaction.atomic
def lineage_sql_import(
    *,
    models: list[SqlModel],
    dialect: str,
    schema: Mapping[str, Iterable[str]] | None = None,
) -> SqlImportResult:
    """Derives column lineage from SQL models and stores it, replacing earlier imports of the
    same models (one transaction). ``schema`` (a dbt project's columns) adds to the tables the
    latest release's contracts declare; a statement that cannot be read is returned as an
    issue and the rest of its model is stored."""
    known = {**_contract_schema(), **(schema or {})}
    found = project_lineage(models, dialect=dialect, schema=known)
    edges: list[ColumnEdge] = found.edges
    scratch = nx.MultiDiGraph()
    add_column_edges(scratch, edges)
    names = {m.name for m in models}
    LineageEdge.objects.filter(origin=Origin.SQL, src__in=[f"sql:{n}" for n in names]).delete()
    LineageEdge.objects.filter(
        origin=Origin.SQL, src="sql", source__in=[f"sql_model:{n}" for n in names]
    ).delete()
    existing = set(LineageNode.objects.filter(origin=Origin.SQL).values_list("node_id", flat=True))
    LineageNode.objects.bulk_create(
        [
            node_row(n, d, number=None, origin=Origin.SQL)
            for n, d in scratch.nodes(data=True)
            if n not in existing
        ],
        batch_size=1000,
    )
    # Structural edges (table contains column) are shared by every import: keep one copy.
    kept = set(LineageEdge.objects.filter(origin=Origin.SQL).values_list("source", "target", "key"))
    stored_edges = [
        edge_row(
            (u, v, k),
            {**d, "src": "sql" if d["src"] == SHARED else d["src"]},
            number=None,
            origin=Origin.SQL,
        )
        for u, v, k, d in scratch.edges(keys=True, data=True)
        if (u, v, k) not in kept
    ]
    LineageEdge.objects.bulk_create(stored_edges, batch_size=1000)
    graphs.clear()  # every cached release graph includes the imported SQL lineage
    return SqlImportResult(
        models=len(names),
        edges=len(edges),
        direct=sum(e.subtype == "direct" for e in edges),
        indirect=sum(e.subtype == "indirect" for e in edges),
        columns=len({(e.target_table, e.target_column) for e in edges}),
        issues=tuple({"file": i.file, "line": i.line, "reason": i.reason} for i in found.issues),
    )
