"""Date parts, the fiscal calendar and sub-daily grains through the HTTP API (issue 17):
answers with MetricFlow's column names, and each bad time item a 400 with its code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(sign_in: Any, settings: Settings, warehouse_path: Path) -> Client:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    return sign_in("analyst", "analyst", "governance")  # type: ignore[no-any-return]


def post(client: Client, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/query", body, content_type="application/json")


def test_date_part_and_fiscal_quarter_query(api: Client) -> None:
    """Both date part spellings and a custom grain answer with MetricFlow's column names."""
    response = post(
        api,
        {
            "metrics": ["revenue"],
            "group_by": [
                "metric_time__fiscal_quarter",
                "TimeDimension('metric_time', date_part_name='dow')",
            ],
            "where": ["{{ TimeDimension('metric_time', date_part_name='year') }} >= 2025"],
            "order_by": ["metric_time__fiscal_quarter", "-metric_time__extract_dow"],
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["columns"] == ["metric_time__extract_dow", "metric_time__fiscal_quarter", "revenue"]
    assert {row[0] for row in body["rows"]} <= {1, 2, 3, 4, 5, 6, 7}
    assert {row[1][5:7] for row in body["rows"]} <= {"02", "05", "08", "11"}


@pytest.mark.parametrize(
    ("group_by", "code"),
    [
        ("metric_time__extract_weekday", "unknown_date_part"),
        ("metric_time__fiscal_week", "unknown_grain"),
        ("metric_time__hour", "grain_too_fine"),
    ],
)
def test_bad_time_items_are_400_with_a_code(api: Client, group_by: str, code: str) -> None:
    """A date part that does not exist, a custom grain the spine lacks, an hour on day data."""
    response = post(api, {"metrics": ["revenue"], "group_by": [group_by]})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["hint"], error
