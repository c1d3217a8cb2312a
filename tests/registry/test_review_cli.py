"""`tally propose / proposal / review / merge / proposals / sync --propose` as users run them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_tally
from tests.registry.proposals_setup import metric_yaml, write_registry

pytestmark = pytest.mark.registry_db


def test_propose_review_merge_from_the_command_line(
    tmp_path: Path, migrated_registry_url: str
) -> None:
    """The 'done when' path in real subprocesses: propose a change to a metric, see its
    checks, get refused self-approval, approve as a reviewer, merge into r2."""
    env = {
        "DATABASE_URL": migrated_registry_url,
        "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'none.duckdb'}",
    }
    synced = run_tally("sync", str(write_registry(tmp_path / "defs")), env=env)
    assert synced.returncode == 0, synced.stderr
    change = tmp_path / "revenue.yml"
    change.write_text(metric_yaml(replace={"measure: revenue": "measure: events_tracked"}))

    proposed = run_tally(
        "propose", str(change), "--title", "Count events", "--user", "owner", env=env
    )
    assert proposed.returncode == 0, proposed.stderr
    out = proposed.stdout
    assert "Proposal #1: Count events [open] by owner, revision 1" in out
    assert "change metric revenue (major)" in out
    assert "compile     passed" in out and "validation  passed" in out
    assert "[team_approval_missing] needs an approval from team product-analytics" in out

    own = run_tally("review", "1", "--approve", "--user", "owner", env=env)
    assert own.returncode == 1
    assert own.stderr.splitlines()[0] == "error[self_review]: you cannot review your own proposal"

    approved = run_tally("review", "1", "--approve", "-m", "ok", "--user", "reviewer", env=env)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == "reviewer: approve on #1; it is now approved."

    listed = run_tally("proposals", "--state", "approved", env=env)
    assert listed.stdout.split()[:3] == ["#1", "approved", "r1"]

    merged = run_tally("merge", "1", "--user", "reviewer", env=env)
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.strip() == "Merged #1 into release r2."

    again = run_tally("merge", "1", "--user", "reviewer", env=env)
    assert again.returncode == 1 and "error[proposal_merged]" in again.stderr


def test_sync_propose_opens_a_proposal_instead_of_publishing(
    tmp_path: Path, migrated_registry_url: str
) -> None:
    env = {
        "DATABASE_URL": migrated_registry_url,
        "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'none.duckdb'}",
    }
    folder = write_registry(tmp_path / "defs")
    assert run_tally("sync", str(folder), env=env).returncode == 0
    metrics = folder / "metrics/product.yml"
    metrics.write_text(metrics.read_text().replace("label: Revenue\n", "label: Sales\n"))
    result = run_tally("sync", str(folder), "--propose", "--user", "owner", env=env)
    assert result.returncode == 0, result.stderr
    assert "change metric revenue (minor)" in result.stdout
    assert 'label: "Revenue" → "Sales"' in result.stdout
    releases = run_tally("proposals", env=env)
    assert "Sync defs" in releases.stdout


def test_review_without_a_user_says_how_to_name_one(
    tmp_path: Path, migrated_registry_url: str
) -> None:
    env = {"DATABASE_URL": migrated_registry_url, "TALLY_USER": ""}
    result = run_tally("review", "1", "--approve", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error[no_user]: say who you are",
        "  hint: pass --user NAME or set TALLY_USER",
    ]
