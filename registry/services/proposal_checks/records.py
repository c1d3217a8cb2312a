"""Proposal check rows: claiming one, recording its outcome, re-running a revision's checks.

A check is claimed with a conditional UPDATE (pending → running, exactly one row), computed
outside any transaction (the numbers diff runs warehouse queries for seconds), then recorded
by ``proposal_check_record``. Checks of an old revision are still recorded but no longer
decide anything: merge reads the current revision's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry.models import Proposal, ProposalCheck
from registry.services.audit import audit_event_create
from registry.services.proposal_checks.inputs import Status
from registry.services.proposals.base import (
    UNMERGED,
    proposal_checks_enqueue,
    proposal_lock,
    proposal_may_manage,
    proposal_require_state,
)
from tally.errors import PermissionDenied


def proposal_check_claim(*, check_id: int) -> bool:
    """pending → running for exactly one worker; False when another has it (or it is done)."""
    claimed = ProposalCheck.objects.filter(pk=check_id, status=Status.PENDING).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


@transaction.atomic(durable=True)
def proposal_check_record(
    *, check_id: int, status: str, summary: str, details: dict[str, Any], acting_user: Any = None
) -> ProposalCheck:
    """Stores a check's outcome (running → passed/failed/error) with an audit row."""
    check = ProposalCheck.objects.select_for_update().select_related("proposal").get(pk=check_id)
    check.status, check.summary, check.details = status, summary[:2000], details
    check.finished_at = timezone.now()
    check.save(update_fields=["status", "summary", "details", "finished_at"])
    payload: dict[str, Any] = {
        "kind": check.kind,
        "revision": check.revision,
        "status": status,
        "summary": summary,
    }
    if "computed_as" in details:
        # The timeline shows the summary under the check's own visibility rule
        # (semantic.permissions.timeline_visible): whom it ran as, and which metrics it covers.
        payload["computed_as"] = details["computed_as"]
        entries = [m for m in details.get("metrics") or [] if isinstance(m, dict)]
        payload["metrics"] = [str(m.get("metric")) for m in entries]
        payload["unpolicied_metrics"] = [
            str(m.get("metric")) for m in entries if m.get("row_policied") is False
        ]
    audit_event_create(
        actor=acting_user,
        action="proposal.check",
        object_kind="proposal",
        object_name=str(check.proposal_id),
        payload=payload,
    )
    return check


def jsonable(value: Any) -> Any:
    """A check's details as JSON (decimals as floats, dates as ISO text)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


@transaction.atomic(durable=True)
def proposal_checks_rerun(*, proposal: Proposal, acting_user: Any) -> list[ProposalCheck]:
    """Resets the current revision's checks to pending and runs them again (also the ones a
    lost worker left running); refused once the proposal is merged or closed."""
    if not getattr(acting_user, "pk", None):
        raise PermissionDenied("sign in to re-run checks", code="not_authenticated")
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, UNMERGED, "re-checked")
    # The checks query the warehouse: as for closing, only the author or a reviewer.
    if not proposal_may_manage(acting_user, proposal):
        raise PermissionDenied(
            "only the author or a reviewer can re-run the checks", code="not_allowed"
        )
    ProposalCheck.objects.filter(proposal=proposal, revision=proposal.revision).update(
        status=Status.PENDING, summary="", details={}, started_at=None, finished_at=None
    )

    proposal_checks_enqueue(proposal)
    audit_event_create(
        actor=acting_user,
        action="proposal.checks_rerun",
        object_kind="proposal",
        object_name=str(proposal.pk),
        payload={"revision": proposal.revision},
    )
    return list(ProposalCheck.objects.filter(proposal=proposal, revision=proposal.revision))
