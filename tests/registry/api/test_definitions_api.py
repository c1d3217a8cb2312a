"""Registry read API: list/search/filter with pagination, detail, versions, diffs, releases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from registry.services.definitions import definitions_sync
from tests.registry.defs import CONTRACT_YAML, METRICS_YAML, SEMANTIC_MODEL_YAML, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def synced(tmp_path: Path) -> Path:
    folder = write(
        tmp_path / "defs",
        {
            "semantic_models/events.yml": SEMANTIC_MODEL_YAML,
            "metrics/product.yml": METRICS_YAML,
            "contracts/events.odcs.yaml": CONTRACT_YAML,
        },
    )
    definitions_sync(root=folder, acting_user=None)
    return folder


@pytest.fixture
def viewer_client(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("charlie", password="pw-charlie-123")
    client.force_login(user)
    return client


def test_list_requires_sign_in(client: Client, synced: Path) -> None:
    """Anonymous callers get 401 (with a Bearer challenge) and the error envelope."""
    response = client.get("/api/v1/metrics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_list_metrics_is_paginated_and_has_governance_fields(
    viewer_client: Client, synced: Path, django_assert_num_queries: Any
) -> None:
    """Two queries per page (count + rows) whatever the page size."""
    # session + user + role grants + teams (access check) + count + page
    with django_assert_num_queries(6):
        response = viewer_client.get("/api/v1/metrics?limit=1")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and len(body["results"]) == 1 and body["next"]
    first = body["results"][0]
    assert first["name"] == "events_tracked"
    assert (first["owner"], first["type"], first["version"], first["status"]) == (
        "product-analytics",
        "simple",
        "1.0",
        "active",
    )


def test_search_matches_name_label_and_description(viewer_client: Client, synced: Path) -> None:
    """q searches name, label and description, case-insensitively."""
    names = [r["name"] for r in viewer_client.get("/api/v1/metrics?q=REVENUE").json()["results"]]
    assert names == ["revenue"]


def test_filters_by_owner_domain_tier_status(viewer_client: Client, synced: Path) -> None:
    """Facet filters combine."""
    got = viewer_client.get("/api/v1/metrics?owner=product-analytics&tier=standard&domain=product")
    assert [r["name"] for r in got.json()["results"]] == ["revenue"]
    assert viewer_client.get("/api/v1/metrics?status=retired").json()["count"] == 0


def test_bad_filter_value_is_400_with_field_location(viewer_client: Client, synced: Path) -> None:
    """An unknown tier is a 400 naming the field, never a 500."""
    response = viewer_client.get("/api/v1/metrics?tier=gold")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["location"]) == ("invalid_choice", "tier")
    assert error["message"] == 'tier: "gold" is not a valid choice.'


def test_detail_has_spec_and_version_history(viewer_client: Client, synced: Path) -> None:
    """Detail shows the current spec and every version."""
    body = viewer_client.get("/api/v1/semantic-models/events").json()
    assert body["spec"]["model"] == "ref('events')"
    assert [v["version"] for v in body["versions"]] == ["1.0"]


def test_unknown_metric_is_404_with_suggestion(viewer_client: Client, synced: Path) -> None:
    """A misspelt name gets a 404 with did-you-mean."""
    response = viewer_client.get("/api/v1/metrics/revenu")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_metric"
    assert error["hint"] == "did you mean 'revenue'?"


def test_diff_between_versions_is_structured(viewer_client: Client, synced: Path) -> None:
    """The diff endpoint returns changed paths, old and new values, and the bump level."""
    write(
        synced, {"semantic_models/events.yml": SEMANTIC_MODEL_YAML.replace("agg: sum", "agg: max")}
    )
    definitions_sync(root=synced, acting_user=None)
    body = viewer_client.get(
        "/api/v1/semantic-models/events/diff?from_version=1.0&to_version=2.0"
    ).json()
    assert body["level"] == "major"
    assert body["changes"] == [
        {"path": "measures[revenue].agg", "op": "changed", "old": "sum", "new": "max"}
    ]
    default = viewer_client.get("/api/v1/semantic-models/events/diff").json()
    assert (default["from_version"], default["to_version"]) == ("1.0", "2.0")
    version = viewer_client.get("/api/v1/semantic-models/events/versions/1.0").json()
    assert version["spec"]["measures"][0]["agg"] == "sum"


def test_releases_list_and_pin_versions(viewer_client: Client, synced: Path) -> None:
    """Releases list newest first; a release shows the version of each definition it pins."""
    listed = viewer_client.get("/api/v1/releases").json()
    assert [r["name"] for r in listed["results"]] == ["r1"]
    detail = viewer_client.get("/api/v1/releases/latest").json()
    assert detail["versions"]["metric"] == {"events_tracked": "1.0", "revenue": "1.0"}
    assert viewer_client.get("/api/v1/releases/r9").json()["error"]["code"] == "unknown_release"


def test_openapi_schema_lists_registry_endpoints(client: Client) -> None:
    """drf-spectacular documents the registry API."""
    schema = client.get("/api/schema/?format=json").json()
    assert set(schema["paths"]) >= {
        "/api/v1/{collection}",
        "/api/v1/{collection}/{name}",
        "/api/v1/{collection}/{name}/diff",
        "/api/v1/{collection}/{name}/versions/{version}",
        "/api/v1/releases",
        "/api/v1/releases/{ref}",
    }
