"""The validation check with the warehouse: a proposal's release is also checked against the
tables it reads when the warehouse is reachable (issue 16, as `tally validate --warehouse`).

An unreachable warehouse is a warning on the check, not a failure: proposals are reviewed
whether or not a warehouse is up, and the definitions are still checked on their own.
"""

from __future__ import annotations

from django.conf import settings

from registry.definitions.issues import Severity
from registry.services.proposal_checks.inputs import CheckInputs, Result
from registry.services.proposal_checks.validation import validation_project, validation_result
from semantic.warehouse.definitions_check import definitions_check_warehouse


def check_validation_with_warehouse(inputs: CheckInputs) -> Result:
    project = validation_project(inputs)
    if not project.issues.errors:
        # Engine text stays out of check details (they reach every reader of the proposal).
        definitions_check_warehouse(
            project,
            config=settings.WAREHOUSE,
            show_warehouse_text=False,
            unreachable=Severity.WARNING,
        )
    return validation_result(project, inputs)
