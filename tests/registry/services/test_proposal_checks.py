"""Proposal checks on the fixtures registry: numbers diff on a real warehouse, impact,
compile on every dialect, contracts, validation, idempotence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import time_machine

from registry.models import Proposal, ProposalCheck
from registry.services.proposals import proposal_create
from semantic.proposal_checks.run import proposal_check_run
from tests.conftest import ROOT
from tests.registry.proposals_setup import MRR_HALF_CHURN, bind_to_tenant, committed

pytestmark = pytest.mark.django_db


def _checks(proposal: Proposal) -> dict[str, ProposalCheck]:
    return {c.kind: c for c in ProposalCheck.objects.filter(proposal=proposal)}


@time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), tick=False)
def test_numbers_diff_shows_old_and_new_mrr_by_month_and_by_main_dimension(
    analyst: Any, warehouse_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    """A reviewer sees 'MRR rises n% in October' before approving: old and new values for
    the last 90 days by month and by the metric's main dimension, with the change (run as
    the author, a tenant-bound editor: the author's tenant's numbers)."""
    bind_to_tenant(analyst, warehouse_path)
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=analyst,
        title="MRR counting half the churn",
        files={"mrr.yml": MRR_HALF_CHURN},
    )
    numbers = _checks(proposal)["numbers"]
    assert numbers.status == "passed", numbers.summary
    assert numbers.details["window"] == {"start": "2026-08-03", "end": "2026-11-01", "days": 90}
    (mrr,) = [m for m in numbers.details["metrics"] if m["metric"] == "mrr"]
    months = {row["key"][:7]: row for row in mrr["by_month"]}
    assert {"2026-08", "2026-09", "2026-10"} <= set(months)
    october = months["2026-10"]
    # Counting half the churn can only raise MRR.
    assert october["new"] > october["old"] > 0
    assert october["change_pct"] == round(
        (october["new"] - october["old"]) / october["old"] * 100, 2
    )
    # The main dimension of mrr's first measure's model, in the latest complete month.
    assert (mrr["dimension"], mrr["dimension_period"]) == ("subscription__plan", "2026-10-01")
    assert mrr["by_dimension"]
    assert all(row["new"] >= row["old"] for row in mrr["by_dimension"] if row["old"] is not None)
    # Downstream metrics (arpa divides mrr by accounts) are diffed too.
    assert {m["metric"] for m in numbers.details["metrics"]} >= {"mrr", "arpa"}
    assert numbers.summary.startswith("largest monthly change: ")


def test_impact_lists_downstream_metrics_owners_and_releases(
    analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=analyst,
        title="MRR counting half the churn",
        files={"mrr.yml": MRR_HALF_CHURN},
    )
    impact = _checks(proposal)["impact"]
    assert impact.status == "passed"
    assert impact.details["changed"] == ["metric:mrr"]
    assert impact.details["owners"][0] == "finance-data"
    assert impact.details["releases_pinning_current_versions"] == ["r1"]
    compile_check = _checks(proposal)["compile"]
    assert compile_check.status == "passed"
    assert compile_check.details["dialects"][:3] == ["duckdb", "postgres", "mysql"]


def test_impact_counts_the_stored_values_a_change_would_restate(
    analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Values computed for mrr and for arpa (which divides mrr) are listed per metric."""
    from semantic.jobs.compute import compute_run_create, compute_run_execute

    run = compute_run_create(
        metrics=["mrr", "arpa"], grain="month", start=dt.date(2026, 8, 1),
        end=dt.date(2026, 10, 31), enqueue=False, acting_user=None,
    )  # fmt: skip
    compute_run_execute(run_id=run.pk)
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=analyst,
        title="MRR counting half the churn",
        files={"mrr.yml": MRR_HALF_CHURN},
    )
    impact = _checks(proposal)["impact"]
    stored = {row["metric"]: row for row in impact.details["stored_values"]}
    assert set(stored) == {"mrr", "arpa"}
    assert stored["mrr"] == {
        "metric": "mrr", "grain": "month", "values": 3, "periods": "2026-08-01..2026-10-01"
    }  # fmt: skip
    assert "6 stored value(s)" in impact.summary


def test_a_check_runs_once_per_revision_and_kind(
    analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Tasks are idempotent: a second delivery of a finished check changes nothing."""
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=analyst,
        title="MRR counting half the churn",
        files={"mrr.yml": MRR_HALF_CHURN},
    )
    check = _checks(proposal)["validation"]
    assert proposal_check_run(check_id=check.pk) is None
    assert ProposalCheck.objects.filter(proposal=proposal).count() == 5


def test_removing_a_column_a_model_reads_fails_contracts_and_validation(
    analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    contract = (ROOT / "fixtures/contracts/subscriptions.odcs.yaml").read_text()
    lines = contract.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == "- name: mrr")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("- name:"))
    broken = "".join(lines[:start] + lines[end:])
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=analyst,
        title="Drop mrr column",
        files={"contracts/subscriptions.odcs.yaml": broken},
    )
    checks = _checks(proposal)
    assert checks["contracts"].status == "failed"
    (finding,) = [c for c in checks["contracts"].details["changes"] if c["breaking"]]
    assert finding["read_by"] == ["semantic_model:plan_history", "semantic_model:subscriptions"]
    assert checks["validation"].status == "failed"


def test_validation_checks_a_proposal_against_the_warehouse(
    analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Issue 16: a definition the contract allows but the warehouse cannot run (a sum over
    a text column) passed every check and failed at query time; the validation check now
    reads the warehouse (as `tally validate --warehouse`), without the engine's own text."""
    model = (ROOT / "fixtures/semantic_models/subscriptions.yml").read_text()
    wrong = "        agg: sum\n        expr: mrr\n      - name: mrr_ended\n"
    assert wrong in model
    broken = model.replace(wrong, wrong.replace("expr: mrr", "expr: plan"))
    proposal = committed(
        django_capture_on_commit_callbacks,
        proposal_create,
        acting_user=analyst,
        title="Sum over text",
        files={"semantic_models/subscriptions.yml": broken},
    )
    validation = _checks(proposal)["validation"]
    assert validation.status == "failed", validation.summary
    (issue,) = [i for i in validation.details["issues"] if i["code"] == "warehouse_type"]
    assert issue["message"] == (
        "measure 'mrr_started' of semantic model 'subscriptions' (expr: plan) does not work "
        "on main.subscriptions"
    )
    assert issue["file"] == "semantic_models/subscriptions.yml"
    assert "Binder Error" not in str(validation.details)
