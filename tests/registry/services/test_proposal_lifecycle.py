"""Drafts, closing, comments, e-mails on review, policy overrides and error texts."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail

from registry.models import Proposal, ProposalCheck
from registry.services.proposals import (
    MERGE_BLOCKED,
    STALE_BASE,
    proposal_close,
    proposal_comment,
    proposal_create,
    proposal_merge,
    proposal_open,
    proposal_review,
    proposal_update,
)
from registry.services.review_policy import proposal_policy_get
from tally.errors import ConflictError, PermissionDenied, ReviewError, UserError
from tests.registry.factories import TeamFactory, TeamMembershipFactory, UserFactory
from tests.registry.proposals_setup import committed, metric_yaml

pytestmark = pytest.mark.django_db

RELABEL = {"label: Revenue": "label: Sales"}


def _draft(owner: Any, replace: dict[str, str] = RELABEL) -> Proposal:
    return proposal_create(
        acting_user=owner,
        title="Relabel",
        files={"m.yml": metric_yaml(replace=replace)},
        open_now=False,
    )


def test_a_draft_runs_no_checks_until_opened(
    owner: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    with capture(execute=True):
        draft = _draft(owner)
    assert draft.state == "draft" and not ProposalCheck.objects.exists() and not mail.outbox
    committed(capture, proposal_open, proposal=draft, acting_user=owner)
    assert ProposalCheck.objects.filter(proposal=draft, revision=1).count() == 5
    assert len(mail.outbox) == 1


def test_drafts_cannot_be_reviewed(owner: Any, reviewer: Any) -> None:
    draft = _draft(owner)
    with pytest.raises(ReviewError) as caught:
        proposal_review(proposal=draft, acting_user=reviewer, verdict="approve")
    assert caught.value.code == "proposal_not_open"


def test_only_the_author_edits(owner: Any, reviewer: Any) -> None:
    draft = _draft(owner)
    with pytest.raises(PermissionDenied) as caught:
        proposal_update(
            proposal=draft, acting_user=reviewer, files={"m.yml": metric_yaml(replace=RELABEL)}
        )
    assert caught.value.code == "not_author"


def test_review_emails_the_author_with_the_verdict(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    proposal = committed(
        capture,
        proposal_create,
        acting_user=owner,
        title="Relabel",
        files={"m.yml": metric_yaml(replace=RELABEL)},
    )
    mail.outbox.clear()
    committed(
        capture,
        proposal_review,
        proposal=proposal,
        acting_user=reviewer,
        verdict="request_changes",
        body="keep the old label",
    )
    (message,) = mail.outbox
    assert message.subject == f"[Tally] #{proposal.pk} Relabel: request changes by reviewer"
    assert owner.email in message.to and "keep the old label" in message.body


def test_closed_proposals_take_comments_but_no_reviews(
    owner: Any, reviewer: Any, outsider: Any
) -> None:
    proposal = proposal_create(
        acting_user=owner, title="Relabel", files={"m.yml": metric_yaml(replace=RELABEL)}
    )
    with pytest.raises(PermissionDenied):
        proposal_close(proposal=proposal, acting_user=outsider)
    closed = proposal_close(proposal=proposal, acting_user=owner, reason="superseded")
    assert closed.state == "closed" and closed.closed_at is not None
    comment = proposal_comment(proposal=closed, acting_user=outsider, body="why?")
    assert (comment.revision, comment.definition_kind) == (1, "")
    with pytest.raises(ReviewError) as caught:
        proposal_review(proposal=closed, acting_user=reviewer, verdict="approve")
    assert caught.value.code == "proposal_not_open"


def test_a_field_comment_must_name_its_definition(owner: Any, outsider: Any) -> None:
    proposal = _draft(owner)
    with pytest.raises(UserError) as caught:
        proposal_comment(
            proposal=proposal, acting_user=outsider, body="?", field_path="type_params"
        )
    assert (caught.value.code, caught.value.location) == ("no_definition", "definition")


def test_review_override_requires_the_named_team_and_more_approvals(
    owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """config.meta.review of the released version sets teams and min_approvals; a proposal
    cannot loosen it, because the released policy governs an existing definition."""
    capture = django_capture_on_commit_callbacks
    policy_yaml = metric_yaml(
        replace={
            "tier: standard}": "tier: standard, review: {teams: [finance-data], min_approvals: 2}}"
        }
    )
    finance = TeamFactory(slug="finance-data")
    approvers = [UserFactory(username=f"fin{i}") for i in range(2)]
    for user in approvers:
        TeamMembershipFactory(team=finance, user=user)
    first = committed(
        capture, proposal_create, acting_user=owner, title="Policy", files={"m.yml": policy_yaml}
    )
    # While the override is only proposed, the released policy (owner team) applies.
    assert proposal_policy_get(proposal=first).required_teams == ("product-analytics",)
    committed(capture, proposal_review, proposal=first, acting_user=reviewer, verdict="approve")
    committed(capture, proposal_merge, proposal=first, acting_user=reviewer)

    loosen = committed(
        capture,
        proposal_create,
        acting_user=owner,
        title="Loosen",
        files={"m.yml": metric_yaml(replace=RELABEL)},
    )
    policy = proposal_policy_get(proposal=loosen)
    assert (policy.required_teams, policy.min_approvals) == (("finance-data",), 2)
    with pytest.raises(PermissionDenied):
        proposal_review(proposal=loosen, acting_user=reviewer, verdict="approve")
    committed(
        capture, proposal_review, proposal=loosen, acting_user=approvers[0], verdict="approve"
    )
    with pytest.raises(ReviewError) as caught:
        proposal_merge(proposal=loosen, acting_user=approvers[0])
    assert caught.value.details == [
        {"code": "approvals_missing", "message": "1 of 2 required approvals"}
    ]
    committed(
        capture, proposal_review, proposal=loosen, acting_user=approvers[1], verdict="approve"
    )
    assert committed(capture, proposal_merge, proposal=loosen, acting_user=approvers[1]).state == (
        "merged"
    )


def test_error_texts(owner: Any, reviewer: Any, django_capture_on_commit_callbacks: Any) -> None:
    """Snapshot of the user-facing merge errors (templates are module constants)."""
    assert STALE_BASE == "proposal #{id} is based on {base}, but the latest release is {latest}"
    assert MERGE_BLOCKED == "proposal #{id} cannot merge yet: {first}"
    capture = django_capture_on_commit_callbacks
    first = committed(
        capture,
        proposal_create,
        acting_user=owner,
        title="a",
        files={"m.yml": metric_yaml(replace=RELABEL)},
    )
    second = committed(
        capture,
        proposal_create,
        acting_user=owner,
        title="b",
        files={"m.yml": metric_yaml(replace={"label: Revenue": "label: Other"})},
    )
    with pytest.raises(ReviewError) as blocked:
        proposal_merge(proposal=first, acting_user=owner)
    assert blocked.value.message == (
        f"proposal #{first.pk} cannot merge yet: 0 of 1 required approvals"
    )
    committed(capture, proposal_review, proposal=first, acting_user=reviewer, verdict="approve")
    committed(capture, proposal_merge, proposal=first, acting_user=reviewer)
    with pytest.raises(ConflictError) as stale:
        proposal_merge(proposal=second, acting_user=owner)
    assert stale.value.message == (
        f"proposal #{second.pk} is based on r1, but the latest release is r2"
    )
    assert stale.value.hint == (
        f"rebase it: `tally rebase {second.pk}` or POST …/proposals/{second.pk}/rebase"
    )


def test_domain_min_approvals_comes_from_governance_yaml(
    owner: Any, tmp_path: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """`domains: [{slug: product, min_approvals: 2}]` is the domain's review policy."""
    from registry.models import Domain
    from registry.services.definitions import definitions_sync
    from tests.registry.proposals_setup import GOVERNANCE_YAML, write_registry

    folder = write_registry(tmp_path / "strict")
    (folder / "governance.yml").write_text(
        GOVERNANCE_YAML.replace(
            "    owner: product-analytics\n", "    owner: product-analytics\n    min_approvals: 2\n"
        )
    )
    definitions_sync(root=folder, acting_user=None)
    assert Domain.objects.get(slug="product").min_approvals == 2
    proposal = _draft(owner)
    assert proposal_policy_get(proposal=proposal).min_approvals == 2


def test_domain_min_approvals_must_be_a_small_whole_number(tmp_path: Any) -> None:
    from semantic.compiler.definition_checks import load_project
    from tests.registry.proposals_setup import GOVERNANCE_YAML, write_registry

    folder = write_registry(tmp_path / "bad")
    (folder / "governance.yml").write_text(
        GOVERNANCE_YAML.replace(
            "    owner: product-analytics\n", "    owner: product-analytics\n    min_approvals: 0\n"
        )
    )
    errors = load_project(folder).issues.errors
    assert [e.message for e in errors] == [
        "domain 'product': min_approvals must be a whole number from 1 to 10"
    ]
