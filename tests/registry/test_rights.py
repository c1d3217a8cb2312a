"""registry.rights: the one place the UI asks "may this user do X" (buttons follow it)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from registry import rights
from registry.services.proposals import proposal_create
from registry.services.review_policy import proposal_policy_get
from tests.registry.proposals_setup import metric_yaml

pytestmark = pytest.mark.django_db


def _proposal(owner: Any, *, draft: bool = False) -> Any:
    return proposal_create(
        acting_user=owner,
        title="t",
        description="",
        files={"revenue.yml": metric_yaml(replace={"label: Revenue": "label: Revenue (paid)"})},
        retire=[],
        open_now=not draft,
    )


def test_only_team_members_and_staff_may_propose(
    owner: Any, outsider: Any, django_user_model: Any
) -> None:
    assert rights.may_propose(owner)
    assert not rights.may_propose(outsider)
    assert not rights.may_propose(AnonymousUser())
    assert rights.may_propose(django_user_model.objects.create_user("ops", is_staff=True))


def test_reviewers_review_authors_merge_viewers_comment(
    owner: Any, reviewer: Any, outsider: Any
) -> None:
    proposal = _proposal(owner)
    policy = proposal_policy_get(proposal=proposal)
    assert rights.may_review(reviewer, proposal, policy)
    assert not rights.may_review(owner, proposal, policy)  # never one's own
    assert not rights.may_review(outsider, proposal, policy)
    assert rights.may_merge(owner, proposal, policy) and rights.may_merge(
        reviewer, proposal, policy
    )
    assert not rights.may_merge(outsider, proposal, policy)
    assert rights.may_close(owner, proposal, policy) and not rights.may_close(
        outsider, proposal, policy
    )
    assert rights.may_comment(outsider, proposal)
    assert not rights.may_open(owner, proposal)  # already open


def test_a_draft_is_opened_by_its_author_and_reviewed_by_nobody_yet(
    owner: Any, reviewer: Any
) -> None:
    draft = _proposal(owner, draft=True)
    policy = proposal_policy_get(proposal=draft)
    assert rights.may_open(owner, draft) and not rights.may_open(reviewer, draft)
    assert not rights.may_review(reviewer, draft, policy)
    assert not rights.may_merge(owner, draft, policy)
