"""What every proposal service shares: states, messages, the row lock, the state and
permission checks, the audit row (which is also the proposal's timeline) and the side effects
asked for on commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from registry.definitions.changes import content_hash
from registry.models import Proposal, ProposalChange, ProposalCheck, Review
from registry.permissions import access_require
from registry.roles import Action
from registry.services.audit import audit_event_create
from registry.services.review_policy import can_review, proposal_policy_get
from registry.signals import proposal_check_requested, proposal_notification_requested
from tally.errors import ConflictError, NotFound, PermissionDenied, ReviewError
from tally.signals import signal_send_required

UNMERGED = (
    Proposal.State.DRAFT,
    Proposal.State.OPEN,
    Proposal.State.CHANGES_REQUESTED,
    Proposal.State.APPROVED,
)
REVIEWABLE = (Proposal.State.OPEN, Proposal.State.CHANGES_REQUESTED, Proposal.State.APPROVED)

NOT_OPEN = "proposal #{id} is {state}; only {allowed} proposals can be {verb}"
SELF_REVIEW = "you cannot review your own proposal"
NOT_A_REVIEWER = "{user} is not a member of a team that reviews this proposal"
STALE_BASE = "proposal #{id} is based on {base}, but the latest release is {latest}"
MERGE_BLOCKED = "proposal #{id} cannot merge yet: {first}"
DECLASSIFICATION_BLOCKED = "proposal #{id} cannot merge: it {missing}"
NO_CHANGES = "nothing to propose: every definition given matches the latest release"


@dataclass(frozen=True)
class ProposedDefinition:
    """One definition a proposal adds, changes (``spec``) or retires (``spec`` None)."""

    kind: str
    name: str
    spec: dict[str, Any] | None
    file: str = ""
    line: int = 0


def require_signed_in(user: Any) -> None:
    """Refuses an anonymous user (every proposal service names its acting user)."""
    if not getattr(user, "pk", None):
        raise PermissionDenied("sign in to work on proposals", code="not_authenticated")


def proposal_lock(proposal: Proposal | int) -> Proposal:
    """Re-reads the proposal under a row lock (its state may have moved since it was read)."""
    pk = proposal.pk if isinstance(proposal, Proposal) else int(proposal)
    found = Proposal.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(f"proposal {pk} does not exist", code="unknown_proposal")
    return found


def proposal_require_state(proposal: Proposal, allowed: Sequence[str], verb: str) -> None:
    """Refuses unless the proposal is in one of ``allowed`` (409 once merged, else 400)."""
    if proposal.state in allowed:
        return
    error = ConflictError if proposal.state == Proposal.State.MERGED else ReviewError
    raise error(
        NOT_OPEN.format(id=proposal.pk, state=proposal.state, allowed="/".join(allowed), verb=verb),
        code="proposal_merged" if proposal.state == Proposal.State.MERGED else "proposal_not_open",
    )


def proposal_may_manage(user: Any, proposal: Proposal) -> bool:
    """The author or a reviewer of the proposal (who may close, rebase, merge, re-check)."""
    return proposal.author_id == user.pk or can_review(user, proposal_policy_get(proposal=proposal))


def require_propose_in_domains(user: Any, proposal: Proposal) -> None:
    """Proposing needs the propose action in the domain of every changed definition (its new
    and its released one); a refusal rolls the whole write back."""
    access_require(user, Action.PROPOSE, obj=proposal)


def proposal_audit(proposal: Proposal, user: Any, action: str, **payload: Any) -> None:
    """Writes the audit row of one proposal event (the proposal's timeline reads them)."""
    audit_event_create(
        actor=user,
        action=f"proposal.{action}",
        object_kind="proposal",
        object_name=str(proposal.pk),
        release=payload.pop("release", None),
        payload={"revision": proposal.revision, "state": proposal.state, **payload},
    )


def proposal_changes_write(proposal: Proposal, items: Iterable[ProposedDefinition]) -> int:
    """Stores the change set of the proposal's current revision; returns how many rows."""
    rows = [
        ProposalChange(
            proposal=proposal,
            revision=proposal.revision,
            kind=i.kind,
            name=i.name,
            spec=i.spec,
            content_hash=content_hash(i.spec) if i.spec is not None else "",
            source_file=i.file[:500],
            source_line=i.line,
        )
        for i in items
    ]
    ProposalChange.objects.bulk_create(rows)
    return len(rows)


def reviews_dismiss(proposal: Proposal) -> int:
    """Dismisses every review still counting; returns how many."""
    # Approvals were given to what the proposal said then; a new revision needs new ones.
    return Review.objects.filter(proposal=proposal, dismissed=False).update(dismissed=True)


def proposal_checks_enqueue(proposal: Proposal) -> None:
    """Creates the pending checks of the current revision and asks for them to run after
    commit (``proposal_check_requested``: the jobs floor enqueues them, or runs them in-process
    when no broker is configured)."""
    ids = []
    for kind in ProposalCheck.CheckKind.values:
        # Unique (proposal, revision, kind): opening twice never doubles a check.
        check, _ = ProposalCheck.objects.get_or_create(
            proposal=proposal, revision=proposal.revision, kind=kind
        )
        ids.append(check.pk)
    for check_id in ids:
        transaction.on_commit(
            lambda check_id=check_id: signal_send_required(
                proposal_check_requested, sender=ProposalCheck, check_id=check_id
            )
        )


def proposal_notify(proposal: Proposal, event: str) -> None:
    """Asks for the e-mails about one event of a proposal, after commit."""
    pk = proposal.pk
    transaction.on_commit(
        lambda: signal_send_required(
            proposal_notification_requested, sender=Proposal, proposal_id=pk, event=event
        )
    )


def changes_summary(items: Sequence[ProposedDefinition]) -> list[str]:
    """``~ metric:mrr`` / ``- metric:old`` lines for the audit payload."""
    return [f"{'-' if i.spec is None else '~'} {i.kind}:{i.name}" for i in items]
