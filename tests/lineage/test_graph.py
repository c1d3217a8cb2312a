"""The lineage graph built from the fixtures registry: every metric reaches warehouse columns."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import networkx as nx
import pytest

from lineage.graph import (
    DIRECT,
    FILTERS_BY,
    INDIRECT,
    PINNED_IN,
    LineageError,
    NodeNotFound,
    add_compiled_query,
    add_compute_run,
    add_stored_value,
    build_graph,
    graph_update,
    impact,
    path,
    resolve_node,
    upstream,
    upstream_tree,
)
from semantic.compiler.definition_checks import load_project
from tests.conftest import ROOT


@cache
def fixture_rows() -> tuple[tuple[str, str, Any, str], ...]:
    project = load_project(ROOT / "fixtures")
    assert not project.issues.errors
    return tuple((k, n, o.spec, "1.0") for (k, n), o in project.objects.items())


@pytest.fixture(scope="module")
def graph() -> nx.MultiDiGraph:
    return build_graph(fixture_rows(), release="r1")


def _snapshot(g: nx.MultiDiGraph) -> tuple[dict[str, Any], dict[Any, Any]]:
    return (
        {n: dict(d) for n, d in g.nodes(data=True)},
        {(u, v, k): dict(d) for u, v, k, d in g.edges(keys=True, data=True)},
    )


def test_every_fixture_metric_reaches_a_demo_warehouse_column(graph: nx.MultiDiGraph) -> None:
    """Lineage of every fixture metric ends in columns of the demo warehouse tables."""
    metrics = [n for n, d in graph.nodes(data=True) if d["kind"] == "metric"]
    assert len(metrics) == 67
    tables = {"accounts", "users", "events", "subscriptions", "invoices", "tally_time_spine"}
    for metric in metrics:
        columns = {n for n in upstream(graph, metric) if graph.nodes[n]["kind"] == "column"}
        assert columns, metric
        assert {c.split(".")[1] for c in columns} <= tables, metric


def test_simple_metric_upstream_tree_shows_expression_filter_and_contract(
    graph: nx.MultiDiGraph,
) -> None:
    """revenue ← sum(amount) where status = 'paid' ← contract column ← warehouse column."""
    text = "\n".join(upstream_tree(graph, "metric:revenue@1.0").lines())
    assert text.splitlines()[0].startswith("metric revenue  = invoice_amount where")
    assert "← [derives_from] measure invoices.invoice_amount  = sum(amount)" in text
    assert "← [derives_from] column main.invoices.amount" in text
    assert "← [filters_by, indirect] dimension invoices.status" in text


def test_filter_edges_are_indirect_and_value_edges_direct(graph: nx.MultiDiGraph) -> None:
    """OpenLineage marking: the filtered column is indirect, the summed column direct."""
    into = {u: d for u, _, d in graph.in_edges("metric:revenue@1.0", data=True)}
    assert into["dimension:invoices.status"]["type"] == FILTERS_BY
    assert into["dimension:invoices.status"]["subtype"] == INDIRECT
    assert into["measure:invoices.invoice_amount"]["subtype"] == DIRECT


def test_impact_of_events_revenue_lists_metrics_owners_and_release(
    graph: nx.MultiDiGraph,
) -> None:
    """`tally impact events.revenue` names every metric that reads it and who owns them."""
    result = impact(graph, resolve_node(graph, "events.revenue"))
    assert "metric:tracked_revenue@1.0" in result.metrics
    assert result.owners == ("product-analytics",)
    assert result.releases == ("release:r1",)


def test_derived_metric_reaches_the_metrics_it_reads(graph: nx.MultiDiGraph) -> None:
    """A derived metric version derives from the versions of its input metrics."""
    assert "metric:revenue@1.0" in upstream(graph, "metric:revenue_growth_mom@1.0")


def test_resolve_node_accepts_short_forms_and_suggests_on_typos(graph: nx.MultiDiGraph) -> None:
    """Bare metric names, metric:name and table.column resolve; a typo gets did-you-mean."""
    assert resolve_node(graph, "revenue") == "metric:revenue@1.0"
    assert resolve_node(graph, "metric:revenue") == "metric:revenue@1.0"
    assert resolve_node(graph, "invoices.amount") == "column:main.invoices.amount"
    with pytest.raises(NodeNotFound) as err:
        resolve_node(graph, "metric:revenu")
    assert err.value.code == "unknown_node"
    assert "metric:revenue@1.0" in (err.value.hint or "")


def test_path_runs_from_column_to_metric_in_either_order(graph: nx.MultiDiGraph) -> None:
    """path(A, B) follows data flow whichever end is given first."""
    hops = path(graph, "metric:revenue@1.0", "column:main.invoices.amount")
    assert hops[0].node == "column:main.invoices.amount"
    assert hops[-1].node == "metric:revenue@1.0"
    with pytest.raises(LineageError) as err:
        path(graph, "column:main.invoices.amount", "column:main.events.revenue")
    assert err.value.code == "no_path"


def test_release_pins_every_metric_version(graph: nx.MultiDiGraph) -> None:
    pinned = [u for u, _, d in graph.in_edges("release:r1", data=True) if d["type"] == PINNED_IN]
    assert len(pinned) == 67


def _bump(rows: Any, kind: str, name: str, change: Any) -> list[Any]:
    out = []
    for k, n, spec, version in rows:
        if (k, n) == (kind, name):
            spec = copy.deepcopy(spec)
            change(spec)
            version = "2.0"
        out.append((k, n, spec, version))
    return out


@pytest.mark.parametrize(
    ("kind", "name", "change"),
    [
        (
            "metric",
            "revenue",
            lambda s: s.update(filter="{{ Dimension('invoice__status') }} = 'x'"),
        ),
        (
            "semantic_model",
            "events",
            lambda s: s["measures"].__setitem__(
                0, {**s["measures"][0], "expr": "CASE WHEN event_id IS NULL THEN 0 ELSE 1 END"}
            ),
        ),
        (
            "contract",
            "invoices",
            lambda s: s["schema"][0]["properties"].pop(),
        ),
    ],
    ids=["metric", "semantic_model", "contract"],
)
def test_incremental_update_equals_full_rebuild(kind: str, name: str, change: Any) -> None:
    """graph_update of r1's graph after one change gives exactly build_graph of r2."""
    new_rows = _bump(fixture_rows(), kind, name, change)
    incremental = graph_update(build_graph(fixture_rows(), release="r1"), new_rows, release="r2")
    full = build_graph(new_rows, release="r2")
    assert _snapshot(incremental) == _snapshot(full)


