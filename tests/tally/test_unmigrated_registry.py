"""A registry nobody migrated gets "run tally migrate", not a traceback (issue 16); one that
cannot be reached gets error[registry_unavailable] (issue 23)."""

from __future__ import annotations

import socket
from pathlib import Path

from tally.management.base import REGISTRY_UNAVAILABLE, REGISTRY_UNAVAILABLE_HINT
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


def test_a_command_whose_registry_is_unreachable_says_so_without_a_traceback() -> None:
    """Issue 23: a registry that went away (server down, backend terminated) made every
    command print a traceback; it is error[registry_unavailable] with a hint, exit 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    result = run_tally(
        "runs", env={"TALLY_DEMO": "1", "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x"}
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        REGISTRY_UNAVAILABLE.format(database="x", reason="").removesuffix(": ")
    ), lines
    assert lines[1] == f"  hint: {REGISTRY_UNAVAILABLE_HINT}"
