"""Who may do what on a page, one small function per decision (pages ask these to show a
button; the views require the same action, and the services still enforce their own rules
when the button is pressed).

Each answer is the action the API endpoint requires (``registry.permissions.user_can``, roles
from ``registry/roles.py``) combined with the review policy
(``registry/services/review_policy.py``) where a proposal's own rules apply: who reviews,
authors never reviewing their own.
"""

from __future__ import annotations

from typing import Any

from registry.models import Definition, Proposal
from registry.permissions import user_can
from registry.roles import Action
from registry.services.review_policy import Policy, can_review

REVIEWABLE_STATES = (
    Proposal.State.OPEN,
    Proposal.State.CHANGES_REQUESTED,
    Proposal.State.APPROVED,
)
UNMERGED_STATES = (Proposal.State.DRAFT, *REVIEWABLE_STATES)


def _author(user: Any, proposal: Proposal) -> bool:
    return proposal.author_id == getattr(user, "pk", None)


def may_propose(user: Any, definition: Definition | None = None) -> bool:
    """Start a proposal (edit a definition): ``propose`` in the definition's domain."""
    return user_can(user, Action.PROPOSE, obj=definition)


def may_review(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Approve or request changes: ``review`` in a domain of the proposal and a team the
    policy names (or data governance), never the author."""
    if proposal.state not in REVIEWABLE_STATES or _author(user, proposal):
        return False
    return user_can(user, Action.REVIEW, obj=proposal) and can_review(user, policy)


def may_merge(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Merge: ``merge`` in every domain of the proposal, as its author or a reviewer, while it
    is open (blockers are shown apart)."""
    if proposal.state not in REVIEWABLE_STATES:
        return False
    if not user_can(user, Action.MERGE, obj=proposal):
        return False
    return _author(user, proposal) or can_review(user, policy)


def may_close(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Close an unmerged proposal: ``propose``, as its author or a reviewer."""
    if proposal.state not in UNMERGED_STATES or not user_can(user, Action.PROPOSE):
        return False
    return _author(user, proposal) or can_review(user, policy)


def may_open(user: Any, proposal: Proposal) -> bool:
    """Open a draft for review: its author, with ``propose``."""
    return (
        proposal.state == Proposal.State.DRAFT
        and _author(user, proposal)
        and user_can(user, Action.PROPOSE)
    )


def may_comment(user: Any, proposal: Proposal) -> bool:
    """Comment: ``comment`` (every role), on a proposal that is not merged."""
    return proposal.state != Proposal.State.MERGED and user_can(user, Action.COMMENT)


def may_rerun_checks(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Re-run the checks (warehouse queries): the author or a reviewer, before a merge."""
    return may_close(user, proposal, policy)


def may_revise(user: Any, proposal: Proposal) -> bool:
    """Push a revision (edit and resubmit): the author, with ``propose``, before a merge."""
    return (
        proposal.state in UNMERGED_STATES
        and _author(user, proposal)
        and user_can(user, Action.PROPOSE, obj=proposal)
    )


def may_rebase(user: Any, proposal: Proposal, policy: Policy, *, stale: bool) -> bool:
    """Rebase onto the latest release: the author or a reviewer, when a release was published
    after the proposal's base."""
    return stale and may_close(user, proposal, policy)
