"""Issue 18, Medium: renaming the ``account`` entity on ``events`` silently dropped tenant
filtering for all events (a row policy reaches a model only through its entity). Validation
(``tally validate`` and a proposal's validation check, which runs the same rules) now refuses
it with file:line and a hint."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from registry.definitions.rules import HINT_POLICY_ENTITY, MSG_POLICY_KEY
from semantic.compiler.definition_checks import load_project
from tests.conftest import ROOT, demo_warehouse_at

ACCOUNT_ENTITY = "      - name: account\n        type: foreign\n        expr: account_id\n"


def _edited(tmp_path: Path, replacement: str) -> Path:
    root = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", root)
    events = root / "semantic_models" / "events.yml"
    text = events.read_text()
    assert ACCOUNT_ENTITY in text
    events.write_text(text.replace(ACCOUNT_ENTITY, replacement))
    return root


@pytest.mark.parametrize(
    "replacement",
    [
        "      - name: acct\n        type: foreign\n        expr: account_id\n",
        "",
    ],
    ids=["renamed", "dropped"],
)
def test_events_without_the_account_entity_are_refused(replacement: str, tmp_path: Path) -> None:
    """Renamed (or dropped) ``account`` on events validated with no error and every tenant's
    events were then counted for a tenant-bound token."""
    project = load_project(_edited(tmp_path, replacement))
    found = [i for i in project.issues.errors if i.code == "policy_entity_missing"]
    assert [i.object for i in found] == ["events"]
    issue = found[0]
    assert issue.file.endswith("semantic_models/events.yml") and issue.line > 0
    # The first other model keying ``account`` on account_id, in definition order.
    assert issue.message == MSG_POLICY_KEY.format(
        model="events", column="account_id", entity="account", other="invoices"
    )
    assert issue.hint == HINT_POLICY_ENTITY.format(
        entity="account", model="events", column="account_id", other="invoices"
    )


def test_the_fixtures_carry_every_policy_entity() -> None:
    """The demo definitions pass the rule: no false positive on the shipped models."""
    project = load_project(ROOT / "fixtures")
    assert not [i for i in project.issues.errors if i.code == "policy_entity_missing"]


@pytest.mark.django_db
def test_a_proposal_renaming_the_account_entity_fails_its_validation_check(
    django_capture_on_commit_callbacks: Any, settings: Any, tmp_path: Path
) -> None:
    """At propose time: the validation check runs the same rules and names the file."""
    from registry.models import ProposalCheck
    from registry.services.definitions import definitions_sync
    from registry.services.proposals import proposal_create
    from semantic.warehouse.config import parse_warehouse_url
    from tests.registry.factories import UserFactory
    from tests.registry.proposals_setup import committed

    warehouse = tmp_path / "demo.duckdb"
    demo_warehouse_at(warehouse, events=500, seed=3)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    text = (ROOT / "fixtures" / "semantic_models" / "events.yml").read_text()
    renamed = "      - name: acct\n        type: foreign\n        expr: account_id\n"
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=UserFactory(username="jonas.berg@tally.example"),
        title="Rename the account entity of events",
        files={"semantic_models/events.yml": text.replace(ACCOUNT_ENTITY, renamed)},
    )
    check = ProposalCheck.objects.get(proposal=proposal, kind="validation")
    assert check.status == "failed", check.summary
    found = [i for i in check.details["issues"] if i["code"] == "policy_entity_missing"]
    assert found and found[0]["file"].endswith("events.yml") and found[0]["line"] > 0
