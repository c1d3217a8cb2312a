"""The checks every proposal revision gets. This floor holds the rows' services and the checks
that decide merge (``BLOCKING_CHECKS``: validation, contracts, compile); the impact and
numbers checks read stored values and the warehouse, so they live in
``semantic/proposal_checks/``, which also runs a check by kind (``proposal_check_run``).
"""

from registry.services.proposal_checks.records import (
    proposal_check_claim,
    proposal_check_record,
    proposal_checks_rerun,
)

__all__ = ["proposal_check_claim", "proposal_check_record", "proposal_checks_rerun"]
