"""Issue 18, principle 3 and Low: the timeline and contract audits show a tenant-bound reader
nothing computed over rows its row policies do not let it read.

The numbers check's summary ("largest monthly change: mrr +12.3% in 2026-10") sits in the
audit row the proposal timeline returns to anyone with ``read``; it now follows the check's
own visibility. Contract audit observations (row counts, null and duplicate shares) are
measured over every tenant: a tenant-bound reader gets their status and threshold, not the
observed value, with a count and the reason.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from semantic.jobs.audits import audit_run
from semantic.permissions import HIDDEN_CHECK_REASON, MSG_AUDIT_HIDDEN
from tests.registry.proposals_setup import MRR_HALF_CHURN
from tests.security.proposal_setup import (
    AUTHOR,
    persona,
    propose,
    reader,
    registry,
    tenants,
    warehouse_path,
)

pytestmark = pytest.mark.django_db
__all__ = ["registry", "warehouse_path"]  # fixtures


@time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), tick=False)
def test_the_timeline_shows_a_numbers_summary_only_to_readers_who_may_see_the_numbers(
    registry: None,
    warehouse_path: Path,
    client: Client,
    django_user_model: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Another tenant's reader read the author's tenant's MRR change in the timeline."""
    mine, other = tenants(warehouse_path)[:2]
    author = persona(django_user_model, AUTHOR, None, tenant_id=mine)
    proposal = propose(django_capture_on_commit_callbacks, author, {"mrr.yml": MRR_HALF_CHURN})
    url = f"/api/v1/proposals/{proposal.pk}/timeline"

    def numbers_event(user: Any) -> dict[str, Any]:
        response = reader(client, user).get(url)
        assert response.status_code == 200, response.content
        (event,) = [
            e
            for e in response.json()
            if e["action"] == "proposal.check" and e["payload"]["kind"] == "numbers"
        ]
        return dict(event["payload"])

    colleague = persona(django_user_model, "colleague", "analyst", tenant_id=mine)
    assert numbers_event(colleague)["summary"].startswith("largest monthly change: mrr")
    stranger = persona(django_user_model, "stranger", "analyst", tenant_id=other)
    hidden = numbers_event(stranger)
    assert "largest monthly change" not in hidden["summary"]
    assert "mrr" not in str(hidden.get("metrics", ""))
    assert hidden["hidden"]["reason"] == HIDDEN_CHECK_REASON
    assert hidden["hidden"]["count"] >= 1
    assert hidden["status"] == "passed"  # what happened stays visible; the numbers do not
    auditor = persona(django_user_model, "audrey", "auditor")
    assert numbers_event(auditor)["summary"].startswith("largest monthly change: mrr")


def test_contract_audit_observations_over_every_tenant_are_hidden_from_a_tenant_reader(
    registry: None, warehouse_path: Path, client: Client, django_user_model: Any
) -> None:
    """A tenant-bound analyst read row counts and shares measured over every tenant's rows
    of the tables its row policy narrows; it now reads status and threshold, and a count."""
    results = audit_run(contracts=["users", "events"], checks=("contracts",))
    measured = [r for r in results if r.check_name != "schema_drift" and r.observed is not None]
    assert measured  # the audit did measure rows

    stranger = persona(
        django_user_model, "stranger", "analyst", tenant_id=tenants(warehouse_path)[1]
    )
    body = reader(client, stranger).get("/api/v1/audits?limit=500").json()
    contract_rows = [r for r in body["results"] if r["check_name"] != "schema_drift"]
    assert contract_rows
    assert all(r["observed"] is None for r in contract_rows)
    assert all(r["message"] == MSG_AUDIT_HIDDEN for r in contract_rows)
    assert body["hidden"] == {"count": len(contract_rows), "reason": MSG_AUDIT_HIDDEN}
    assert {r["status"] for r in contract_rows} <= {"pass", "fail", "error"}
    page = reader(client, stranger).get("/audits")
    assert page.status_code == 200
    assert MSG_AUDIT_HIDDEN in html.unescape(page.content.decode())

    auditor = persona(django_user_model, "audrey", "auditor")
    body = reader(client, auditor).get("/api/v1/audits?limit=500").json()
    assert any(r["observed"] is not None for r in body["results"])
    assert "hidden" not in body
