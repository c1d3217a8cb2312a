"""Registry fixtures: the personas owner/reviewer/outsider (+ governor) over a synced r1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import LazySettings

from registry.models import Release
from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT, demo_warehouse_at
from tests.registry.factories import UserFactory
from tests.registry.proposals_setup import write_registry


@pytest.fixture
def registry_r1(db: None, tmp_path: Path) -> Release:
    """r1: events model, revenue / events_tracked / revenue_per_event, contract, teams."""
    result = definitions_sync(root=write_registry(tmp_path / "defs"), acting_user=None)
    assert result.release is not None
    return result.release


def _persona(username: str) -> Any:
    # Sync created the team members from governance YAML; give them an address.
    user = UserFactory(username=username)
    user.email = f"{username}@tally.example"
    user.save(update_fields=["email"])
    return user


@pytest.fixture
def owner(registry_r1: Release) -> Any:
    """Lead of product-analytics, the team owning the metrics: writes proposals."""
    return _persona("owner")


@pytest.fixture
def reviewer(registry_r1: Release) -> Any:
    """Member of product-analytics: may review its proposals (not their own)."""
    return _persona("reviewer")


@pytest.fixture
def governor(registry_r1: Release) -> Any:
    """Member of data-governance: certifies certified-tier definitions."""
    return _persona("governor")


@pytest.fixture
def outsider(registry_r1: Release) -> Any:
    """Signed in, but in no team: may comment, never approve."""
    return _persona("outsider")


# --------------------------------------------------------------------------- fixtures/ + warehouse


@pytest.fixture(scope="session")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    demo_warehouse_at(path, events=20_000, seed=42)
    return path


@pytest.fixture
def fixtures_registry(db: None, settings: LazySettings, warehouse_path: Path) -> None:
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)


@pytest.fixture
def analyst(fixtures_registry: None) -> Any:
    """A finance-data member (the team owning mrr), created by the fixtures' governance."""
    return UserFactory(username="sara.okafor@tally.example")
