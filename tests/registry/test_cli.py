"""`tally validate`, `tally sync` and `tally export` as a user runs them (real subprocesses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_tally
from tests.registry.defs import CONTRACT_YAML, METRICS_YAML, SEMANTIC_MODEL_YAML, write

pytestmark = pytest.mark.registry_db


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write(
        tmp_path / "defs",
        {
            "semantic_models/events.yml": SEMANTIC_MODEL_YAML,
            "metrics/product.yml": METRICS_YAML,
            "contracts/events.odcs.yaml": CONTRACT_YAML,
        },
    )


def test_validate_prints_every_error_with_file_line_and_hint(folder: Path) -> None:
    """All errors at once, `file:line: error[code]: …` + hint, exit 1."""
    write(
        folder,
        {
            "metrics/bad.yml": """\
            metrics:
              - name: revenue_typo
                type: simple
                type_params: {measure: revnue}
              - name: other_typo
                type: simple
                type_params: {measure: events_trackd}
            """
        },
    )
    result = run_tally("validate", str(folder), env={})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "defs/metrics/bad.yml:4: error[unknown_measure]: metric 'revenue_typo' reads unknown measure 'revnue'",
        "  hint: did you mean 'revenue'?",
        "defs/metrics/bad.yml:7: error[unknown_measure]: metric 'other_typo' reads unknown measure 'events_trackd'",
        "  hint: did you mean 'events_tracked'?",
    ]
    assert "2 error(s)" in result.stdout


def test_validate_passes_a_good_folder(folder: Path) -> None:
    """A valid folder exits 0 and summarises what it found."""
    result = run_tally("validate", str(folder), env={})
    assert result.returncode == 0, result.stderr
    assert "0 error(s), 0 warning(s)" in result.stdout
    assert "2 metrics" in result.stdout


def test_sync_plans_applies_and_is_idempotent(
    folder: Path, migrated_registry_url: str, tmp_path: Path
) -> None:
    """First sync publishes r1; the second says there is nothing to do; export round-trips."""
    env = {"DATABASE_URL": migrated_registry_url}
    dry = run_tally("sync", str(folder), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Plan against an empty registry:" in dry.stdout
    assert "  + metric revenue" in dry.stdout
    assert "Dry run: nothing written." in dry.stdout
    first = run_tally("sync", str(folder), env=env)
    assert first.returncode == 0, first.stderr
    assert "4 to add, 0 to change, 0 to retire, 0 unchanged." in first.stdout
    assert "Published release r1." in first.stdout
    second = run_tally("sync", str(folder), env=env)
    assert second.stdout.strip().endswith(
        f"No changes: the registry already matches {folder} (r1)."
    )
    out = tmp_path / "exported"
    assert run_tally("export", str(out), env=env).returncode == 0
    back = run_tally("sync", str(out), env=env)
    assert "No changes" in back.stdout, back.stdout + back.stderr


def test_sync_of_an_invalid_folder_exits_1_and_writes_nothing(
    folder: Path, migrated_registry_url: str
) -> None:
    """Errors are printed as in validate; the registry stays empty."""
    env = {"DATABASE_URL": migrated_registry_url}
    write(folder, {"metrics/bad.yml": "metrics:\n  - name: x_y\n    type: simple\n"})
    result = run_tally("sync", str(folder), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("defs/metrics/bad.yml:2: error[invalid_definitions]")
    export = run_tally("export", str(folder.parent / "out"), env=env)
    assert export.returncode == 1
    assert "error[no_release]: no release yet" in export.stderr
