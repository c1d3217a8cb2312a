"""Issue #5 'done when', over HTTP on the fixtures registry and a demo warehouse."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from tests.registry.factories import UserFactory
from tests.registry.proposals_setup import MRR_HALF_CHURN, bind_to_tenant

pytestmark = pytest.mark.django_db

QUERY = {"metrics": ["mrr"], "group_by": ["metric_time__month"], "start_time": "2026-10-01",
         "end_time": "2026-10-31"}  # fmt: skip


@time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), tick=False)
def test_change_to_mrr_is_proposed_checked_approved_certified_merged_and_r1_still_answers(
    client: Client, analyst: Any, warehouse_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """From the API alone: propose a change to mrr, a reviewer sees the checks and the
    numbers diff, finance and data governance approve, it merges into r2, and pinning r1
    still returns the old numbers."""
    capture = django_capture_on_commit_callbacks
    # A tenant-bound editor: the numbers check runs under her row policy.
    bind_to_tenant(analyst, warehouse_path)
    reviewer = UserFactory(username="tomas.silva@tally.example")
    governor = UserFactory(username="ada.nwosu@tally.example")

    client.force_login(analyst)
    with capture(execute=True):
        created = client.post(
            "/api/v1/proposals",
            {"title": "MRR: count half the churn", "files": {"mrr.yml": MRR_HALF_CHURN}},
            content_type="application/json",
        )
    assert created.status_code == 201, created.json()
    pid = created.json()["proposal"]["id"]

    client.force_login(reviewer)
    # The reviewer holds no tenant binding: numbers computed under the author's tenant policy
    # are hidden from him (counted, with the reason); data governance reads them.
    seen = client.get(f"/api/v1/proposals/{pid}").json()
    numbers = next(c for c in seen["checks"] if c["kind"] == "numbers")
    assert numbers["details"]["hidden"]["count"] >= 1 and not numbers["details"]["metrics"]
    client.force_login(governor)
    page = client.get(f"/api/v1/proposals/{pid}").json()
    client.force_login(reviewer)
    checks = {c["kind"]: c for c in page["checks"]}
    assert {k: c["status"] for k, c in checks.items()} == {
        "compile": "passed",
        "contracts": "passed",
        "impact": "passed",
        "numbers": "passed",
        "validation": "passed",
    }
    (mrr,) = [m for m in checks["numbers"]["details"]["metrics"] if m["metric"] == "mrr"]
    october = next(row for row in mrr["by_month"] if row["key"].startswith("2026-10"))
    assert october["new"] > october["old"] and october["change_pct"] > 0
    assert page["policy"]["required_teams"] == ["data-governance", "finance-data"]
    assert page["policy"]["certifies"] == ["metric:mrr"]

    for user in (reviewer, governor):
        client.force_login(user)
        with capture(execute=True):
            review = client.post(
                f"/api/v1/proposals/{pid}/reviews",
                {"verdict": "approve"},
                content_type="application/json",
            )
        assert review.status_code == 201
    assert review.json()["certifies"] is True

    with capture(execute=True):
        merged = client.post(f"/api/v1/proposals/{pid}/merge")
    assert merged.status_code == 200, merged.json()
    assert merged.json()["proposal"]["merged_release"] == "r2"

    detail = client.get("/api/v1/metrics/mrr").json()
    assert (detail["version"], detail["certified_by"]) == ("2.0", "ada.nwosu@tally.example")
    assert detail["certified_at"] is not None
    assert detail["versions"][0]["certified_by"] == "ada.nwosu@tally.example"
    # The check ran as its author: her own queries answer what it showed.
    client.force_login(analyst)
    old = client.post("/api/v1/query", QUERY | {"release": "r1"}, content_type="application/json")
    new = client.post("/api/v1/query", QUERY | {"release": "r2"}, content_type="application/json")
    assert old.status_code == new.status_code == 200
    assert (old.json()["versions"]["mrr"], new.json()["versions"]["mrr"]) == ("1.0", "2.0")
    assert old.json()["rows"][0][1] == pytest.approx(october["old"])
    assert new.json()["rows"][0][1] == pytest.approx(october["new"])
