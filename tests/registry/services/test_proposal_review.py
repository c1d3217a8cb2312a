"""proposal_review: who may approve, self-approval, dismissal on update, resulting state."""

from __future__ import annotations

from typing import Any

import pytest

from registry.models import Proposal, Review
from registry.services.proposals import (
    SELF_REVIEW,
    proposal_create,
    proposal_review,
    proposal_update,
)
from tally.errors import PermissionDenied, UserError
from tests.registry.proposals_setup import metric_yaml

pytestmark = pytest.mark.django_db

RELABEL = {"label: Revenue": "label: Sales"}


@pytest.fixture
def proposal(owner: Any) -> Proposal:
    return proposal_create(
        acting_user=owner, title="Rename revenue", files={"m.yml": metric_yaml(replace=RELABEL)}
    )


def test_author_cannot_approve_their_own_proposal(proposal: Proposal, owner: Any) -> None:
    """Bad input: approving your own proposal is refused with self_review."""
    with pytest.raises(PermissionDenied) as caught:
        proposal_review(proposal=proposal, acting_user=owner, verdict="approve")
    assert caught.value.code == "self_review"
    assert caught.value.message == SELF_REVIEW
    assert not Review.objects.exists()


def test_user_outside_the_required_teams_cannot_approve(proposal: Proposal, outsider: Any) -> None:
    """Bad input: approving without reviewer rights is refused and names the teams."""
    with pytest.raises(PermissionDenied) as caught:
        proposal_review(proposal=proposal, acting_user=outsider, verdict="approve")
    assert caught.value.code == "not_a_reviewer"
    assert "product-analytics" in (caught.value.hint or "")


def test_owning_team_member_approval_makes_the_proposal_approved(
    proposal: Proposal, reviewer: Any
) -> None:
    review = proposal_review(proposal=proposal, acting_user=reviewer, verdict="approve")
    proposal.refresh_from_db()
    assert (review.revision, proposal.state) == (1, Proposal.State.APPROVED)


def test_request_changes_needs_a_message_and_sets_changes_requested(
    proposal: Proposal, reviewer: Any
) -> None:
    with pytest.raises(UserError) as caught:
        proposal_review(proposal=proposal, acting_user=reviewer, verdict="request_changes")
    assert caught.value.code == "no_message"
    proposal_review(
        proposal=proposal, acting_user=reviewer, verdict="request_changes", body="keep Revenue"
    )
    proposal.refresh_from_db()
    assert proposal.state == Proposal.State.CHANGES_REQUESTED


def test_a_new_revision_dismisses_earlier_approvals(
    proposal: Proposal, owner: Any, reviewer: Any
) -> None:
    """Approvals were given to what the proposal said then; an edit needs new ones."""
    proposal_review(proposal=proposal, acting_user=reviewer, verdict="approve")
    proposal_update(
        proposal=proposal,
        acting_user=owner,
        files={"m.yml": metric_yaml(replace={"label: Revenue": "label: Turnover"})},
    )
    proposal.refresh_from_db()
    assert proposal.revision == 2
    assert proposal.state == Proposal.State.OPEN
    assert list(Review.objects.values_list("dismissed", flat=True)) == [True]


def test_unknown_verdict_is_refused_with_its_location(proposal: Proposal, reviewer: Any) -> None:
    with pytest.raises(UserError) as caught:
        proposal_review(proposal=proposal, acting_user=reviewer, verdict="lgtm")
    assert (caught.value.code, caught.value.location) == ("bad_verdict", "verdict")
