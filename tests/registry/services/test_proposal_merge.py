"""proposal_merge: one transaction into a new release, blocked by checks, approvals, stale base."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.db import DatabaseError, connection, transaction

from registry.models import (
    AuditEvent,
    Definition,
    Proposal,
    ProposalCheck,
    Release,
)
from registry.services.proposals import (
    proposal_create,
    proposal_merge,
    proposal_rebase,
    proposal_review,
    proposal_update,
)
from semantic.compiler.spec import MetricQuery
from semantic.services import compile_metric_query
from tally.errors import ConflictError, ReviewError
from tests.registry.proposals_setup import committed, metric_yaml

pytestmark = pytest.mark.django_db

SUM_TO_MAX = {"measure: revenue": "measure: events_tracked"}


def _propose(capture: Any, user: Any, replace: dict[str, str], name: str = "revenue") -> Proposal:
    return committed(
        capture,
        proposal_create,
        acting_user=user,
        title=f"Change {name}",
        files={f"{name}.yml": metric_yaml(name, replace=replace)},
    )


def test_approved_proposal_merges_into_a_new_release_and_the_old_one_stays_queryable(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The 'done when' path: propose, checks pass, approve, merge, pin the old release."""
    capture = django_capture_on_commit_callbacks
    proposal = _propose(capture, owner, SUM_TO_MAX)
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    mail.outbox.clear()
    merged = committed(capture, proposal_merge, proposal=proposal, acting_user=reviewer)
    assert merged.state == Proposal.State.MERGED
    release = merged.merged_release
    assert (release.number, release.source, release.parent.number) == (2, "proposal", 1)
    head = Definition.objects.get(kind="metric", name="revenue")
    assert head.current_version.semver == "2.0"
    assert AuditEvent.objects.filter(action="proposal.merge", release=release).exists()
    assert AuditEvent.objects.filter(action="release.publish", release=release).exists()
    assert [m.subject for m in mail.outbox] == [
        f"[Tally] #{proposal.pk} Change revenue merged into r2"
    ]
    old = compile_metric_query(query=MetricQuery(metrics=("revenue",)), release_ref="r1")
    new = compile_metric_query(query=MetricQuery(metrics=("revenue",)), release_ref="r2")
    assert (old.versions["revenue"], new.versions["revenue"]) == ("1.0", "2.0")
    assert "SUM(" in old.sql and "COUNT(DISTINCT" in new.sql


