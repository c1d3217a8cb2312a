"""Compute-job fixtures: the fixtures/ registry synced and a private, writable warehouse copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT


@pytest.fixture
def own_warehouse(tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    """A copy of the small demo warehouse this test may change (late events, faults)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    return path


@pytest.fixture
def synced(db: None, own_warehouse: Path) -> Path:
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    return own_warehouse
