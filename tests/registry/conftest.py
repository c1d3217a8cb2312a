"""Registry fixtures: the personas owner/reviewer/outsider (+ governor) over a synced r1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.models import Release
from tests.registry.factories import UserFactory
from tests.registry.proposals_setup import write_registry


@pytest.fixture
def registry_r1(db: None, tmp_path: Path) -> Release:
    """r1: events model, revenue / events_tracked / revenue_per_event, contract, teams."""
    from registry.services.definitions import definitions_sync

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
