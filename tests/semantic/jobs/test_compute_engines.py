"""A compute run over ClickHouse (chdb) or Spark (local) stores the values the same run
over DuckDB stores (issue 20): same metrics, periods, slices and numbers, one query per
source per chunk on every engine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import ComputeRun, MetricValue, ValueRevision
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

START, END = dt.date(2026, 8, 1), dt.date(2026, 8, 31)
# One or more metrics of each source: events, invoices, accounts, subscriptions (cumulative).
METRICS = ["events_tracked", "daily_active_users", "revenue", "new_accounts", "mrr"]
SLICES = ["account__plan"]


def _run(metrics: list[str], slices: list[str]) -> ComputeRun:
    run = compute_run_create(
        metrics=metrics, start=START, end=END, slices=slices, enqueue=False, acting_user=None
    )
    return compute_run_execute(run_id=run.pk)


def _stored() -> dict[tuple[Any, ...], Any]:
    values = {}
    for v in MetricValue.objects.all():
        number = None if v.value is None else round(float(Decimal(v.value)), 6)
        values[(v.metric_name, v.grain, v.period_start, v.slice_hash)] = number
    return values


@pytest.mark.parametrize(
    "engine", ["chdb", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))]
)
def test_compute_run_stores_duckdb_values(
    engine: str,
    request: pytest.FixtureRequest,
    settings: Settings,
    db: None,
    embedded_demo: Path,
) -> None:
    """The same run stores the same values whichever engine computes them."""
    config = request.getfixturevalue(f"{engine}_warehouse")
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    reference = _run(METRICS, SLICES)
    assert reference.status == "succeeded", reference.error
    expected = _stored()
    assert len(expected) > 100
    MetricValue.objects.all().delete()
    ValueRevision.objects.all().delete()

    settings.WAREHOUSE = config
    run = _run(METRICS, SLICES)
    assert run.status == "succeeded", run.error
    assert run.queries == reference.queries  # one scan per source and chunk, as on DuckDB
    assert _stored() == expected
