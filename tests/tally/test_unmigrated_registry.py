"""A registry nobody migrated gets "run tally migrate", not a traceback (issue 16)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, run_tally


def test_sync_on_an_unmigrated_registry_says_run_tally_migrate(tmp_path: Path) -> None:
    registry = tmp_path / "empty.sqlite3"
    result = run_tally(
        "sync",
        str(ROOT / "tests" / "registry" / "data" / "dbt_root"),
        env={"TALLY_DEMO": "1", "DATABASE_URL": f"sqlite:///{registry}"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"error[registry_not_migrated]: the registry ({registry}) is not migrated: "
    )
    assert lines[1] == "  hint: run `tally migrate` (python manage.py migrate) first"
