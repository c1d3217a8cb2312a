"""Shared setup of the proposal-check security tests: fixtures/ synced as r1 over a small demo
warehouse, personas bound to tenants, and a proposal whose checks run as in production."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.test import Client

from registry.models import Proposal, ProposalCheck
from registry.services.access import access_profile_set, role_grant
from registry.services.definitions import definitions_sync
from registry.services.proposals import proposal_create
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT, demo_warehouse_at

# The author is a finance-data member (the team owning mrr), as in tests/registry.
AUTHOR = "sara.okafor@tally.example"


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("checks") / "demo.duckdb"
    demo_warehouse_at(path, events=3_000, seed=7)
    return path


@pytest.fixture
def registry(db: None, settings: Any, warehouse_path: Path) -> None:
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)


def tenants(warehouse_path: Path) -> list[str]:
    """Tenants of the demo warehouse, the largest first."""
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1"
        ).fetchall()
    finally:
        con.close()
    return [str(r[0]) for r in rows]


def persona(django_user_model: Any, name: str, role: str | None, **attributes: Any) -> Any:
    user, _ = django_user_model.objects.get_or_create(username=name)
    if role:
        role_grant(user=user, role=role)
    if attributes:
        access_profile_set(user=user, attributes=attributes)
    return user


def propose(capture: Callable[..., Any], author: Any, files: dict[str, str]) -> Proposal:
    """Creates a proposal and runs what it enqueued on commit (its checks), as in production."""
    with capture(execute=True):
        return proposal_create(acting_user=author, title="security check", files=files)


def checks(proposal: Proposal) -> dict[str, ProposalCheck]:
    return {c.kind: c for c in ProposalCheck.objects.filter(proposal=proposal)}


def reader(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client
