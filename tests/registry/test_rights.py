"""registry.rights: the one place the UI asks "may this user do X" (buttons follow it)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from registry import rights
from registry.models import Domain, Kind
from registry.permissions import grants_forget
from registry.selectors import definition_get
from registry.services.access import role_grant
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


def test_propose_follows_the_roles_in_the_definitions_domain(
    owner: Any, outsider: Any, django_user_model: Any
) -> None:
    """Re-pointed at registry.permissions: team membership makes the owner reviewer in the
    product domain; an editor grant counts in its own domain only; staff is no role."""
    revenue = definition_get(kind=Kind.METRIC, name="revenue")  # domain product
    assert rights.may_propose(owner) and rights.may_propose(owner, revenue)
    assert not rights.may_propose(outsider) and not rights.may_propose(outsider, revenue)
    assert not rights.may_propose(AnonymousUser())
    assert not rights.may_propose(django_user_model.objects.create_user("ops", is_staff=True))
    elsewhere = django_user_model.objects.create_user("eddie")
    Domain.objects.create(slug="finance", name="Finance")
    role_grant(user=elsewhere, role="editor", domain="finance")
    assert rights.may_propose(elsewhere) and not rights.may_propose(elsewhere, revenue)
    role_grant(user=outsider, role="editor", domain="product")
    grants_forget(outsider)
    assert rights.may_propose(outsider, revenue)


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
