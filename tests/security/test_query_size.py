"""Issue 18, principle 7: query text is bounded before it is parsed. The SQL API refuses a
query text over TALLY_SQL_MAX_QUERY_BYTES with 54000 (program_limit_exceeded) and a hint,
in the simple and the extended protocol; POST /api/v1/compile|query refuse oversized
filters, lists and names with 400, a code and a hint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT, demo_warehouse_at
from tests.security.sqlapi_support import sql_server, url


# A SELECT that parses, padded with a long comment to ``size`` bytes.
def _padded(size: int) -> str:
    head = "SELECT 1 AS one /* "
    return head + "x" * (size - len(head) - 3) + " */"


def test_sql_api_refuses_a_query_text_over_the_cap() -> None:
    with sql_server(TALLY_SQL_MAX_QUERY_BYTES="2000") as port, psycopg.connect(url(port)) as conn:
        conn.autocommit = True
        assert conn.execute(_padded(1900)).fetchone() == (1,)
        with pytest.raises(psycopg.Error) as simple:
            conn.execute(_padded(5000))
        assert simple.value.sqlstate == "54000"
        assert simple.value.diag.message_hint is not None
        assert "TALLY_SQL_MAX_QUERY_BYTES" in simple.value.diag.message_hint
        # The extended protocol (a parameter makes psycopg send Parse/Bind/Execute).
        with pytest.raises(psycopg.Error) as extended:
            conn.execute(_padded(5000).replace("1 AS one", "%s::text AS one"), ["a"])
        assert extended.value.sqlstate == "54000"
        # The session goes on.
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_sql_api_default_cap_refuses_a_megabyte_of_query_text() -> None:
    with sql_server() as port, psycopg.connect(url(port)) as conn:
        conn.autocommit = True
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT " + " + ".join(["1"] * 400_000))
        assert info.value.sqlstate == "54000"
        assert conn.execute("SELECT 3").fetchone() == (3,)


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    demo_warehouse_at(path, events=3000, seed=7)
    return path


@pytest.fixture
def analyst(sign_in: Any, settings: Settings, warehouse_path: Path) -> Client:
    # A release and a warehouse: the refusal must come before anything is parsed or run.
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    return sign_in("analyst", "analyst")  # type: ignore[no-any-return]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/compile", "/api/v1/query"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "metrics": ["revenue"],
                "where": ["{{ Dimension('account__plan') }} = 'x'" + " " * 20_000],
            },
            "where",
        ),
        ({"metrics": ["revenue"], "where": ["1 = 1" + " " * 9_000] * 100}, "where"),
        ({"metrics": [f"m{i}" for i in range(101)]}, "metrics"),
        ({"metrics": ["revenue"], "group_by": [f"d{i}" for i in range(101)]}, "group_by"),
        ({"metrics": ["revenue"], "order_by": ["x" * 300]}, "order_by"),
        ({"metrics": ["revenue"], "saved_query": "x" * 300}, "saved_query"),
    ],
    ids=["long-filter", "many-filters", "metrics", "group-by", "order-by", "saved-query"],
)
def test_http_refuses_oversized_query_input_with_a_hint(
    analyst: Client, path: str, body: dict[str, Any], field: str
) -> None:
    response = analyst.post(path, body, content_type="application/json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "query_too_large", error
    assert error["location"] == field
    assert error["hint"]
