"""Stored values under row policies (semantic/permissions.py): compute runs are trusted, so a
stored value is a total over every tenant. A restricted principal may not read the stored
values of a metric a row policy narrows, through the values, revisions and trace APIs; an
auditor (unrestricted) still reads them all."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from registry.services.access import access_profile_set, role_grant
from registry.services.definitions import definitions_sync
from semantic.compiler.manifest import build_manifest
from semantic.compiler.policy_reach import metric_has_row_policies
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import MetricValue
from semantic.permissions import HINT_STORED_VALUES
from semantic.services import manifest_for_release, release_resolve
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

POLICY = {"entity": "person", "filter": "{{ Dimension('person__org') }} = {{ principal.org }}"}


def _model(name: str, entities: list[dict[str, str]], **meta: Any) -> dict[str, Any]:
    return {
        "name": name,
        "node_relation": {"alias": name, "schema_name": "main"},
        "defaults": {"agg_time_dimension": "at"},
        "entities": entities,
        "dimensions": [
            {"name": "at", "type": "time", "type_params": {"time_granularity": "day"}},
            {"name": "org", "type": "categorical"},
        ],
        "measures": [{"name": f"{name}_count", "agg": "count", "expr": "1"}],
        "config": {"meta": meta},
    }


def _metric(name: str, measure: str) -> tuple[str, str, dict[str, Any], str]:
    spec = {"name": name, "type": "simple", "type_params": {"measure": measure}}
    return ("metric", name, spec, "1.0")


def test_a_metric_is_policied_when_a_model_it_reads_or_joins_carries_a_policied_entity() -> None:
    """The aggregated model, and any model a slice or filter can join to, count; a model out
    of reach of every policied entity does not."""
    people = _model("people", [{"name": "person", "type": "primary", "expr": "id"}],
                    tally={"row_policies": [POLICY]})  # fmt: skip
    orders = _model("orders", [{"name": "order", "type": "primary", "expr": "id"},
                               {"name": "person", "type": "foreign", "expr": "person_id"}])  # fmt: skip
    items = _model("items", [{"name": "item", "type": "primary", "expr": "id"},
                             {"name": "order", "type": "foreign", "expr": "order_id"}])  # fmt: skip
    rates = _model("rates", [{"name": "rate", "type": "primary", "expr": "id"}])
    models = [("semantic_model", m["name"], m, "1.0") for m in (people, orders, items, rates)]
    metrics = [_metric(f"{n}_n", f"{n}_count") for n in ("people", "orders", "items", "rates")]
    manifest = build_manifest(models + metrics)
    assert metric_has_row_policies(manifest, "people_n")  # the policy's home
    assert metric_has_row_policies(manifest, "orders_n")  # carries person
    assert metric_has_row_policies(manifest, "items_n")  # joins orders, which carries person
    assert not metric_has_row_policies(manifest, "rates_n")
    assert metric_has_row_policies(manifest, "no_such_metric")  # unknown: fail closed


@pytest.fixture
def computed(db: None, tmp_path: Path, warehouse_path: Path, settings: Settings) -> MetricValue:
    """fixtures/ on a copy of the demo warehouse, events_tracked computed for a week."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    run = compute_run_create(metrics=["events_tracked"], start=dt.date(2026, 10, 1),
                             end=dt.date(2026, 10, 7), enqueue=False, acting_user=None)  # fmt: skip
    assert compute_run_execute(run_id=run.pk).status == "succeeded"
    assert metric_has_row_policies(manifest_for_release(release_resolve(None)), "events_tracked")
    value = MetricValue.objects.filter(metric_name="events_tracked").first()
    assert value is not None
    return value


def _user(django_user_model: Any, name: str, role: str, **attributes: Any) -> Any:
    user = django_user_model.objects.create_user(name)
    role_grant(user=user, role=role)
    if attributes:
        access_profile_set(user=user, attributes=attributes)
    return user


def test_values_apis_refuse_a_tenant_bound_analyst_with_the_reason(
    client: Client, django_user_model: Any, computed: MetricValue
) -> None:
    """Bug: stored values (totals over every tenant) were served to tenant-bound callers."""
    client.force_login(_user(django_user_model, "ana", "analyst", tenant_id="t1"))
    for url in (
        "/api/v1/values?metric=events_tracked",
        f"/api/v1/values/{computed.pk}/revisions",
        f"/api/v1/values/{computed.pk}/trace",
    ):
        response = client.get(url)
        assert response.status_code == 403, url
        error = response.json()["error"]
        assert error["code"] == "stored_values_restricted", url
        assert error["hint"] == HINT_STORED_VALUES and "events_tracked" in error["message"]
    # An unfiltered list leaves the metric out instead of refusing.
    listed = client.get("/api/v1/values")
    assert listed.status_code == 200 and listed.json()["results"] == []


def test_values_apis_still_serve_an_auditor(
    client: Client, django_user_model: Any, computed: MetricValue
) -> None:
    client.force_login(_user(django_user_model, "audrey", "auditor"))
    listed = client.get("/api/v1/values?metric=events_tracked")
    assert listed.status_code == 200 and listed.json()["count"] == 7
    assert client.get("/api/v1/values").json()["count"] == 7
    assert client.get(f"/api/v1/values/{computed.pk}/revisions").status_code == 200
    assert client.get(f"/api/v1/values/{computed.pk}/trace").status_code == 200


@pytest.mark.django_db
def test_a_restricted_principal_reads_the_numbers_diff_without_row_policied_metrics() -> None:
    """A proposal's numbers diff quotes stored totals over every tenant: a tenant-bound
    principal gets it without those metrics (counted, with the reason, and a summary that no
    longer quotes them); an unrestricted one gets it as stored; the stored check is unchanged."""
    from registry.models import ProposalCheck
    from semantic.compiler.principal import Principal
    from semantic.permissions import HIDDEN_CHECK_REASON, MSG_NUMBERS_HIDDEN, checks_visible

    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    metrics = [{"metric": "revenue", "by_month": [{"key": "2026-01", "old": 1, "new": 2}]}]
    numbers = ProposalCheck(kind="numbers", summary="revenue +100%", details={"metrics": metrics})
    other = ProposalCheck(kind="impact", summary="1 downstream", details={"metrics": metrics})
    tenant = Principal("token:bi", {"tenant_id": "t1"})
    shown_numbers, shown_other = checks_visible([numbers, other], principal=tenant)
    assert shown_numbers.details["metrics"] == []
    assert shown_numbers.details["hidden"] == {"count": 1, "reason": HIDDEN_CHECK_REASON}
    assert shown_numbers.summary == MSG_NUMBERS_HIDDEN.format(shown=0, hidden=1)
    assert shown_other is other  # only the numbers diff carries stored totals
    assert numbers.details == {"metrics": metrics} and numbers.summary == "revenue +100%"
    auditor = Principal("user:audrey", unrestricted=True)
    assert checks_visible([numbers], principal=auditor) == [numbers]
    assert checks_visible([numbers], principal=None) == [numbers]
