"""Review figures: the numbers diff of one metric over 90 days, and a proposal page with 50
changed definitions through the API.

Targets (issue #5): numbers diff on the 10M-event warehouse ≤ 3 s median; proposal page
with 50 changed definitions ≤ 200 ms. Runs in a subprocess with its own SQLite registry
(fixtures/ synced as r1). Baseline measured in the same run: ``floor: one mrr query`` (the new
definition's monthly query alone, compiled and run once on the warehouse).

    python -m bench proposals                              # builds a 10M-event warehouse
    python -m bench proposals --warehouse var/warehouse.duckdb --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.runner import Benchmark, Row, Stats, run_worker

DEFAULT_EVENTS = 10_000_000
SEED = 42
PAGE_CHANGES = 50
MRR_CHANGE = """\
metrics:
  - name: mrr
    label: MRR
    type: derived
    type_params:
      expr: mrr_started_to_date - 0.5 * mrr_ended_to_date
      metrics:
        - name: mrr_started_to_date
        - name: mrr_ended_to_date
    config:
      meta: {owner: finance-data, domain: revenue, tier: certified}
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", type=Path, default=None, help="an existing demo DuckDB")
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)


def run(options: argparse.Namespace) -> list[Row]:
    repeat = options.repeat or 5
    with tempfile.TemporaryDirectory(prefix="tally-bench-proposals-") as tmp:
        warehouse = options.warehouse
        if warehouse is None:
            from semantic.demo import build_demo_warehouse

            warehouse = Path(tmp) / "warehouse.duckdb"
            build_demo_warehouse(warehouse, events=options.events, seed=SEED)
        samples: dict[str, Any] = run_worker(
            [sys.executable, "-m", "bench.proposals", str(warehouse.resolve()), str(repeat)],
            label="worker",
        )
    return [Row(case, n, Stats(tuple(values))) for case, (n, values) in samples.items()]


# --------------------------------------------------------------------------- worker


def _worker(warehouse: str, repeat: int) -> dict[str, tuple[int, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="tally-bench-proposals-db-") as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'registry.sqlite3'}"
        os.environ["WAREHOUSE_URL"] = f"duckdb:///{warehouse}"
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
        os.environ.setdefault("TALLY_DEMO", "1")  # demo data: development secrets
        return _measure_all(repeat)


def _measure_all(repeat: int) -> dict[str, tuple[int, list[float]]]:
    import datetime as dt
    import time

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from registry.definitions.export import ExportItem, export_files
    from registry.selectors import release_items_for_export, release_specs
    from registry.services.definitions import definitions_sync
    from registry.services.proposal_checks.inputs import CheckInputs
    from registry.services.proposals import proposal_create
    from semantic.compiler.api import compile_query
    from semantic.compiler.spec import MetricQuery
    from semantic.demo import DEFAULT_END_DATE
    from semantic.proposal_checks.numbers import check_numbers
    from semantic.warehouse.execute import execute
    from tests.conftest import ROOT

    call_command("migrate", verbosity=0)
    r1 = definitions_sync(root=ROOT / "fixtures", acting_user=None).release
    user = get_user_model().objects.get(username="sara.okafor@tally.example")
    out: dict[str, tuple[int, list[float]]] = {}

    # 1. Numbers diff of mrr alone (old and new, by month and by main dimension).
    settings.TALLY_NUMBERS_DIFF_MAX_METRICS = 1
    mrr = proposal_create(
        acting_user=user, title="bench mrr", files={"mrr.yml": MRR_CHANGE}, open_now=False
    )
    today = DEFAULT_END_DATE + dt.timedelta(days=1)
    inputs = CheckInputs(mrr, mrr.revision)
    status, summary, _ = check_numbers(inputs, today=today)
    assert status == "passed", summary
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        check_numbers(CheckInputs(mrr, mrr.revision), today=today)
        samples.append(time.perf_counter() - started)
    out["numbers_diff mrr 90d"] = (1, samples)
    query = MetricQuery(
        metrics=("mrr",),
        group_by=("metric_time__month",),
        start_time=(today - dt.timedelta(days=90)).isoformat(),
        end_time=today.isoformat(),
        dialect=settings.WAREHOUSE.dialect,
    )
    floor = []
    for _ in range(repeat):
        started = time.perf_counter()
        sql = compile_query(query, inputs.manifest(new=True)).sql
        execute(settings.WAREHOUSE, sql)
        floor.append(time.perf_counter() - started)
    out["floor: one mrr query"] = (1, floor)

    # 2. A proposal changing 50 metrics (label and description), its page over the API.
    specs = release_specs(release=r1)
    items = []
    for item in release_items_for_export(release=r1):
        if item.kind == "metric" and len(items) < PAGE_CHANGES:
            spec = dict(item.spec)
            items.append(
                ExportItem(item.kind, item.name, {**spec, "label": f"{spec.get('label')} (v2)"})
            )
    assert len(items) == PAGE_CHANGES and specs
    settings.TALLY_NUMBERS_DIFF_MAX_METRICS = 10
    page = proposal_create(
        acting_user=user, title="bench page", files=export_files(items), open_now=True
    )
    client = Client()
    client.force_login(user)
    for _ in range(3):  # warm the connection and caches
        assert client.get(f"/api/v1/proposals/{page.pk}").status_code == 200
    samples = []
    for _ in range(repeat * 4):
        started = time.perf_counter()
        response = client.get(f"/api/v1/proposals/{page.pk}")
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    assert len(response.json()["changes"]) == PAGE_CHANGES
    out["proposal page, 50 changes"] = (PAGE_CHANGES, samples)
    return out


BENCHMARK = Benchmark(
    description="numbers diff of mrr over 90 days; proposal page API with 50 changed metrics",
    run=run,
    add_arguments=add_arguments,
    baseline="floor",
)


if __name__ == "__main__":
    print(json.dumps(_worker(sys.argv[1], int(sys.argv[2]))))
