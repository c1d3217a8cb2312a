"""Web UI figures: server time of the metric page with 3 years of daily values (target
≤ 150 ms) and of one catalog search-as-you-type request over 10,000 metrics (target ≤ 100 ms).

Pages are requested in-process through Django's test client (server time: routing, session,
queries, templates; no network or browser). Each registry store runs in its own subprocess
(Django binds one DATABASES per process). Baselines measured in the same run: ``floor: values
query`` (the bare read of the stored series the chart draws) and ``floor: search API page``
(the JSON search endpoint the catalog's page is compared with).

    python -m bench ui                         # SQLite and PostgreSQL
    python -m bench ui --stores sqlite --repeat 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.runner import Benchmark, Row, Stats, run_worker

STORES = ("sqlite", "postgresql")
DAYS = 3 * 365 + 1
SEARCH_METRICS = 10_000
# What a user types into the catalog's box, one request per keystroke (htmx, 200 ms debounce
# aside), then a facet click on the result.
KEYSTROKES = ("m", "me", "met", "metr", "metri", "metric", "metric_", "metric_1", "metric_12")
FACET = "q=metric_12&owner=finance-data"
ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stores",
        type=lambda s: tuple(x for x in s.split(",") if x),
        default=STORES,
        help="registry stores to measure: sqlite,postgresql",
    )


def run(options: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    repeat = options.repeat or 20
    for store in options.stores:
        samples: dict[str, Any] = run_worker(
            [sys.executable, "-m", "bench.ui", store, str(repeat)], label=f"{store} worker"
        )
        for case, (n, values) in samples.items():
            rows.append(Row(f"{case} [{store}]", n, Stats(tuple(values))))
    return rows


# --------------------------------------------------------------------------- worker


def _store_values(metric: str, days: int) -> None:
    """``days`` daily values of one metric ending yesterday, as one run wrote them, with a
    revision every 30 days and an anomaly flagged every 45 (what the chart marks)."""
    import hashlib
    import math
    import uuid

    from django.utils import timezone

    from registry.models import Definition, Release
    from semantic.models import AuditResult, ComputeRun, MetricValue, ValueRevision

    release = Release.objects.order_by("-number").first()
    version = Definition.objects.get(kind="metric", name=metric).current_version
    end = timezone.now().date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=days - 1)
    now = timezone.now()
    run = ComputeRun.objects.create(
        metrics=[metric], release=release, grain="day", start=start, end=end, status="succeeded",
        started_at=now, finished_at=now, values_written=days, chunks_total=1, chunks_done=1,
    )  # fmt: skip
    empty = hashlib.sha256(b"{}").hexdigest()
    values = [
        MetricValue(
            metric_name=metric,
            metric_version=version,
            release=release,
            grain="day",
            period_start=start + dt.timedelta(days=i),
            slice={},
            slice_hash=empty,
            value=f"{1000 + 300 * math.sin(i / 7 * 2 * math.pi) + i:.2f}",
            run=run,
            computed_at=now,
            revision_count=1 if i % 30 == 0 else 0,
        )
        for i in range(days)
    ]
    MetricValue.objects.bulk_create(values, batch_size=1000)
    stored = MetricValue.objects.filter(metric_name=metric).order_by("period_start")
    ValueRevision.objects.bulk_create(
        ValueRevision(value=v, old_value="1", new_value=v.value, old_run=run, run=run,
                      old_metric_version=version, new_metric_version=version, reason="late_data")
        for v in stored if v.revision_count
    )  # fmt: skip
    batch = uuid.uuid4()
    AuditResult.objects.bulk_create(
        AuditResult(batch=batch, check_name="anomaly", target=f"{metric}/day/{v.period_start}",
                    severity="warning", status="fail", message="outside the expected range",
                    observed=float(v.value), expected={"low": 0, "high": 1, "median": 0.5})
        for i, v in enumerate(stored) if i % 45 == 0
    )  # fmt: skip


def _measure_all(tmp: Path, repeat: int) -> dict[str, tuple[int, list[float]]]:
    import time

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from bench.registry import _reset_registry
    from bench.synthetic import write_synthetic_registry
    from registry.services.definitions import definitions_sync
    from semantic.models import MetricValue

    clock = time.perf_counter
    out: dict[str, tuple[int, list[float]]] = {}
    call_command("migrate", verbosity=0)
    client = Client()
    client.force_login(get_user_model().objects.create_user("bench"))

    # 1. The metric page of `revenue` (fixtures/) with 3 years of daily values.
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    _store_values("revenue", DAYS)
    for _ in range(3):  # warm: manifest, compile cache, lineage graph of the release
        assert client.get("/metrics/revenue").status_code == 200
    page, chart, floor = [], [], []
    for _ in range(repeat):
        started = clock()
        response = client.get("/metrics/revenue")
        page.append(clock() - started)
        assert response.status_code == 200 and b"metric-chart-spec" in response.content
        started = clock()
        response = client.get("/metrics/revenue/chart?grain=day", headers={"HX-Request": "true"})
        chart.append(clock() - started)
        assert response.status_code == 200
        started = clock()
        list(
            MetricValue.objects.filter(metric_name="revenue", grain="day")
            .order_by("period_start")
            .values_list("id", "period_start", "value", "revision_count")
        )
        floor.append(clock() - started)
    out["metric_page (3y daily)"] = (DAYS, page)
    out["metric_chart_fragment (3y daily)"] = (DAYS, chart)
    out["floor: values query"] = (DAYS, floor)

    # 2. Catalog search as you type over 10,000 metrics.
    _reset_registry(connection)
    big = write_synthetic_registry(tmp / "search", semantic_models=200, metrics=SEARCH_METRICS)
    definitions_sync(root=big, acting_user=None)
    client = Client()
    client.force_login(get_user_model().objects.create_user("bench2"))
    htmx = {"HX-Request": "true"}
    for text in KEYSTROKES:  # warm the connection and the template cache
        assert client.get(f"/metrics?q={text}", headers=htmx).status_code == 200
    keystroke, facet, api = [], [], []
    for _ in range(max(1, repeat // 4)):
        for text in KEYSTROKES:
            started = clock()
            response = client.get(f"/metrics?q={text}", headers=htmx)
            keystroke.append(clock() - started)
            assert response.status_code == 200
            started = clock()
            assert client.get(f"/api/v1/metrics?q={text}&limit=50").status_code == 200
            api.append(clock() - started)
        started = clock()
        assert client.get(f"/metrics?{FACET}", headers=htmx).status_code == 200
        facet.append(clock() - started)
    out["catalog_keystroke (htmx)"] = (SEARCH_METRICS, keystroke)
    out["catalog_facet_click (htmx)"] = (SEARCH_METRICS, facet)
    out["floor: search API page"] = (SEARCH_METRICS, api)
    return out


def _worker(store: str, repeat: int) -> dict[str, tuple[int, list[float]]]:
    from bench.registry import PG_ADMIN, _database_url

    with tempfile.TemporaryDirectory(prefix="tally-bench-ui-") as tmp_dir:
        tmp = Path(tmp_dir)
        url, pg_name = _database_url(store, tmp)
        os.environ["DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
        os.environ.setdefault("TALLY_DEMO", "1")  # demo data: development secrets
        try:
            return _measure_all(tmp, repeat)
        finally:
            if pg_name:
                from django.db import connections

                connections.close_all()
                import psycopg

                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


BENCHMARK = Benchmark(
    description="web UI server time: metric page with 3 years of daily values; catalog "
    "search per keystroke over 10,000 metrics",
    run=run,
    add_arguments=add_arguments,
    baseline="floor",
)


if __name__ == "__main__":
    samples = _worker(sys.argv[1], int(sys.argv[2]))
    print(json.dumps(samples))
