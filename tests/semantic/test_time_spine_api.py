"""GET/POST /api/v1/time-spine: status for anyone signed in, refresh for staff; bad dates
and reversed ranges are 400 with a field location, a project's own spine is 409."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

URL = "/api/v1/time-spine"


@pytest.fixture
def wh(tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    path = tmp_path / "wh.duckdb"
    shutil.copy(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    settings.TIME_SPINE_START = None
    settings.TIME_SPINE_END = None
    return path


@pytest.fixture
def no_spine(tmp_path: Path, wh: Path) -> None:
    root = tmp_path / "definitions"
    shutil.copytree(ROOT / "fixtures", root, ignore=shutil.ignore_patterns("time_spine.yml"))
    definitions_sync(root=root, acting_user=None)


@pytest.fixture
def staff(sign_in: Any) -> Client:
    # Refreshing a warehouse table is the compute action (governance, admin).
    return sign_in("ops", "governance")  # type: ignore[no-any-return]


@pytest.fixture
def analyst(sign_in: Any) -> Client:
    return sign_in("analyst", "analyst")  # type: ignore[no-any-return]


def post(client: Client, body: dict[str, Any]) -> Any:
    return client.post(URL, body, content_type="application/json")


def test_get_reports_a_missing_spine_and_the_range_a_refresh_would_build(
    no_spine: None, analyst: Client
) -> None:
    """Status works for any signed-in user and writes nothing."""
    response = analyst.get(URL)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["table"] == "main.tally_time_spine" and body["managed"] is True
    assert body["exists"] is False and body["rows"] == 0 and body["covers_data"] is False
    assert body["planned_start"].endswith("-01-01") and body["planned_end"].endswith("-12-31")
    assert body["planned_from"] == "range from data"


def test_post_builds_the_spine_with_the_given_range(no_spine: None, staff: Client) -> None:
    """Staff refresh with explicit days; the answer is the new status."""
    response = post(staff, {"start": "2024-01-01", "end": "2027-12-31"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["exists"], body["start"], body["end"], body["rows"]) == (
        True,
        "2024-01-01",
        "2027-12-31",
        1461,
    )
    assert body["planned_from"] == "range from given"
    assert staff.get(URL).json()["rows"] == 1461


def test_post_needs_staff(no_spine: None, analyst: Client) -> None:
    """Rewriting a warehouse table is not for every reader of metrics."""
    response = post(analyst, {})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "compute" in response.json()["error"]["message"]


@pytest.mark.parametrize("value", ["2024-13-01", "yesterday", "2024-01-01T00:00:00", 20240101])
def test_a_bad_date_is_a_400_naming_the_field(no_spine: None, staff: Client, value: Any) -> None:
    """Never a 500: the serializer refuses it with the field as location."""
    response = post(staff, {"start": value})
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["location"] == "start"


def test_start_after_end_is_a_400_with_its_code(no_spine: None, staff: Client) -> None:
    """A reversed range names both days and points at `end`."""
    response = post(staff, {"start": "2026-01-01", "end": "2025-01-01"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_time_spine_range" and error["location"] == "end"
    assert error["message"] == "the time spine's start 2026-01-01 is after its end 2025-01-01"


def test_a_project_spine_is_reported_and_not_rebuilt(wh: Path, staff: Client) -> None:
    """With the fixtures' dbt time_spine model, GET reports it and POST is a 409."""
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    body = staff.get(URL).json()
    assert (body["table"], body["managed"], body["exists"], body["covers_data"]) == (
        "main.time_spine",
        False,
        True,
        True,
    )
    response = post(staff, {})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "time_spine_owned_by_project"


def test_schema_documents_the_time_spine_endpoint(analyst: Client) -> None:
    """drf-spectacular picks up both methods and the status component."""
    schema = analyst.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operations = schema["paths"]["/api/v1/time-spine"]
    assert {"get", "post"} <= set(operations)
    assert "TimeSpineStatus" in schema["components"]["schemas"]
