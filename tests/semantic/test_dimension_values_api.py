"""GET /api/v1/metrics/{name}/dimensions/{dim}/values (issue #19): values from the real
DuckDB warehouse, searched and limited, under two tenants' tokens (each sees only its own
values), errors as 400 with a code, an audit row per call, and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client

from registry.models import AuditEvent
from registry.services.access import token_create
from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.connections import duckdb_user_connect
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

URL = "/api/v1/metrics/{metric}/dimensions/{dimension}/values"


@pytest.fixture
def warehouse(settings: Any, warehouse_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    con = duckdb_user_connect(str(warehouse_path), read_only=True)
    yield con
    con.close()


def _tenants(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT a.tenant_id FROM invoices AS i JOIN accounts AS a ON a.id = i.account_id "
        "WHERE i.status = 'paid' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
    ).fetchall()
    return [row[0] for row in rows]


def _get(client: Client, token: str, metric: str, dimension: str, **params: Any) -> Any:
    return client.get(
        URL.format(metric=metric, dimension=dimension),
        params,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def test_two_tenants_tokens_see_only_their_own_values(
    client: Client, warehouse: duckdb.DuckDBPyConnection
) -> None:
    """Each tenant's token lists its own tenant id and its own accounts' plans; a token bound
    to no tenant gets no values, not every value."""
    tenants = _tenants(warehouse)
    seen: dict[str, list[Any]] = {}
    for tenant in tenants:
        token = token_create(
            acting_user=None, service=f"bi-{tenant}", scopes="query", tenant=tenant
        )
        response = _get(client, token.raw, "revenue", "account__tenant_id")
        assert response.status_code == 200, response.content
        assert response.json()["values"] == [tenant]
        plans = _get(client, token.raw, "revenue", "account__plan").json()["values"]
        expected = [
            row[0]
            for row in warehouse.execute(
                "SELECT DISTINCT a.plan FROM invoices AS i JOIN accounts AS a "
                "ON a.id = i.account_id WHERE a.tenant_id = ? ORDER BY 1",
                [tenant],
            ).fetchall()
        ]
        assert plans == expected
        accounts = _get(client, token.raw, "revenue", "account", limit=10_000).json()["values"]
        seen[tenant] = accounts
        own = {
            row[0]
            for row in warehouse.execute(
                "SELECT id FROM accounts WHERE tenant_id = ?", [tenant]
            ).fetchall()
        }
        assert accounts and set(accounts) <= own
    assert not set(seen[tenants[0]]) & set(seen[tenants[1]])
    unbound = token_create(acting_user=None, service="bi-unbound", scopes="query")
    response = _get(client, unbound.raw, "revenue", "account__tenant_id")
    assert response.status_code == 200 and response.json()["values"] == []


def test_search_limit_and_truncated(client: Client, warehouse: duckdb.DuckDBPyConnection) -> None:
    """``search`` filters case-insensitively; ``limit`` cuts the list and says so."""
    token = token_create(
        acting_user=None, service="bi-all", scopes="query", tenant=_tenants(warehouse)[0]
    )
    everything = _get(client, token.raw, "revenue", "account__plan").json()
    assert len(everything["values"]) >= 2 and everything["truncated"] is False
    first = everything["values"][0]
    searched = _get(client, token.raw, "revenue", "account__plan", search=first[:2].upper())
    assert first in searched.json()["values"]
    assert all(first[:2].lower() in v.lower() for v in searched.json()["values"])
    cut = _get(client, token.raw, "revenue", "account__plan", limit=1).json()
    assert cut["values"] == [first] and cut["truncated"] is True
    assert cut["release"] == "r1" and cut["versions"] == {"revenue": "1.0"}
    assert AuditEvent.objects.filter(action="query.dimension_values").count() == 3


@pytest.mark.parametrize(
    ("metric", "dimension", "params", "code"),
    [
        ("revenu", "account__plan", {}, "unknown_metric"),
        ("revenue", "account__plann", {}, "unknown_dimension"),
        ("revenue", "account__plan", {"limit": "-1"}, "min_value"),
        ("revenue", "account__plan", {"limit": "many"}, "invalid"),
        ("revenue", "account__plan", {"search": "x" * 201}, "max_length"),
    ],
)
def test_bad_requests_are_400_with_a_code(
    client: Client,
    warehouse: duckdb.DuckDBPyConnection,
    metric: str,
    dimension: str,
    params: dict[str, Any],
    code: str,
) -> None:
    token = token_create(acting_user=None, service="bi-x", scopes="query", tenant="t-1")
    response = _get(client, token.raw, metric, dimension, **params)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == code


def test_the_endpoint_is_in_the_openapi_schema(client: Client, warehouse: Any) -> None:
    token = token_create(acting_user=None, service="bi-schema", scopes="read")
    schema = client.get("/api/schema/?format=json", HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    assert schema.status_code == 200
    operation = schema.json()["paths"]["/api/v1/metrics/{name}/dimensions/{dimension}/values"][
        "get"
    ]
    assert {p["name"] for p in operation["parameters"]} >= {"name", "dimension", "search", "limit"}
