"""Lineage fixtures that need computed values: the fixtures/ registry synced over a private
copy of the small demo warehouse (as tests/semantic/jobs uses)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings

from lineage.services import graphs
from registry.services.definitions import definitions_sync
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT, demo_warehouse_at

WAREHOUSE_EVENTS = 20_000
WAREHOUSE_SEED = 42


@pytest.fixture(scope="session")
def lineage_warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    demo_warehouse_at(path, events=WAREHOUSE_EVENTS, seed=WAREHOUSE_SEED)
    return path


@pytest.fixture
def computed(
    db: None, tmp_path: Path, lineage_warehouse_path: Path, settings: Settings
) -> Iterator[Path]:
    """The fixtures/ registry synced over a writable warehouse copy (release r1)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(lineage_warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    graphs.clear()
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    yield path
    graphs.clear()
