"""A release that changes a metric's numbers backfills its stored values under the new version;
until then (and after) the stored values say which version made them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from registry.models import Release
from registry.services.definitions import definitions_sync
from semantic.jobs.backfill import backfill_stale, metric_recompute, stored_versions
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import ComputeRun, MetricValue, ValueRevision
from tests.conftest import ROOT

START, END = dt.date(2026, 9, 1), dt.date(2026, 9, 30)
PAID = "{{ Dimension('invoice__status') }} = 'paid'"
PAID_OR_OPEN = "{{ Dimension('invoice__status') }} IN ('paid', 'open')"


def _project(tmp_path: Path, *, filter_: str = PAID, description: str | None = None) -> Path:
    root = tmp_path / "project"
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(ROOT / "fixtures", root)
    path = root / "metrics" / "revenue.yml"
    text = path.read_text().replace(PAID, filter_, 1)
    if description:
        text = text.replace("Amount of paid invoices, by invoice issue date.", description, 1)
    path.write_text(text)
    return root


def _computed_revenue(tmp_path: Path) -> Release:
    definitions_sync(root=_project(tmp_path), acting_user=None)
    run = compute_run_create(
        metrics=["revenue"], start=START, end=END, enqueue=False, acting_user=None
    )
    assert compute_run_execute(run_id=run.pk).status == "succeeded"
    return Release.objects.order_by("-number").first()


@pytest.mark.django_db(transaction=True)
def test_a_numbers_changing_release_backfills_and_keeps_the_old_series(
    tmp_path: Path, own_warehouse: Path, settings: Settings
) -> None:
    settings.TALLY_BACKFILL_ON_RELEASE = True
    first = _computed_revenue(tmp_path)
    before = dict(MetricValue.objects.filter(metric_name="revenue").values_list("pk", "value"))
    assert {s.stale for s in stored_versions(release=first, metrics=["revenue"])} == {False}

    definitions_sync(root=_project(tmp_path, filter_=PAID_OR_OPEN), acting_user=None)
    second = Release.objects.order_by("-number").first()
    assert second.number == first.number + 1
    backfills = list(ComputeRun.objects.filter(trigger="backfill"))
    assert len(backfills) == 1 and backfills[0].status == "succeeded", backfills
    assert backfills[0].release_id == second.pk and backfills[0].metrics == ["revenue"]
    assert backfills[0].start <= START and backfills[0].end == END

    (state,) = stored_versions(release=second, metrics=["revenue"])
    assert not state.stale and state.shown_versions == [state.current] == ["2.0"]
    values = MetricValue.objects.filter(metric_name="revenue")
    assert {v.metric_version.semver for v in values} == {"2.0"}
    # Paid + open is more than paid on some day, and each changed value keeps the old one.
    changed = [v for v in values if v.value != before[v.pk]]
    assert changed
    for value in changed:
        revision = ValueRevision.objects.get(value=value, run=backfills[0])
        assert revision.old_value == before[value.pk]
        assert revision.old_run.release_id == first.pk
    # Idempotent: the release already has its backfill.
    assert backfill_stale(release=second) == []


@pytest.mark.django_db(transaction=True)
def test_stale_values_say_so_until_backfilled_and_a_minor_change_recomputes_nothing(
    tmp_path: Path, own_warehouse: Path, settings: Settings
) -> None:
    settings.TALLY_BACKFILL_ON_RELEASE = False
    first = _computed_revenue(tmp_path)
    definitions_sync(
        root=_project(tmp_path, description="Paid invoices by issue date."), acting_user=None
    )
    minor = Release.objects.order_by("-number").first()
    (state,) = stored_versions(release=minor, metrics=["revenue"])
    assert state.current == "1.1" and state.shown_versions == ["1.0"] and not state.stale
    assert backfill_stale(release=minor) == []

    definitions_sync(root=_project(tmp_path, filter_=PAID_OR_OPEN), acting_user=None)
    major = Release.objects.order_by("-number").first()
    (state,) = stored_versions(release=major, metrics=["revenue"])
    assert state.stale and state.backfill is None and state.shown_versions == ["1.0"]
    assert state.current.startswith("2.")
    # Recompute by hand (the UI's action): queued under the release, over the stored range.
    (run,) = metric_recompute(metric="revenue", release=major, acting_user=None)
    assert run.release_id == major.pk and run.grain == "day" and run.end == END
    assert first.number < major.number


@pytest.mark.django_db(transaction=True)
def test_the_pages_say_which_version_the_numbers_come_from_and_recompute_them(
    tmp_path: Path, own_warehouse: Path, settings: Settings, client: Any, django_user_model: Any
) -> None:
    """Metric page and trace name the superseded version; governance recomputes from the UI;
    an auditor (no ``compute``) sees the note but no button."""
    from registry.services.access import role_grant

    settings.TALLY_BACKFILL_ON_RELEASE = False
    _computed_revenue(tmp_path)
    definitions_sync(root=_project(tmp_path, filter_=PAID_OR_OPEN), acting_user=None)
    auditor = django_user_model.objects.create_user("auditor")
    role_grant(user=auditor, role="auditor")
    client.force_login(auditor)
    page = client.get("/metrics/revenue").content.decode()
    assert 'id="version-note"' in page
    assert "revenue v1.0" in page and "is <strong>v2.0</strong>" in page
    assert "No backfill has run yet" in page and "Recompute under" not in page
    old = MetricValue.objects.filter(metric_name="revenue").first()
    trace = client.get(f"/values/{old.pk}/trace").content.decode()
    assert 'id="superseded"' in trace and "superseded by v2.0" in trace
    assert client.post("/metrics/revenue/recompute").status_code == 403

    governance = django_user_model.objects.create_user("gov")
    role_grant(user=governance, role="governance")
    client.force_login(governance)
    assert "Recompute under v2.0" in client.get("/metrics/revenue").content.decode()
    response = client.post("/metrics/revenue/recompute")
    run = ComputeRun.objects.order_by("-id").first()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}"
    assert run.status == "succeeded"  # tasks run in-process here
    response = client.get("/metrics/revenue")
    page = response.content.decode()
    assert 'id="version-note"' not in page
    # The previous definition's numbers stay comparable: a dashed line on the same chart.
    series = response.context["series"]
    assert series.previous_version == "1.0" and 'id="previous-legend"' in page
    changed = [p for p in series.points if p["previous"] != p["value"]]
    assert changed and all(p["previous"] is not None for p in changed)
    assert len(changed) < len(series.points)  # days the new definition did not change
    trace = client.get(f"/values/{old.pk}/trace").content.decode()
    assert 'id="superseded"' not in trace and "v1.0 → v2.0" in trace
