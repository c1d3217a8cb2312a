"""GET /api/v1/lineage/*: upstream, downstream (impact), path, nodes, OpenLineage; bad ids are
404/400 with a code and a did-you-mean hint, never 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from lineage.services import graphs
from registry.services.definitions import definitions_sync
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client, django_user_model: Any) -> Client:
    graphs.clear()
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    client.force_login(django_user_model.objects.create_user("auditor"))
    return client


def test_upstream_returns_the_tree_with_expressions(api: Client) -> None:
    response = api.get("/api/v1/lineage/upstream", {"node": "metric:revenue"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["node"] == "metric:revenue@1.0" and body["kind"] == "metric"
    measure = next(h for h in body["upstream"] if h["kind"] == "measure")
    assert measure["expr"] == "sum(amount)" and measure["edge"] == "derives_from"


def test_downstream_lists_metrics_owners_and_pinning_releases(api: Client) -> None:
    response = api.get("/api/v1/lineage/downstream", {"node": "invoices.amount"})
    assert response.status_code == 200
    body = response.json()
    assert "metric:revenue@1.0" in body["metrics"]
    assert "finance-data" in body["owners"]
    assert body["release"] == "r1"


def test_path_and_nodes(api: Client) -> None:
    response = api.get(
        "/api/v1/lineage/path", {"source": "invoices.amount", "target": "metric:revenue"}
    )
    assert response.status_code == 200
    assert [h["node"] for h in response.json()["path"]][-1] == "metric:revenue@1.0"
    nodes = api.get("/api/v1/lineage/nodes", {"q": "invoices.", "kind": "column"}).json()["nodes"]
    assert "column:main.invoices.amount" in [n["id"] for n in nodes]


def test_openlineage_facet_marks_direct_and_indirect_inputs(api: Client) -> None:
    body = api.get("/api/v1/lineage/openlineage", {"node": "metric:revenue"}).json()
    inputs = body["facets"]["columnLineage"]["fields"]["revenue"]["inputFields"]
    kinds = {(i["name"], i["field"]): i["transformations"][0]["type"] for i in inputs}
    assert kinds[("main.invoices", "amount")] == "DIRECT"
    assert kinds[("main.invoices", "status")] == "INDIRECT"


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/api/v1/lineage/upstream", {"node": "metric:revenu"}, 404, "unknown_node"),
        ("/api/v1/lineage/downstream", {"node": "nope.nope"}, 404, "unknown_node"),
        ("/api/v1/lineage/upstream", {}, 400, "required"),
        ("/api/v1/lineage/upstream", {"node": "revenue", "release": "r99"}, 404, "unknown_release"),
        (
            "/api/v1/lineage/path",
            {"source": "invoices.amount", "target": "events.revenue"},
            400,
            "no_path",
        ),
        ("/api/v1/lineage/upstream", {"node": "revenue", "depth": "0"}, 400, "min_value"),
        ("/api/v1/lineage/nodes", {"kind": "planet"}, 400, "invalid_choice"),
    ],
)
def test_bad_requests_are_user_errors_with_codes(
    api: Client, path: str, params: dict[str, str], status: int, code: str
) -> None:
    response = api.get(path, params)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code


def test_unknown_node_hint_suggests_the_closest_ids(api: Client) -> None:
    error = api.get("/api/v1/lineage/upstream", {"node": "metric:revenu"}).json()["error"]
    assert "metric:revenue@1.0" in error["hint"]


def test_openapi_schema_lists_lineage_endpoints(client: Client) -> None:
    """drf-spectacular documents the lineage API."""
    schema = client.get("/api/schema/?format=json").json()
    assert set(schema["paths"]) >= {
        "/api/v1/lineage/upstream",
        "/api/v1/lineage/downstream",
        "/api/v1/lineage/path",
        "/api/v1/lineage/nodes",
        "/api/v1/lineage/openlineage",
    }
    params = {p["name"] for p in schema["paths"]["/api/v1/lineage/upstream"]["get"]["parameters"]}
    assert {"node", "release", "depth"} <= params


def test_influences_lists_every_upstream_column_as_one_set(api: Client) -> None:
    """Issue #21: "every column that influenced this one", direct and indirect or direct only."""
    from lineage.services import lineage_sql_import
    from lineage.sql_lineage import dbt_schema, models_from_dbt_manifest

    manifest = ROOT / "tests" / "lineage" / "data" / "dbt_shop" / "manifest.json"
    lineage_sql_import(
        models=models_from_dbt_manifest(manifest), dialect="duckdb", schema=dbt_schema(manifest)
    )
    node = "shop.main.orders.order_items_subtotal"
    body = api.get("/api/v1/lineage/influences", {"node": node}).json()
    assert "column:shop.raw.raw_products.price" in body["columns"]
    assert "column:shop.raw.raw_items.sku" in body["columns"]
    direct = api.get("/api/v1/lineage/influences", {"node": node, "direct_only": "true"}).json()
    assert "column:shop.raw.raw_items.sku" not in direct["columns"]
    missing = api.get("/api/v1/lineage/influences", {"node": "shop.main.orders.nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_node"
