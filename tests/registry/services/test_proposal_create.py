"""proposal_create / proposal_create_from_folder: parsing, no-op edits, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from registry.models import AuditEvent, Proposal, ProposalChange, ProposalCheck
from registry.services.proposals import (
    NO_CHANGES,
    proposal_create,
    proposal_create_from_folder,
)
from tally.errors import DefinitionError, PermissionDenied, UserError
from tests.registry.proposals_setup import committed, metric_yaml, write_registry

pytestmark = pytest.mark.django_db


def test_create_from_yaml_opens_the_proposal_and_runs_every_check(
    owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=owner,
        title="Relabel revenue",
        files={"metrics/revenue.yml": metric_yaml(replace={"label: Revenue": "label: Sales"})},
    )
    assert proposal.state == Proposal.State.OPEN
    assert proposal.base_release is not None and proposal.base_release.number == 1
    change = ProposalChange.objects.get(proposal=proposal)
    assert (change.kind, change.name, change.spec["label"]) == ("metric", "revenue", "Sales")
    assert (change.source_file, change.source_line) == ("metrics/revenue.yml", 2)
    statuses = dict(ProposalCheck.objects.values_list("kind", "status"))
    assert set(statuses) == {"validation", "contracts", "compile", "impact", "numbers"}
    assert statuses["validation"] == statuses["compile"] == "passed"
    assert AuditEvent.objects.filter(action="proposal.create", object_name=str(proposal.pk))


def test_opening_notifies_owners_and_reviewers_by_email(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=owner,
        title="Relabel revenue",
        files={"m.yml": metric_yaml(replace={"label: Revenue": "label: Sales"})},
    )
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == f"[Tally] Review requested: #{proposal.pk} Relabel revenue"
    assert {"product-analytics@tally.example", reviewer.email} <= set(message.to)


def test_a_definition_identical_to_the_release_is_not_a_change(owner: Any) -> None:
    with pytest.raises(UserError) as caught:
        proposal_create(acting_user=owner, title="noop", files={"m.yml": metric_yaml()})
    assert (caught.value.code, caught.value.message) == ("no_changes", NO_CHANGES)
    assert not Proposal.objects.exists()


def test_unparseable_yaml_is_refused_with_file_and_line(owner: Any) -> None:
    """A file that breaks the dbt schema cannot be stored as a canonical spec at all."""
    text = metric_yaml(replace={"type: simple": "type: simple\n    colour: red"})
    with pytest.raises(DefinitionError) as caught:
        proposal_create(acting_user=owner, title="bad", files={"bad.yml": text})
    assert caught.value.location is not None and caught.value.location.startswith("bad.yml:")
    assert not Proposal.objects.exists()


def test_file_names_outside_the_proposal_are_refused(owner: Any) -> None:
    with pytest.raises(UserError) as caught:
        proposal_create(acting_user=owner, title="x", files={"../x.yml": metric_yaml()})
    assert caught.value.code == "bad_file_name"


def test_anonymous_callers_cannot_propose(registry_r1: Any) -> None:
    with pytest.raises(PermissionDenied) as caught:
        proposal_create(acting_user=None, title="x", files={"m.yml": metric_yaml()})
    assert caught.value.code == "not_authenticated"


def test_retiring_an_unknown_definition_is_refused(owner: Any) -> None:
    with pytest.raises(UserError) as caught:
        proposal_create(acting_user=owner, title="x", retire=["metric:nope"])
    assert caught.value.code == "unknown_definition"


def test_sync_propose_turns_a_folder_into_one_proposal_with_retirements(
    owner: Any, tmp_path: Path
) -> None:
    """`tally sync DIR --propose`: changed and missing definitions become one proposal."""
    folder = write_registry(tmp_path / "edit")
    text = (folder / "metrics/product.yml").read_text()
    (folder / "metrics/product.yml").write_text(
        text.replace("label: Revenue\n", "label: Sales\n").split("  - name: revenue_per_event")[0]
    )
    proposal = proposal_create_from_folder(acting_user=owner, root=folder, title="From folder")
    changes = {(c.name, c.spec is None) for c in ProposalChange.objects.filter(proposal=proposal)}
    assert changes == {("revenue", False), ("revenue_per_event", True)}
