"""Issue #8's end to end through the API: two tenants' tokens query the same metric and each
sees only its own accounts (a token bound to no tenant sees nothing); an analyst sees
pseudonymised emails and may not filter on them. (The trace drill-down under row policies is
tested in tests/semantic/compiler/test_row_policies.py.)"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.conf import settings as django_settings
from django.test import Client

from registry.services.access import access_profile_set, role_grant, token_create
from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.connections import duckdb_user_connect
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def warehouse(settings: Any, warehouse_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    # Tally's own kind of connection: a query never shares an unrestricted DuckDB instance.
    con = duckdb_user_connect(str(warehouse_path), read_only=True)
    yield con
    con.close()


def _tenants(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT a.tenant_id FROM invoices AS i JOIN accounts AS a ON a.id = i.account_id "
        "WHERE i.status = 'paid' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
    ).fetchall()
    return [row[0] for row in rows]


def _query(client: Client, token: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/api/v1/query", body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip


def test_two_tenants_tokens_see_only_their_own_accounts(
    client: Client, warehouse: duckdb.DuckDBPyConnection
) -> None:
    tenants = _tenants(warehouse)
    body = {"metrics": ["revenue"], "group_by": ["account__tenant_id", "account__plan"]}
    seen = {}
    for tenant in tenants:
        token = token_create(acting_user=None, service=f"bi-{tenant}", scopes="query",
                             tenant=tenant)  # fmt: skip
        response = _query(client, token.raw, body)
        assert response.status_code == 200, response.content
        answer = response.json()
        rows = [dict(zip(answer["columns"], row, strict=True)) for row in answer["rows"]]
        assert rows and {row["account__tenant_id"] for row in rows} == {tenant}
        expected = warehouse.execute(
            "SELECT a.plan, SUM(i.amount) FROM invoices AS i JOIN accounts AS a "
            "ON a.id = i.account_id WHERE i.status = 'paid' AND a.tenant_id = ? GROUP BY 1",
            [tenant],
        ).fetchall()
        assert sorted((row["account__plan"], float(row["revenue"])) for row in rows) == sorted(
            (plan, float(total)) for plan, total in expected
        )
        seen[tenant] = rows
    assert seen[tenants[0]] != seen[tenants[1]]

    # A token bound to no tenant gets nothing, not everything.
    unbound = token_create(acting_user=None, service="bi-unbound", scopes="query")
    response = _query(client, unbound.raw, body)
    assert response.status_code == 200 and response.json()["rows"] == []


def test_an_analyst_sees_pseudonymised_emails(
    client: Client, django_user_model: Any, warehouse: duckdb.DuckDBPyConnection
) -> None:
    tenant = _tenants(warehouse)[0]
    analyst = django_user_model.objects.create_user("ana")
    role_grant(user=analyst, role="analyst")
    access_profile_set(user=analyst, attributes={"tenant_id": tenant})
    client.force_login(analyst)
    body = {"metrics": ["signups"], "group_by": ["user__email"], "limit": 50}
    response = client.post("/api/v1/query", body, content_type="application/json")
    assert response.status_code == 200, response.content
    answer = response.json()
    emails = {
        row[0]
        for row in warehouse.execute(
            "SELECT u.email FROM users AS u JOIN accounts AS a ON a.id = u.account_id "
            "WHERE a.tenant_id = ?",
            [tenant],
        ).fetchall()
    }
    pseudonyms = {
        hashlib.md5(f"{django_settings.TALLY_PII_SALT}:{email}".encode()).hexdigest()
        for email in emails
    }
    got = {row[0] for row in answer["rows"]}
    assert got and got <= pseudonyms
    assert not any("@" in str(value) for row in answer["rows"] for value in row)
    assert django_settings.TALLY_PII_SALT not in answer["sql"]
    # A filter on the masked column is refused for her, with a reason.
    body["where"] = ["{{ Dimension('user__email') }} = 'someone@example.com'"]
    refused = client.post("/api/v1/query", body, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "masked_column"