def test_merge_without_enough_approvals_is_blocked(
    owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Bad input: merging with missing approvals names what is missing; nothing is written."""
    proposal = _propose(django_capture_on_commit_callbacks, owner, SUM_TO_MAX)
    with pytest.raises(ReviewError) as caught:
        proposal_merge(proposal=proposal, acting_user=owner)
    assert caught.value.code == "merge_blocked"
    codes = {d["code"] for d in caught.value.details}
    assert codes == {"approvals_missing", "team_approval_missing"}
    assert Release.objects.count() == 1


def test_invalid_definition_fails_validation_on_the_proposal_and_nothing_merges(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Bad input: a metric on an unknown measure; the error is on the proposal, with its
    file and line, and merge is blocked by the failing check."""
    capture = django_capture_on_commit_callbacks
    proposal = _propose(capture, owner, {"measure: revenue": "measure: revnue"})
    check = ProposalCheck.objects.get(proposal=proposal, kind="validation")
    assert check.status == "failed"
    first = next(i for i in check.details["issues"] if i["severity"] == "error")
    assert first["object"] == "revenue" and first["file"] == "revenue.yml"
    assert "revnue" in first["message"]
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    with pytest.raises(ReviewError) as caught:
        proposal_merge(proposal=proposal, acting_user=reviewer)
    assert "check_failed" in {d["code"] for d in caught.value.details}
    assert Release.objects.count() == 1


def test_merge_of_a_stale_base_is_a_conflict_until_rebased(
    owner: Any, reviewer: Any, governor: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Bad input: merging a proposal whose base is no longer the latest release (409)."""
    capture = django_capture_on_commit_callbacks
    first = _propose(capture, owner, SUM_TO_MAX)
    second = _propose(
        capture, owner, {"label: Events tracked": "label: Events"}, name="events_tracked"
    )
    for proposal in (first, second):
        committed(
            capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve"
        )
    # events_tracked is certified-tier: data governance signs off too.
    committed(capture, proposal_review, proposal=second, acting_user=governor, verdict="approve")
    committed(capture, proposal_merge, proposal=first, acting_user=reviewer)
    with pytest.raises(ConflictError) as caught:
        proposal_merge(proposal=second, acting_user=reviewer)
    assert caught.value.code == "stale_base" and caught.value.http_status == 409
    rebased = committed(capture, proposal_rebase, proposal=second, acting_user=owner)
    # Nothing the second proposal touches changed in r2: its approval still stands.
    assert (rebased.base_release.number, rebased.revision, rebased.state) == (2, 2, "approved")
    merged = committed(capture, proposal_merge, proposal=second, acting_user=reviewer)
    assert merged.merged_release.number == 3


def test_rebase_reports_conflicting_fields_one_by_one(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    first = _propose(capture, owner, {"label: Revenue": "label: Sales"})
    second = _propose(capture, owner, {"label: Revenue": "label: Turnover"})
    committed(capture, proposal_review, proposal=first, acting_user=reviewer, verdict="approve")
    committed(capture, proposal_merge, proposal=first, acting_user=reviewer)
    with pytest.raises(ConflictError) as caught:
        proposal_rebase(proposal=second, acting_user=owner)
    assert caught.value.code == "rebase_conflict"
    assert caught.value.details == [
        {
            "definition": "metric:revenue",
            "path": "label",
            "base": "Revenue",
            "theirs": "Sales",
            "ours": "Turnover",
        }
    ]
    second.refresh_from_db()
    assert (second.base_release.number, second.revision) == (1, 1)


def test_rebase_merges_disjoint_field_changes_and_dismisses_approvals(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    first = _propose(capture, owner, {"label: Revenue": "label: Sales"})
    second = _propose(capture, owner, SUM_TO_MAX)
    for proposal in (first, second):
        committed(
            capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve"
        )
    committed(capture, proposal_merge, proposal=first, acting_user=reviewer)
    rebased = committed(capture, proposal_rebase, proposal=second, acting_user=owner)
    change = rebased.changes.get(revision=rebased.revision)
    assert change.spec["label"] == "Sales"
    assert change.spec["type_params"]["measure"]["name"] == "events_tracked"
    assert rebased.state == Proposal.State.OPEN  # what was approved is not what merges now


def test_a_merged_proposal_cannot_be_edited(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Bad input: editing a merged proposal; the service refuses and so does the database."""
    capture = django_capture_on_commit_callbacks
    proposal = _propose(capture, owner, {"label: Revenue": "label: Sales"})
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    committed(capture, proposal_merge, proposal=proposal, acting_user=reviewer)
    with pytest.raises(ConflictError) as caught:
        proposal_update(
            proposal=proposal,
            acting_user=owner,
            files={"m.yml": metric_yaml(replace={"label: Revenue": "label: X"})},
        )
    assert caught.value.code == "proposal_merged"
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE registry_proposal SET title = 'rewritten' WHERE id = %s", [proposal.pk])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE registry_proposalchange SET name = 'x'")


def test_merging_twice_is_a_conflict(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    proposal = _propose(capture, owner, {"label: Revenue": "label: Sales"})
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    committed(capture, proposal_merge, proposal=proposal, acting_user=reviewer)
    with pytest.raises(ConflictError) as caught:
        proposal_merge(proposal=proposal, acting_user=reviewer)
    assert caught.value.code == "proposal_merged"
