"""Compute jobs: 30 daily metrics × 365 days into the registry, vs one hand-written scan per source.

The same DuckDB demo warehouse (N events, seed 42) and the same 365 days (the data's last year)
for every row; the registry is a temporary SQLite file migrated and synced with fixtures/.

- ``hand: one grouped scan per source``: eight hand-written ``GROUP BY day`` queries, one per
  (table, time column), each computing all of that source's metrics in a single pass (with
  FILTER/CASE for filtered metrics), run through the same ``execute()`` as Tally's queries.
  It only reads; it stores nothing. Its rows are checked against Tally's stored values.
- ``tally: compute run, one chunk``: ``compute_run_create`` + ``compute_run_execute`` over an
  empty value table (emptied, untimed, before each sample): compile, one warehouse query per
  group of metrics reading the same semantic models, and the insert of every value.
- ``tally: warehouse queries of that run``: the scan part of the row above (run timings).
- ``tally: unchanged rerun``: the same run again over stored values (asserts 0 revisions).
- ``tally: backfill, 92-day chunks``: the default chunking a progress bar shows (4 chunks).
- ``… values/s``: the first compute row as throughput.

    python -m bench compute --events 1000000 --repeat 3
    python -m bench compute --engine clickhouse --target /tmp/w/warehouse.chdb

``--engine clickhouse`` (chdb) or ``--engine spark`` (Spark local) copies the DuckDB warehouse
into that engine (``--target``: reuse that copy when it exists), points WAREHOUSE_URL at it,
and times the hand SQL written for it (bench/compute_engines.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.runner import Benchmark, Row, Stats, measure, throughput

SEED = 42
DEFAULT_EVENTS = 10_000_000
START, END = dt.date(2025, 11, 1), dt.date(2026, 10, 31)  # the demo data's last 365 days
METRICS: tuple[str, ...] = ()  # semantic.jobs.compute.DEMO_METRICS, imported in run()
_RANGE = "{col} >= DATE '{start}' AND {col} < DATE '{stop}'"
HAND_SQL: dict[str, str] = {
    "events": """
        SELECT CAST(occurred_at AS DATE) AS day,
          COUNT(DISTINCT account_id) AS active_accounts,
          COUNT(DISTINCT user_id) AS daily_active_users,
          COUNT(*) AS event_rows,
          COUNT(DISTINCT event_id) AS events_tracked,
          COUNT(DISTINCT CASE WHEN event_type = 'feature_used' THEN account_id END)
            AS feature_adopting_accounts,
          MIN(occurred_at) AS first_event_at,
          MIN(CASE WHEN event_type = 'report_created' THEN occurred_at END) AS first_value_at,
          COUNT(DISTINCT event_id) FILTER (WHERE event_type = 'invite_sent') AS invites_sent,
          SUM(CAST(CAST(received_at AS DATE) > CAST(occurred_at AS DATE) AS INT))
            AS late_events,
          COUNT(DISTINCT event_id) FILTER (WHERE event_type = 'report_created')
            AS reports_created,
          SUM(revenue) FILTER (WHERE event_type IN ('purchase', 'plan_upgraded'))
            AS tracked_revenue,
          COUNT(DISTINCT CASE WHEN event_type = 'trial_started' THEN event_id END)
            AS trials_started
        FROM main.events WHERE {range} GROUP BY 1
    """,
    "invoices": """
        SELECT CAST(issued_at AS DATE) AS day, AVG(amount), COUNT(invoice_id), MEDIAN(amount),
          SUM(CASE WHEN status = 'open' THEN amount ELSE 0 END),
          QUANTILE_CONT(amount, 0.9),
          COUNT(DISTINCT CASE WHEN status = 'paid' THEN account_id END),
          SUM(amount) FILTER (WHERE status = 'paid') AS revenue
        FROM main.invoices WHERE {range} GROUP BY 1
    """,
    "invoices/paid_at": "SELECT CAST(paid_at AS DATE), COUNT(paid_at) FROM main.invoices "
    "WHERE {range} GROUP BY 1",
    "accounts": "SELECT CAST(created_at AS DATE), AVG(seats), COUNT(id), MAX(seats) "
    "FROM main.accounts WHERE {range} GROUP BY 1",
    "accounts/churned_at": "SELECT CAST(churned_at AS DATE), COUNT(churned_at) "
    "FROM main.accounts WHERE {range} GROUP BY 1",
    "subscriptions": "SELECT CAST(started_at AS DATE), SUM(mrr) FROM main.subscriptions "
    "WHERE {range} GROUP BY 1",
    "subscriptions/ended_at": "SELECT CAST(ended_at AS DATE), "
    "SUM(CASE WHEN ended_at IS NOT NULL THEN mrr ELSE 0 END) FROM main.subscriptions "
    "WHERE {range} GROUP BY 1",
    "users": "SELECT CAST(signed_up_at AS DATE) AS day, COUNT(id) AS signups FROM main.users "
    "WHERE {range} GROUP BY 1",
}
TIME_COLUMN = {
    "events": "occurred_at",
    "invoices": "issued_at",
    "invoices/paid_at": "paid_at",
    "accounts": "created_at",
    "accounts/churned_at": "churned_at",
    "subscriptions": "started_at",
    "subscriptions/ended_at": "ended_at",
    "users": "signed_up_at",
}
_NOTES: list[str] = []
_ENGINE: list[str] = []  # the engine and its version, set by run()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--warehouse", type=Path, default=None, help="reuse this DuckDB file")
    parser.add_argument("--engine", choices=("duckdb", "clickhouse", "spark"), default="duckdb")
    parser.add_argument(
        "--target", type=Path, default=None, help="--engine's data directory to reuse"
    )


def hand_sql(engine: str = "duckdb") -> dict[str, str]:
    from bench.compute_engines import HAND_SQL as ENGINE_HAND_SQL

    stop = END + dt.timedelta(days=1)
    texts = HAND_SQL if engine == "duckdb" else ENGINE_HAND_SQL[engine]
    return {
        source: sql.format(range=_RANGE.format(col=TIME_COLUMN[source], start=START, stop=stop))
        for source, sql in texts.items()
    }


def run(options: argparse.Namespace) -> list[Row]:
    from semantic.demo import build_demo_warehouse

    _NOTES.clear()
    _ENGINE.clear()
    repeat = options.repeat or 3
    warmup = 1 if options.warmup is None else options.warmup
    with tempfile.TemporaryDirectory(prefix="tally-bench-compute-") as tmp:
        path = options.warehouse or Path(tmp) / "warehouse.duckdb"
        if not path.exists():
            print(f"building {options.events:,} events in {path} ...", flush=True)
            build_demo_warehouse(path, events=options.events, seed=SEED)
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'registry.sqlite3'}"
        os.environ["WAREHOUSE_URL"] = _warehouse_url(options, path, Path(tmp))
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
        os.environ.setdefault("TALLY_DEMO", "1")  # demo data: development secrets
        os.environ.setdefault("TALLY_COMPUTE_TIMEOUT_S", "3600")  # Spark on 2 cores is slow
        return _measure(repeat, warmup, options.engine)


def _warehouse_url(options: argparse.Namespace, source: Path, tmp: Path) -> str:
    """WAREHOUSE_URL of the run: the DuckDB file, or its copy in chdb or Spark local."""
    if options.engine == "duckdb":
        _ENGINE.append(f"duckdb {_duckdb_version()}")
        return f"duckdb:///{source}"
    from semantic.warehouse.config import parse_warehouse_url
    from semantic.warehouse.loader import copy_duckdb_tables

    scheme = "chdb" if options.engine == "clickhouse" else "spark"
    path = (options.target or tmp / f"warehouse.{scheme}").resolve()
    url = f"{scheme}:///{path}"
    if path.exists():
        _NOTES.append(f"reused {path}")
    else:
        print(f"copying {source} into {url} ...", flush=True)
        copy_duckdb_tables(source, parse_warehouse_url(url, base_dir=Path("/")), schema="main")
    if options.engine == "clickhouse":
        import chdb

        _ENGINE.append(f"chdb {chdb.__version__} ({url})")
    else:
        import pyspark

        _ENGINE.append(f"pyspark {pyspark.__version__} local ({url})")
    return url


def _duckdb_version() -> str:
    import duckdb

    return duckdb.__version__


def _measure(repeat: int, warmup: int, engine: str) -> list[Row]:
    import django

    django.setup()
    global METRICS
    from semantic.jobs.compute import DEMO_METRICS

    METRICS = DEMO_METRICS
    from django.conf import settings
    from django.core.management import call_command

    from registry.services.definitions import definitions_sync
    from semantic.jobs.compute import compute_run_create, compute_run_execute
    from semantic.jobs.periods import canonical_value
    from semantic.jobs.queries import metric_groups
    from semantic.models import MetricValue, ValueRevision
    from semantic.services import manifest_for_release, release_resolve
    from semantic.warehouse.execute import execute
    from tests.conftest import ROOT

    call_command("migrate", verbosity=0)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    warehouse = settings.WAREHOUSE
    n = len(METRICS) * ((END - START).days + 1)
    groups = metric_groups(manifest_for_release(release_resolve(None)), METRICS)
    _NOTES.append(
        f"{len(METRICS)} metrics in {len(groups)} query groups; hand SQL: {len(HAND_SQL)} scans"
    )

    def hand() -> dict[str, Any]:
        texts = hand_sql(engine)
        return {s: execute(warehouse, sql, timeout_s=3600).rows for s, sql in texts.items()}

    runs: list[Any] = []

    def compute(chunk_periods: int | None) -> None:
        run = compute_run_create(
            metrics=METRICS, start=START, end=END, chunk_periods=chunk_periods,
            enqueue=False, acting_user=None,
        )  # fmt: skip
        run = compute_run_execute(run_id=run.pk)
        assert run.status == "succeeded", run.error
        runs.append(run)

    def empty() -> None:
        ValueRevision.objects.all().delete()
        MetricValue.objects.all().delete()

    rows = [
        Row("hand: one grouped scan per source", n, measure(hand, repeat=repeat, warmup=warmup))
    ]
    first = measure(lambda: compute(400), repeat=repeat, warmup=warmup, setup=empty)
    rows.append(Row("tally: compute run, one chunk", n, first))
    scans = Stats(tuple(r.timings["scan_s"] for r in runs[-repeat:]))
    rows.append(Row("tally: warehouse queries of that run", n, scans))
    written = runs[-1].values_written
    _NOTES.append(f"values written per run: {written:,}; queries per run: {runs[-1].queries}")
    runs.clear()
    rerun = measure(lambda: compute(400), repeat=repeat, warmup=0)
    revised = sum(r.values_revised for r in runs)
    rows.append(Row("tally: unchanged rerun", n, rerun))
    _NOTES.append(f"unchanged reruns wrote {sum(r.values_written for r in runs)} values, "
                  f"{revised} revisions")  # fmt: skip
    assert revised == 0
    backfill = measure(lambda: compute(None), repeat=repeat, warmup=0, setup=empty)
    rows.append(Row("tally: backfill, 92-day chunks", n, backfill))
    rows.append(throughput(Row("tally: compute run, one chunk", written, first), unit="values/s"))
    _check(hand(), canonical_value)
    return rows


def _check(hand_rows: dict[str, Any], canonical: Any) -> None:
    """Spot-checks the stored values against the hand SQL (three metrics, every day)."""
    from semantic.models import MetricValue

    def stored(metric: str) -> dict[dt.date, str | None]:
        return dict(
            MetricValue.objects.filter(metric_name=metric).values_list("period_start", "value")
        )

    picks = (("events", 4, "events_tracked"), ("invoices", 7, "revenue"), ("users", 1, "signups"))
    for source, column, metric in picks:
        expected = {row[0]: canonical(row[column]) for row in hand_rows[source]}
        got = {day: value for day, value in stored(metric).items() if value is not None}
        expected = {day: value for day, value in expected.items() if value is not None}
        if got != expected:
            raise AssertionError(f"{metric}: stored values differ from the hand SQL")
    _NOTES.append("stored events_tracked, revenue and signups equal the hand SQL on every day")


def notes() -> str:
    return "; ".join([*_ENGINE, *_NOTES])


BENCHMARK = Benchmark(
    description="compute 30 daily metrics x 365 days vs one hand-written grouped scan per source",
    run=run,
    add_arguments=add_arguments,
    baseline="hand",
    notes=notes,
)
