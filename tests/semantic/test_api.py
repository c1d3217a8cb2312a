"""POST /api/v1/compile and /api/v1/query, GET /api/v1/metrics/{name}/dimensions: real
registry (fixtures synced), real DuckDB warehouse, errors as 400 with a code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from registry.models import AuditEvent
from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(sign_in: Any, settings: Settings, warehouse_path: Path) -> Client:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    # Governance reads every tenant's rows (row policies bind analysts to their tenant), so
    # answers compare with hand-written SQL over the whole warehouse.
    return sign_in("analyst", "analyst", "governance")  # type: ignore[no-any-return]


def post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, body, content_type="application/json")


def test_compile_returns_sql_release_and_versions(api: Client) -> None:
    """The compile endpoint answers with SQL for the asked dialect and the versions used."""
    response = post(
        api,
        "/api/v1/compile",
        {"metrics": ["revenue"], "group_by": ["metric_time__month"], "dialect": "snowflake"},
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["release"] == "r1" and body["versions"] == {"revenue": "1.0"}
    assert body["dialect"] == "snowflake" and "DATE_TRUNC('MONTH'" in body["sql"]


def test_query_returns_rows_equal_to_hand_written_sql(api: Client, warehouse_path: Path) -> None:
    """Rows from /query equal a direct SQL over the warehouse (revenue = paid invoices)."""
    response = post(
        api,
        "/api/v1/query",
        {
            "metrics": ["revenue", "active_accounts"],
            "group_by": ["metric_time__month", "account__plan"],
            "where": ["{{ Dimension('account__plan') }} = 'pro'"],
            "order_by": ["metric_time__month"],
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["columns"] == ["metric_time__month", "account__plan", "revenue", "active_accounts"]
    con = duckdb.connect(str(warehouse_path), read_only=True)
    expected = dict(
        con.execute(
            "SELECT strftime(date_trunc('month', i.issued_at), '%Y-%m-%dT%H:%M:%S'), sum(i.amount) "
            "FROM invoices i JOIN accounts a ON a.id = i.account_id "
            "WHERE a.plan = 'pro' AND i.status = 'paid' GROUP BY 1"
        ).fetchall()
    )
    con.close()
    got = {row[0]: row[2] for row in body["rows"] if row[2] is not None}
    assert got.keys() == expected.keys()
    for month, value in got.items():
        assert value == pytest.approx(float(expected[month]))


def test_dimensions_endpoint_lists_group_by_items(api: Client) -> None:
    """What a metric can be grouped by, including multi-hop names."""
    body = api.get("/api/v1/metrics/events_tracked/dimensions").json()
    assert {"metric_time__month", "account__plan", "user__account__region"} <= set(body["group_by"])


def test_saved_query_runs_through_the_api(api: Client) -> None:
    """A saved query from the YAML runs by name."""
    response = post(api, "/api/v1/query", {"saved_query": "monthly_revenue_by_plan"})
    assert response.status_code == 200, response.json()
    assert response.json()["rows"]


def test_metric_filter_query_runs_through_the_api(api: Client) -> None:
    """A where on {{ Metric(...) }} compiles and runs end to end (200, rows)."""
    response = post(
        api,
        "/api/v1/query",
        {
            "metrics": ["events_tracked"],
            "group_by": ["account__plan"],
            "where": ["{{ Metric('revenue', group_by=['account']) }} > 5000"],
        },
    )
    assert response.status_code == 200, response.content
    assert response.json()["rows"]
    assert "filter_revenue_by_account" in response.json()["sql"]


def test_having_query_runs_through_the_api(api: Client) -> None:
    """having filters the aggregated rows (rows of the unfiltered answer that pass); a bad
    item is a 400 naming having[i] and the name, never a 500."""
    body = {"metrics": ["revenue"], "group_by": ["account__plan"]}
    plain = post(api, "/api/v1/query", body).json()["rows"]
    response = post(api, "/api/v1/query", {**body, "having": ["revenue > 100000"]})
    assert response.status_code == 200, response.content
    expected = [row for row in plain if row[1] is not None and float(row[1]) > 100000]
    assert expected and len(expected) < len(plain)
    assert sorted(response.json()["rows"]) == sorted(expected)
    audited = AuditEvent.objects.filter(action="query.run").latest("id")
    assert audited.payload["having"] == ["revenue > 100000"]
    for having, location, named in (
        (["revenue > 1", "new_accounts > 1"], "having[1]:0-12", "'new_accounts'"),
        (["revenue > (SELECT 1)"], "having[0]:11-17", "subqueries"),
    ):
        refused = post(api, "/api/v1/query", {**body, "having": having})
        assert refused.status_code == 400, refused.content
        error = refused.json()["error"]
        assert (error["code"], error["location"]) == ("bad_having", location)
        assert named in error["message"]
    assert post(api, "/api/v1/query", {**body, "having": ["x" * 10_001]}).status_code == 400


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"metrics": ["revenu"]}, "unknown_metric"),
        ({"metrics": ["revenue"], "group_by": ["account__plann"]}, "unknown_dimension"),
        ({"metrics": ["revenue"], "where": ["1=1; DROP TABLE events"]}, "bad_where"),
        (
            {"metrics": ["revenue"], "where": ["{{ Dimension('account__plan') }} IN (SELECT 1)"]},
            "bad_where",
        ),
        ({"metrics": ["revenue"], "where": ["account_id = 1 -- comment"]}, "bad_where"),
        ({"metrics": ["revenue"], "where": ["{{ Dimension('account__plan'"]}, "bad_where"),
        (
            {"metrics": ["revenue"], "where": ["{{ Metric('revenu', group_by=['account']) }} > 1"]},
            "unknown_metric",
        ),
        (
            {"metrics": ["revenue"], "where": ["{{ Metric('revenue', group_by=['user']) }} > 1"]},
            "unreachable_dimension",
        ),
        ({"metrics": ["revenue"], "dialect": "oracle"}, "invalid_choice"),
        ({"metrics": ["revenue"], "limit": -1}, "min_value"),
        ({"metrics": ["revenue"], "limit": 10**12}, "max_value"),
        (
            {"metrics": ["revenue"], "start_time": "2026-02-01", "end_time": "2026-01-01"},
            "bad_time_range",
        ),
        ({"saved_query": "nope"}, "unknown_saved_query"),
        ({"metrics": ["revenue"], "release": "r99"}, "unknown_release"),
    ],
)
def test_bad_requests_are_400_with_a_code_never_500(
    api: Client, body: dict[str, Any], code: str
) -> None:
    """Every bad input is a 4xx with the error envelope and a precise code."""
    response = post(api, "/api/v1/query", body)
    assert 400 <= response.status_code < 500, response.content
    error = response.json()["error"]
    assert error["code"] == code or code in str(error["details"]), error
