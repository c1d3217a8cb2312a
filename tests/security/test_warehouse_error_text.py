"""Issue 18, principle 3: the warehouse's own error text never reaches a user.

The numbers check wrote DuckDB's ``Could not convert string '…' to INT`` into the check
summary and the audit row that the timeline returns to anyone with ``read``: a derived
``expr`` reading a file through ``read_text()`` leaked the file, and a CAST of a column
leaked its values (and made the check's status an oracle). Every interface now shows a
stable code and a generic message with a reference; the raw text goes to the server log under
that reference and, where an interface shows details, to administrators only.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import AnonymousUser
from django.test import Client, RequestFactory

from semantic.sqlapi.session import tally_sql_error
from tally.errors import (
    WAREHOUSE_HIDDEN_MESSAGE,
    QueryError,
    UserError,
    WarehouseError,
    error_body,
)
from tests.conftest import ROOT
from tests.security.proposal_setup import (
    AUTHOR,
    checks,
    persona,
    propose,
    reader,
    registry,
    tenants,
    warehouse_path,
)

pytestmark = pytest.mark.django_db
__all__ = ["registry", "warehouse_path"]  # fixtures

SECRET = "TALLY-SECRET-4f1d"
RAW = f"Conversion Error: Could not convert string '{SECRET}' to INT32"


def _file_read_proposal(tmp_path: Path) -> dict[str, str]:
    """The issue's exfiltration: a derived expr that CASTs a file's contents to INT."""
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    return {
        "mrr.yml": f"""\
metrics:
  - name: mrr
    label: MRR
    type: derived
    type_params:
      expr: "CAST((SELECT content FROM read_text('{secret}')) AS INT) + mrr_started_to_date - mrr_ended_to_date"
      metrics:
        - name: mrr_started_to_date
        - name: mrr_ended_to_date
    config:
      meta: {{owner: finance-data, domain: revenue, tier: certified}}
"""
    }


def _cast_oracle_proposal(tmp_path: Path) -> dict[str, str]:
    """A measure that CASTs a text column: the error quotes the column's values."""
    text = (ROOT / "fixtures/semantic_models/subscriptions.yml").read_text()
    started = "        agg: sum\n        expr: mrr\n"
    assert started in text
    return {"subscriptions.yml": text.replace(started, "        agg: sum\n        expr: CAST(plan AS INTEGER)\n", 1)}  # fmt: skip


@pytest.mark.parametrize("make", [_file_read_proposal, _cast_oracle_proposal])
@time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), tick=False)
def test_a_proposals_warehouse_error_text_never_reaches_a_non_admin(
    make: Any,
    tmp_path: Path,
    registry: None,
    warehouse_path: Path,
    client: Client,
    django_user_model: Any,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the check summary, its details, the timeline's audit payloads nor the proposal
    page quote the warehouse; the server log has the text under the reference shown."""
    # Bound to a tenant, so that the check reads rows (and the warehouse evaluates the CAST).
    author = persona(django_user_model, AUTHOR, None, tenant_id=tenants(warehouse_path)[0])
    caplog.set_level(logging.WARNING, logger="tally.errors")
    try:
        proposal = propose(django_capture_on_commit_callbacks, author, make(tmp_path))
    except UserError as exc:  # refused up front (definitions are data): nothing ran
        assert "Could not convert" not in exc.message and SECRET not in exc.message
        return
    numbers = checks(proposal)["numbers"]
    failed = [m for m in numbers.details.get("metrics", []) if "error" in m]
    assert failed, numbers.details  # the warehouse did reject the proposed definition
    error = failed[0]["error"]
    assert error["code"] == "warehouse_error"
    assert "reference" in error["message"]
    reference = error["message"].rsplit(" ", 1)[-1]
    # The raw text is in the server log, under the reference the user reads.
    logged = [r.getMessage() for r in caplog.records if reference in r.getMessage()]
    assert logged and "Could not convert" in logged[0]

    auditor = persona(django_user_model, "audrey", "auditor")
    editor = persona(django_user_model, "eddie", "analyst")
    for user in (auditor, editor, author):
        browser = reader(client, user)
        for url in (
            f"/api/v1/proposals/{proposal.pk}",
            f"/api/v1/proposals/{proposal.pk}/checks",
            f"/api/v1/proposals/{proposal.pk}/timeline",
            f"/proposals/{proposal.pk}",
        ):
            response = browser.get(url)
            assert response.status_code == 200, (url, response.content[:300])
            body = response.content.decode()
            assert "Could not convert" not in body, url
            assert SECRET not in body, url


def test_a_warehouse_error_is_a_code_and_a_generic_message_with_a_logged_reference(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The one error type every executor raises hides the warehouse's text at construction
    (its message is stored in check summaries, audit rows and run errors long before any
    interface renders it); the text is logged once under the reference."""
    caplog.set_level(logging.WARNING, logger="tally.errors")
    exc = WarehouseError(RAW, code="warehouse_error", details={"dialect": "duckdb"})
    assert exc.reference is not None
    assert exc.message == WAREHOUSE_HIDDEN_MESSAGE.format(
        code="warehouse_error", reference=exc.reference
    )
    assert SECRET not in str(exc) and SECRET not in str(exc.as_body())
    assert SECRET not in "\n".join(exc.cli_lines())
    assert exc.details == {"dialect": "duckdb", "reference": exc.reference}
    assert any(exc.reference in r.getMessage() and SECRET in r.getMessage() for r in caplog.records)
    # The SQL API's mapping: a stable SQLSTATE and the generic text.
    sql_error = tally_sql_error(exc)
    assert sql_error.sqlstate == "58000" and SECRET not in sql_error.message
    # Fail closed: a WarehouseError with a code Tally does not know is hidden too.
    assert SECRET not in WarehouseError(RAW, code="warehouse_new_kind").message
    # Tally's own messages are unchanged (a timeout; a user error with did-you-mean).
    timeout = WarehouseError("the query ran longer than 60 s", code="warehouse_timeout")
    assert timeout.message == "the query ran longer than 60 s"
    unknown = QueryError("unknown metric 'mrrr'", code="unknown_metric", hint="did you mean mrr?")
    assert error_body(unknown)["message"] == "unknown metric 'mrrr'"


def test_only_an_administrator_reads_the_warehouse_text_where_details_are_shown(
    django_user_model: Any, rf: RequestFactory
) -> None:
    """API and UI renderers add ``details.warehouse_message`` for a superuser or the admin
    role, never for anyone else (an auditor, an anonymous caller)."""
    exc = WarehouseError(RAW)
    request = rf.get("/api/v1/query")
    request.user = AnonymousUser()
    assert SECRET not in str(error_body(exc, request=request))
    request.user = persona(django_user_model, "audrey", "auditor")
    assert SECRET not in str(error_body(exc, request=request))
    request.user = persona(django_user_model, "root", None)
    request.user.is_superuser = True
    request.user.save()
    admin = error_body(exc, request=request)
    assert admin["details"]["warehouse_message"] == RAW
    assert SECRET not in admin["message"]
    request.user = persona(django_user_model, "ada", "admin")
    assert error_body(exc, request=request)["details"]["warehouse_message"] == RAW
