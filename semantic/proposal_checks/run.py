"""Runs one proposal check by kind: claimed (exactly one worker), computed outside any
transaction, recorded with ``proposal_check_record``. It sits on the semantic floor because
the impact and numbers checks read stored values and the warehouse."""

from __future__ import annotations

import logging
from collections.abc import Callable

from registry.models import ProposalCheck
from registry.services.proposal_checks.compile import check_compile
from registry.services.proposal_checks.contracts import check_contracts
from registry.services.proposal_checks.inputs import CheckInputs, Result, Status
from registry.services.proposal_checks.records import (
    jsonable,
    proposal_check_claim,
    proposal_check_record,
)
from semantic.proposal_checks.impact import check_impact
from semantic.proposal_checks.numbers import check_numbers
from semantic.proposal_checks.warehouse import check_validation_with_warehouse
from tally.errors import UserError

logger = logging.getLogger("tally.checks")

CHECKS: dict[str, Callable[[CheckInputs], Result]] = {
    ProposalCheck.CheckKind.VALIDATION: check_validation_with_warehouse,
    ProposalCheck.CheckKind.CONTRACTS: check_contracts,
    ProposalCheck.CheckKind.COMPILE: check_compile,
    ProposalCheck.CheckKind.IMPACT: check_impact,
    ProposalCheck.CheckKind.NUMBERS: check_numbers,
}


def proposal_check_run(*, check_id: int) -> ProposalCheck | None:
    """Runs one check if it is still pending (idempotent) and records the outcome."""
    if not proposal_check_claim(check_id=check_id):
        return None
    check = ProposalCheck.objects.select_related("proposal__base_release").get(pk=check_id)
    try:
        status, summary, details = CHECKS[check.kind](CheckInputs(check.proposal, check.revision))
    except UserError as exc:
        status, summary, details = Status.ERROR, exc.message, {"error": exc.as_body()}
    except Exception as exc:  # a bug must not leave the check "running" forever
        logger.exception("check %s of proposal %s crashed", check.kind, check.proposal_id)
        status, summary, details = Status.ERROR, f"internal error: {type(exc).__name__}", {}
    return proposal_check_record(
        check_id=check_id, status=status, summary=summary, details=jsonable(details)
    )
