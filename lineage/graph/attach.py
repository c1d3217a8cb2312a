"""Nodes added to a built graph: SQL lineage, compiled queries, compute runs, stored values."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import networkx as nx

from lineage.graph.build import elements_apply
from lineage.graph.elements import Elements, warehouse_column
from lineage.graph.ids import (
    COMPUTED_BY,
    CONTAINS,
    DERIVES_FROM,
    DIRECT,
    FILTERS_BY,
    GROUPS_BY,
    INDIRECT,
    JOINS_ON,
    PINNED_IN,
    table_id,
)


def add_column_edges(graph: nx.MultiDiGraph, edges: Iterable[Any], *, src: str = "sql") -> int:
    """Adds upstream SQL lineage (``lineage.sql_lineage.ColumnEdge``) to the graph.

    Returns:
        The number of edges added.
    """
    graph.graph.pop("by_src", None)
    el = Elements()
    for edge in edges:
        source = warehouse_column(el, edge.source_table, edge.source_column)
        target = warehouse_column(el, edge.target_table, edge.target_column)
        model = el.node(f"sql_model:{edge.model}", "sql_model", edge.model, src)
        el.edge(model, table_id(edge.target_table), CONTAINS, src=src)
        el.edge(
            source, target, DERIVES_FROM if edge.subtype == DIRECT else _indirect_type(edge),
            src=f"{src}:{edge.model}", subtype=edge.subtype,
            transformation=edge.transformation, expr=edge.expr,
        )  # fmt: skip
    elements_apply(graph, el)
    return len(el.edges)


def _indirect_type(edge: Any) -> str:
    return {"join": JOINS_ON, "group_by": GROUPS_BY}.get(edge.transformation, FILTERS_BY)


# --------------------------------------------------------------------------- runs (issue #7)


def add_compiled_query(
    graph: nx.MultiDiGraph, *, sql: str, metrics: Iterable[str], release: str
) -> str:
    """Adds a compiled query node fed by the metric versions it computes; returns its id."""
    graph.graph.pop("by_src", None)
    node = "compiled_query:" + hashlib.sha1(sql.encode()).hexdigest()[:12]
    graph.add_node(node, kind="compiled_query", label=node[15:], src="query", sql=sql)
    for metric in metrics:
        graph.add_edge(metric, node, key=f"{DERIVES_FROM}|sql", type=DERIVES_FROM,
                       subtype=DIRECT, transformation="transformation", expr="", src="query")  # fmt: skip
    if release:
        graph.add_edge(f"release:{release}", node, key=f"{PINNED_IN}|query", type=PINNED_IN,
                       subtype=INDIRECT, transformation="identity", expr="", src="query")  # fmt: skip
    return node


def add_compute_run(graph: nx.MultiDiGraph, *, run_id: int | str, compiled_query: str) -> str:
    """A compute run (issue #7) executed a compiled query: ``compiled_query → run``."""
    graph.graph.pop("by_src", None)
    node = f"compute_run:{run_id}"
    graph.add_node(node, kind="compute_run", label=str(run_id), src="run")
    graph.add_edge(compiled_query, node, key=COMPUTED_BY, type=COMPUTED_BY, subtype=DIRECT,
                   transformation="identity", expr="", src="run")  # fmt: skip
    return node


def add_stored_value(graph: nx.MultiDiGraph, *, value_id: int | str, run: str) -> str:
    """A stored value (issue #7) came out of a run: ``run → value``."""
    graph.graph.pop("by_src", None)
    node = f"value:{value_id}"
    graph.add_node(node, kind="value", label=str(value_id), src="run")
    graph.add_edge(run, node, key=COMPUTED_BY, type=COMPUTED_BY, subtype=DIRECT,
                   transformation="identity", expr="", src="run")  # fmt: skip
    return node
