"""Certification: only data governance certifies; a major bump needs re-certification."""

from __future__ import annotations

from typing import Any

import pytest

from registry.models import Definition, Proposal, Review
from registry.services.proposals import proposal_create, proposal_merge, proposal_review
from tally.errors import ReviewError
from tests.registry.proposals_setup import committed, metric_yaml

pytestmark = pytest.mark.django_db

MAJOR = {"measure: events_tracked": "measure: revenue"}
MINOR = {"label: Events tracked": "label: Events"}


def _propose(capture: Any, user: Any, replace: dict[str, str]) -> Proposal:
    return committed(
        capture,
        proposal_create,
        acting_user=user,
        title="Change events_tracked",
        files={"e.yml": metric_yaml("events_tracked", replace=replace)},
    )


def _certify(capture: Any, owner: Any, reviewer: Any, governor: Any) -> Proposal:
    proposal = _propose(capture, owner, MAJOR)
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    committed(capture, proposal_review, proposal=proposal, acting_user=governor, verdict="approve")
    return committed(capture, proposal_merge, proposal=proposal, acting_user=reviewer)


def test_certified_metric_change_needs_data_governance(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    proposal = _propose(capture, owner, MAJOR)
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    with pytest.raises(ReviewError) as caught:
        proposal_merge(proposal=proposal, acting_user=reviewer)
    assert {
        "code": "team_approval_missing",
        "message": "needs an approval from team data-governance",
    } in caught.value.details


def test_governance_approval_certifies_the_merged_version(
    owner: Any, reviewer: Any, governor: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A certified metric shows who certified it and when."""
    merged = _certify(django_capture_on_commit_callbacks, owner, reviewer, governor)
    assert Review.objects.get(reviewer=governor).certifies
    head = Definition.objects.get(kind="metric", name="events_tracked")
    version = head.current_version
    assert (version.semver, version.certified_by, head.certified_by) == ("2.0", governor, governor)
    assert version.certified_at is not None and head.certified_at == version.certified_at
    assert merged.merged_release.number == 2


def test_minor_edit_keeps_the_certification_without_governance(
    owner: Any, reviewer: Any, governor: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    _certify(capture, owner, reviewer, governor)
    proposal = _propose(capture, owner, MINOR | MAJOR)
    # The certified meaning is unchanged (only the label differs from r2).
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    committed(capture, proposal_merge, proposal=proposal, acting_user=reviewer)
    version = Definition.objects.get(kind="metric", name="events_tracked").current_version
    assert (version.semver, version.certified_by) == ("2.1", governor)


def test_major_bump_of_a_certified_metric_needs_recertification(
    owner: Any, reviewer: Any, governor: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    _certify(capture, owner, reviewer, governor)
    proposal = _propose(
        capture,
        owner,
        {"measure: events_tracked": "measure: events_tracked\n      fill_nulls_with: 0"},
    )
    committed(capture, proposal_review, proposal=proposal, acting_user=reviewer, verdict="approve")
    with pytest.raises(ReviewError) as caught:
        proposal_merge(proposal=proposal, acting_user=reviewer)
    assert "data-governance" in str(caught.value.details)
