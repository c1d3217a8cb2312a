"""`tally validate`, `sync` and `propose` take a dbt project root or dbt's
target/semantic_manifest.json as they are (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.management.cli_support import read_yaml_files
from registry.services.proposals.files import proposed_from_files
from tests.conftest import run_tally

DATA = Path(__file__).resolve().parent / "data"
ROOT = DATA / "dbt_root"
MANIFEST = DATA / "dbt_root_manifest" / "semantic_manifest.json"


@pytest.mark.parametrize("path", [ROOT, MANIFEST], ids=["project_root", "semantic_manifest"])
def test_validate_takes_a_project_root_or_semantic_manifest(path: Path) -> None:
    result = run_tally("validate", str(path), env={"TALLY_DEMO": "1"})
    assert result.returncode == 0, result.stderr
    assert "0 error(s)" in result.stdout
    assert "3 metrics" in result.stdout and "1 semantic models" in result.stdout


@pytest.mark.parametrize("path", [ROOT, MANIFEST], ids=["project_root", "semantic_manifest"])
def test_propose_reads_what_sync_reads(path: Path) -> None:
    """The files a proposal carries are the project's definitions, never Taskfile.yml."""
    files = read_yaml_files(path)
    assert not any("Taskfile" in name or "meltano" in name for name in files)
    proposed = proposed_from_files(files)
    assert sorted((p.kind, p.name) for p in proposed) == [
        ("metric", "food_orders"),
        ("metric", "order_total"),
        ("metric", "orders"),
        ("project", "default"),
        ("semantic_model", "orders"),
    ]
