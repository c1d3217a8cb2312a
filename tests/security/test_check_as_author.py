"""Issue 18, principle 3: a proposal's numbers check runs as its author, and its numbers are
shown only to those who could run the same query.

The check compiled the proposed definitions with no principal (every tenant's rows) and
showed the result to every reader; it now runs under the author's row policies and records
whom it ran as. A reader bound to the same tenant sees the numbers; a reader bound to another
tenant gets them hidden, counted, with the reason; an unrestricted reader sees everything.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from registry.permissions import principal_for
from semantic.compiler.spec import MetricQuery
from semantic.permissions import HIDDEN_CHECK_REASON
from semantic.services import query_execute
from tests.registry.proposals_setup import MRR_HALF_CHURN
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


def _by_month(principal: Any, window: dict[str, Any]) -> dict[str, float]:
    answer = query_execute(
        query=MetricQuery(
            metrics=("mrr",),
            group_by=("metric_time__month",),
            start_time=window["start"],
            end_time=window["end"],
            dialect="duckdb",
        ),
        principal=principal,
    )
    return {row[0].isoformat()[:10]: float(row[1]) for row in answer.rows if row[1] is not None}


@time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), tick=False)
def test_a_tenant_bound_authors_numbers_check_runs_under_the_authors_row_policy(
    registry: None,
    warehouse_path: Path,
    django_user_model: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """The numbers check ran with full trust: a tenant-bound editor read every tenant's MRR.
    Its 'old' numbers are now exactly what the author's own query of today's mrr returns."""
    tenant = tenants(warehouse_path)[0]
    author = persona(django_user_model, AUTHOR, None, tenant_id=tenant)
    proposal = propose(django_capture_on_commit_callbacks, author, {"mrr.yml": MRR_HALF_CHURN})
    numbers = checks(proposal)["numbers"]
    assert numbers.status == "passed", numbers.summary
    (mrr,) = [m for m in numbers.details["metrics"] if m["metric"] == "mrr"]
    old = {row["key"][:10]: row["old"] for row in mrr["by_month"] if row["old"] is not None}
    window = numbers.details["window"]
    own, everyone = _by_month(principal_for(author), window), _by_month(None, window)
    assert old and old == pytest.approx(own)
    # The tenant's MRR is a part of everyone's: the check no longer reads the other tenants.
    assert sum(old.values()) < sum(everyone.values())
    assert numbers.details["computed_as"]["restricted"] is True
    assert tenant not in str(numbers.details["computed_as"])  # a digest, not the binding


@time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), tick=False)
def test_check_numbers_are_shown_to_readers_who_could_run_the_same_query(
    registry: None,
    warehouse_path: Path,
    client: Client,
    django_user_model: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Same tenant: shown. Another tenant: hidden, counted, with the reason (API detail and
    checks endpoint, and the proposal page). Unrestricted auditor: shown."""
    mine, other = tenants(warehouse_path)[:2]
    author = persona(django_user_model, AUTHOR, None, tenant_id=mine)
    proposal = propose(django_capture_on_commit_callbacks, author, {"mrr.yml": MRR_HALF_CHURN})
    url = f"/api/v1/proposals/{proposal.pk}/checks"

    def numbers_for(user: Any) -> dict[str, Any]:
        response = reader(client, user).get(url)
        assert response.status_code == 200, response.content
        (numbers,) = [c for c in response.json() if c["kind"] == "numbers"]
        return dict(numbers)

    colleague = persona(django_user_model, "colleague", "analyst", tenant_id=mine)
    seen = numbers_for(colleague)
    assert "mrr" in {m["metric"] for m in seen["details"]["metrics"]}
    assert "hidden" not in seen["details"]

    stranger = persona(django_user_model, "stranger", "analyst", tenant_id=other)
    hidden = numbers_for(stranger)
    assert "mrr" not in {m["metric"] for m in hidden["details"]["metrics"]}
    assert hidden["details"]["hidden"]["count"] >= 1
    assert hidden["details"]["hidden"]["reason"] == HIDDEN_CHECK_REASON
    assert "largest monthly change" not in hidden["summary"]
    detail = reader(client, stranger).get(f"/api/v1/proposals/{proposal.pk}").json()
    (in_detail,) = [c for c in detail["checks"] if c["kind"] == "numbers"]
    assert in_detail["details"]["hidden"] == hidden["details"]["hidden"]
    page = reader(client, stranger).get(f"/proposals/{proposal.pk}")
    assert page.status_code == 200
    assert b'id="numbers-hidden"' in page.content

    auditor = persona(django_user_model, "audrey", "auditor")
    assert "mrr" in {m["metric"] for m in numbers_for(auditor)["details"]["metrics"]}
