"""Shared compiler fixtures: the fixtures/ manifest and a small demo warehouse."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import duckdb
import pytest

from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import Manifest, build_manifest
from tests.conftest import ROOT, demo_warehouse_at

WAREHOUSE_EVENTS = 20_000
WAREHOUSE_SEED = 42


@cache
def fixtures_manifest() -> Manifest:
    """fixtures/ as the compiler sees a release of it (every version 1.0)."""
    project = load_project(ROOT / "fixtures")
    assert not project.issues.errors
    rows = [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()]
    return build_manifest(rows, release="r1")


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    return fixtures_manifest()


@pytest.fixture(scope="session")
def warehouse_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "demo.duckdb"
    demo_warehouse_at(path, events=WAREHOUSE_EVENTS, seed=WAREHOUSE_SEED)
    return path


@pytest.fixture
def duck(warehouse_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(warehouse_path), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def demo_cli_env(
    module_synced_registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment of a module's CLI tests that only read: what `tally migrate`, `tally
    generate-demo --events 3000 --seed 7` and `tally sync fixtures/` make, as copies."""
    warehouse = demo_warehouse_at(
        tmp_path_factory.mktemp("warehouse") / "wh.duckdb", events=3000, seed=7
    )
    return {"DATABASE_URL": module_synced_registry_url, "WAREHOUSE_URL": f"duckdb:///{warehouse}"}
