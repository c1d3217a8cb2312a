"""Issue 18, High 1: pinning an old release must not drop later protections.

Release r1 has no row policy and no PII classification; r2 adds the tenant policy on
``account`` and ``classification: pii`` on ``users.email``. A tenant-bound token that pins
``"release": "r1"`` must still get only its tenant's rows and pseudonymised emails: security
comes from the current release too (r1's metric definitions, the stricter union of r1's and
r2's policies and masks).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client

from registry.services.access import token_create
from registry.services.definitions import definitions_sync
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.permissions import stored_values_allowed
from semantic.services import compile_metric_query, release_resolve
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.connections import duckdb_user_connect
from tally.errors import QueryError
from tests.conftest import ROOT, demo_warehouse_at

pytestmark = pytest.mark.django_db

POLICY_LINES = (
    "          row_policies:\n"
    "            - entity: account\n"
    "              # {% raw %}: dbt renders Jinja in config.meta; Tally reads the text inside.\n"
    "              filter: \"{% raw %}{{ Dimension('account__tenant_id') }} = "
    '{{ principal.tenant_id }}{% endraw %}"\n'
)


def _unprotected_copy(target: Path) -> Path:
    """fixtures/ without the tenant policy and without the PII flag on users.email."""
    shutil.copytree(ROOT / "fixtures", target)
    accounts = target / "semantic_models" / "accounts.yml"
    text = accounts.read_text()
    assert POLICY_LINES in text
    accounts.write_text(text.replace(POLICY_LINES, "          row_policies: []\n"))
    users = target / "contracts" / "users.odcs.yaml"
    text = users.read_text()
    flagged = "        required: true\n        classification: pii\n        tags: [pii]\n"
    assert flagged in text
    users.write_text(text.replace(flagged, "        required: true\n", 1))
    return target


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pinned") / "demo.duckdb"
    demo_warehouse_at(path, events=3_000, seed=7)
    return path


@pytest.fixture
def releases(
    settings: Any, warehouse_path: Path, tmp_path: Path
) -> Iterator[duckdb.DuckDBPyConnection]:
    """r1: unprotected fixtures; r2 (current): fixtures with the policy and the PII flag."""
    definitions_sync(root=_unprotected_copy(tmp_path / "r1"), acting_user=None)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    assert release_resolve(None).name == "r2"
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    con = duckdb_user_connect(str(warehouse_path), read_only=True)
    yield con
    con.close()


def _tenant(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_r1_pinned_query_of_a_tenant_token_applies_r2_row_policy_and_pii_mask(
    client: Client, releases: duckdb.DuckDBPyConnection
) -> None:
    """A t-bound token pinning r1 read every tenant's rows and raw emails (r1 had neither
    the policy nor the PII flag); it now gets its own tenant's rows and pseudonyms."""
    tenant = _tenant(releases)
    token = token_create(acting_user=None, service=f"bi-{tenant}", scopes="query", tenant=tenant)
    body = {
        "metrics": ["signups"],
        "group_by": ["account__tenant_id", "user__email"],
        "release": "r1",
        "limit": 10_000,
    }
    response = client.post(
        "/api/v1/query", body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token.raw}",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    answer = response.json()
    assert answer["release"] == "r1"
    rows = [dict(zip(answer["columns"], row, strict=True)) for row in answer["rows"]]
    assert rows, "the tenant has signups"
    assert {row["account__tenant_id"] for row in rows} == {tenant}
    assert not any("@" in str(row["user__email"]) for row in rows)


def test_r1_pinned_filter_on_an_email_classified_pii_in_r2_is_refused(
    releases: duckdb.DuckDBPyConnection,
) -> None:
    """The masks of the current release apply to a pinned query's filters too: comparing an
    email classified PII in r2 is refused for a principal without view_pii."""
    tenant = _tenant(releases)
    query = MetricQuery(
        metrics=("signups",), where=("{{ Dimension('user__email') }} = 'a@example.com'",)
    )
    with pytest.raises(QueryError) as refused:
        compile_metric_query(
            query=query, release_ref="r1", principal=Principal("u", {"tenant_id": tenant})
        )
    assert refused.value.code == "masked_column"


def test_r1_pinned_compile_carries_the_current_policy_and_its_stored_values_are_hidden(
    releases: duckdb.DuckDBPyConnection,
) -> None:
    """The compiled SQL of an r1-pinned query filters on the tenant and masks the email, and
    r1's stored values of a policied metric stay hidden from a tenant-bound principal."""
    tenant = _tenant(releases)
    principal = Principal(f"token:{tenant}", {"tenant_id": tenant})
    query = MetricQuery(metrics=("signups",), group_by=("user__email",))
    compiled = compile_metric_query(query=query, release_ref="r1", principal=principal)
    assert compiled.release == "r1"
    assert f"tenant_id = '{tenant}'" in compiled.sql
    assert "MD5(" in compiled.sql and compiled.parameters
    # Unrestricted compile of r1 is r1's own SQL (no policy, raw email).
    trusted = compile_metric_query(query=query, release_ref="r1", principal=None)
    assert "tenant_id" not in trusted.sql and "MD5(" not in trusted.sql
    assert not stored_values_allowed(
        principal=principal, metric="signups", release=release_resolve("r1")
    )
