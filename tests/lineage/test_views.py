"""The lineage explorer and impact pages through the Django test client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from registry.models import Release
from registry.services.definitions import definitions_sync
from tests.registry.proposals_setup import write_registry

pytestmark = pytest.mark.django_db


@pytest.fixture
def registry_r1(db: None, tmp_path: Path) -> Release:
    """The small review registry (events model, revenue, events_tracked, a ratio)."""
    result = definitions_sync(root=write_registry(tmp_path / "defs"), acting_user=None)
    assert result.release is not None
    return result.release


@pytest.fixture
def signed_in(client: Client, registry_r1: Release, django_user_model: Any) -> Client:
    client.force_login(django_user_model.objects.create_user("viewer"))
    return client


def test_explorer_without_a_node_explains_what_to_type(signed_in: Client) -> None:
    response = signed_in.get("/lineage")
    assert response.status_code == 200
    assert b"Pick a node to explore" in response.content


def test_explorer_draws_upstream_left_and_downstream_right(signed_in: Client) -> None:
    response = signed_in.get("/lineage?node=revenue&depth=1")
    assert response.status_code == 200
    graph = response.context["graph"]
    assert graph.focus == "metric:revenue@1.0"
    layers = {n.id: n.layer for n in graph.nodes}
    assert layers["measure:events.revenue"] == -1
    assert layers["metric:revenue_per_event@1.0"] == 1
    # Every edge joins two drawn nodes, and nodes link to their pages.
    drawn = set(layers)
    assert all(e.source in drawn and e.target in drawn for e in graph.edges)
    assert b'href="/metrics/revenue_per_event"' in response.content


def test_expanding_a_node_adds_its_neighbours(signed_in: Client) -> None:
    base = signed_in.get("/lineage?node=revenue&depth=1").context["graph"]
    measure = next(n for n in base.nodes if n.id == "measure:events.revenue")
    assert measure.hidden_up > 0
    expanded = signed_in.get(measure.expand_url, headers={"HX-Request": "true"})
    assert expanded.status_code == 200 and b"<html" not in expanded.content
    graph = expanded.context["graph"]
    assert "measure:events.revenue" in graph.expand
    assert len(graph.nodes) == len(base.nodes) + measure.hidden_up


def test_unknown_node_is_a_404_page_with_suggestions(signed_in: Client) -> None:
    response = signed_in.get("/lineage?node=metric:revenu")
    assert response.status_code == 404
    assert b"revenue" in response.content


def test_impact_of_a_column_lists_metrics_owners_and_releases(
    signed_in: Client, registry_r1: Release
) -> None:
    assert b"Name a column or table" in signed_in.get("/lineage/impact").content
    response = signed_in.get("/lineage/impact?node=column:main.events.revenue")
    assert response.status_code == 200
    report = response.context["report"]
    assert "metric:revenue@1.0" in report.impact.metrics
    assert "product-analytics" in report.impact.owners
    assert b'href="/metrics/revenue_per_event"' in response.content


def test_node_box_suggests_nodes_as_you_type(signed_in: Client) -> None:
    response = signed_in.get("/lineage/nodes?node=revenue", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert b'<option value="metric:revenue@1.0">' in response.content
    assert signed_in.get("/lineage/nodes?node=r").content.strip() == b""
