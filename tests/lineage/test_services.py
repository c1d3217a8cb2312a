"""Stored lineage: a publish stores the release's graph, incrementally, equal to a full rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import networkx as nx
import pytest

from lineage.models import LineageBuild, LineageEdge, LineageNode
from lineage.selectors import lineage_impact, lineage_upstream
from lineage.services import graphs, lineage_rebuild, lineage_sql_import, lineage_update, load_graph
from lineage.sql_lineage import SqlModel
from registry.models import Release
from registry.services.definitions import definitions_sync
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_graph_cache() -> Any:
    graphs.clear()
    yield
    graphs.clear()


def _snapshot(g: nx.MultiDiGraph) -> tuple[dict[str, Any], set[Any]]:
    return (
        {n: d.get("kind") for n, d in g.nodes(data=True)},
        {
            (u, v, k, d["type"], d["subtype"], d["expr"])
            for u, v, k, d in g.edges(keys=True, data=True)
        },
    )


def _edit(root: Path, file: str, old: str, new: str) -> None:
    path = root / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", root)
    return root


def test_publish_stores_the_release_graph(
    folder: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """Syncing fixtures publishes r1; the on-commit hook stores its lineage rows."""
    with django_capture_on_commit_callbacks(execute=True):
        definitions_sync(root=folder, acting_user=None)
    build = LineageBuild.objects.get()
    assert build.release_number == 1 and build.mode == "full"
    assert LineageNode.objects.filter(kind="metric", valid_to__isnull=True).count() == 67
    assert LineageEdge.objects.filter(type="filters_by").exists()


def test_incremental_update_stores_the_same_graph_as_a_full_rebuild(
    folder: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """After one changed metric, r2's stored graph (incremental) equals a fresh build of r2,
    and r1's graph is still readable from the ranges."""
    with django_capture_on_commit_callbacks(execute=True):
        definitions_sync(root=folder, acting_user=None)
    r1_graph = load_graph(Release.objects.get(number=1))
    _edit(folder, "metrics/revenue.yml", "= 'paid'", "IN ('paid', 'refunded')")
    with django_capture_on_commit_callbacks(execute=True):
        definitions_sync(root=folder, acting_user=None)
    r2 = Release.objects.get(number=2)
    build = LineageBuild.objects.get(release_number=2)
    assert build.mode == "incremental"
    graphs.clear()
    stored = load_graph(r2)
    assert "metric:revenue@2.0" in stored and "metric:revenue@1.0" not in stored
    from lineage.graph import build_graph
    from lineage.services import release_rows

    assert _snapshot(stored) == _snapshot(build_graph(release_rows(r2), release="r2"))
    assert _snapshot(load_graph(Release.objects.get(number=1))) == _snapshot(r1_graph)


def test_rebuild_of_a_stored_release_changes_nothing(folder: Path) -> None:
    """lineage_rebuild is idempotent: a second run closes and inserts no row."""
    definitions_sync(root=folder, acting_user=None)
    release = Release.objects.get(number=1)
    first = lineage_rebuild(release=release).build
    assert first.nodes_changed > 0
    again = lineage_update(release=release).build  # parent None → full rebuild
    assert (again.nodes_changed, again.edges_changed) == (0, 0)


def test_impact_lists_pinning_releases_and_upstream_reaches_imported_sql(folder: Path) -> None:
    """Impact of events.revenue names the metric, its owner and the releases pinning it; SQL
    lineage imported below the warehouse table extends the upstream tree to raw columns."""
    definitions_sync(root=folder, acting_user=None)
    lineage_rebuild(release=Release.objects.get(number=1))
    lineage_sql_import(
        models=[
            SqlModel(
                "events",
                "SELECT id AS event_id, amount_cents / 100.0 AS revenue FROM raw.events WHERE kind = 'x'",
            )
        ],
        dialect="duckdb",
    )
    report = lineage_impact(node="events.revenue")
    assert "metric:tracked_revenue@1.0" in report.impact.metrics
    assert report.metric_releases["metric:tracked_revenue@1.0"] == ["r1"]
    assert "product-analytics" in report.impact.owners
    text = "\n".join(lineage_upstream(node="tracked_revenue").lines())
    assert "column raw.events.amount_cents" in text
    assert "column raw.events.kind" in text