def test_compute_runs_and_values_chain_below_compiled_queries(graph: nx.MultiDiGraph) -> None:
    """The node types issue #7 fills in: metric → compiled query → run → value."""
    g = graph.copy()
    query = add_compiled_query(g, sql="SELECT 1", metrics=["metric:revenue@1.0"], release="r1")
    value = add_stored_value(g, value_id=7, run=add_compute_run(g, run_id=3, compiled_query=query))
    assert "column:main.invoices.amount" in upstream(g, value)
    assert value in impact(g, "column:main.invoices.amount").nodes


def test_graph_exports_as_json_and_graphml(graph: nx.MultiDiGraph, tmp_path: Any) -> None:
    """Both exports hold every node and edge; GraphML reads back with networkx."""
    from lineage.graph import graph_to_json, write_graphml

    data = graph_to_json(graph)
    assert len(data["nodes"]) == graph.number_of_nodes()
    assert len(data["edges"]) == graph.number_of_edges()
    write_graphml(graph, tmp_path / "g.graphml")
    back = nx.read_graphml(tmp_path / "g.graphml", force_multigraph=True)
    assert back.number_of_edges() == graph.number_of_edges()


def test_upstream_tree_of_a_deep_diamond_stays_bounded() -> None:
    """Derived metrics over shared inputs (a diamond per level) do not blow the tree up."""
    g = nx.MultiDiGraph()
    for level in range(30):
        for side in ("a", "b"):
            g.add_node(f"metric:{side}{level}@1.0", kind="metric", label=f"{side}{level}")
            if level:
                for parent in ("a", "b"):
                    g.add_edge(f"metric:{parent}{level - 1}@1.0", f"metric:{side}{level}@1.0",
                               type="derives_from", subtype="direct")  # fmt: skip

    def count(hop: Any) -> int:
        return 1 + sum(count(c) for c in hop.children)

    assert count(upstream_tree(g, "metric:a29@1.0", max_depth=40, max_hops=500)) <= 1_000


def test_metric_time_in_a_filter_reads_the_measure_time_dimension() -> None:
    """`{{ TimeDimension('metric_time', 'day') }}` filters on the measure's agg time column."""
    rows = [
        ("semantic_model", "e", {"name": "e", "model": "ref('events')",
         "defaults": {"agg_time_dimension": "ts"},
         "dimensions": [{"name": "ts", "type": "time", "type_params": {"time_granularity": "day"}}],
         "measures": [{"name": "rev", "agg": "sum", "expr": "revenue"}]}, "1.0"),
        ("metric", "recent", {"name": "recent", "type": "simple", "type_params": {"measure": "rev"},
         "filter": "{{ TimeDimension('metric_time', 'day') }} >= '2026-01-01'"}, "1.0"),
    ]  # fmt: skip
    g = build_graph(rows)
    into = {(u, d["type"]) for u, _, d in g.in_edges("metric:recent@1.0", data=True)}
    assert ("dimension:e.ts", FILTERS_BY) in into
