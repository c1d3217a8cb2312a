"""A repeated dashboard query: the full scan vs the result cache, in one run.

A demo warehouse of ``--events`` events, the registry synced in-process (SQLite), and one
dashboard query (events and revenue by day and plan over the whole history) run through
``query_execute`` as the HTTP API does: ``--repeat`` times with the cache off (every run
scans), then once to fill the cache and ``--repeat`` times served from it (the data-version
window is the default 5 s, so a refresh burst looks at the warehouse once). With
``--redis`` the cache is Redis (db 13), as with TALLY_CACHE_URL in production.

    python -m bench result_cache --events 2000000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.runner import Benchmark, Row, Stats

ROOT = Path(__file__).resolve().parent.parent
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--redis", action="store_true", help="cache in Redis db 13")


def run(options: argparse.Namespace) -> list[Row]:
    from semantic.demo import build_demo_warehouse

    _NOTES.clear()
    with tempfile.TemporaryDirectory(prefix="tally-bench-cache-") as tmp_name:
        tmp = Path(tmp_name)
        build_demo_warehouse(tmp / "wh.duckdb", events=options.events, seed=42)
        os.environ.update(
            {
                "DATABASE_URL": f"sqlite:///{tmp / 'registry.sqlite3'}",
                "WAREHOUSE_URL": f"duckdb:///{tmp / 'wh.duckdb'}",
                "DJANGO_SETTINGS_MODULE": "tally.settings",
                "TALLY_DEMO": "1",
                **({"TALLY_CACHE_URL": "redis://127.0.0.1:6379/13"} if options.redis else {}),
            }
        )
        import django

        django.setup()
        from django.conf import settings
        from django.core.cache import cache
        from django.core.management import call_command

        from registry.services.definitions import definitions_sync
        from semantic.compiler.spec import MetricQuery
        from semantic.services import query_execute

        call_command("migrate", verbosity=0)
        definitions_sync(root=ROOT / "fixtures", acting_user=None)
        cache.clear()
        query = MetricQuery(
            metrics=("events_tracked", "revenue"),
            group_by=("metric_time__day", "account__plan"),
        )

        def timed(n: int) -> list[float]:
            out = []
            for _ in range(n):
                started = time.perf_counter()
                answer = query_execute(query=query)
                out.append((time.perf_counter() - started) * 1000)
            _NOTES.append(f"{len(answer.rows)} rows")
            return out

        settings.TALLY_RESULT_CACHE_TTL_S = 0
        timed(1)  # compile cache and DuckDB warm
        scans = timed(options.queries)
        settings.TALLY_RESULT_CACHE_TTL_S = 300
        timed(1)  # fills the cache
        cached = timed(options.queries)
        cache.clear()
    backend = "Redis" if options.redis else "process memory"
    return [
        Row(f"dashboard query, full scan ({options.events:,} events)", options.queries,
            Stats(tuple(scans)), "ms"),
        Row(f"same query from the result cache ({backend})", options.queries,
            Stats(tuple(cached)), "ms"),
    ]  # fmt: skip


def notes() -> str:
    return "; ".join(sorted(set(_NOTES)))


BENCHMARK = Benchmark(
    description="a repeated dashboard query: full scan vs the result cache",
    run=run,
    add_arguments=add_arguments,
    notes=notes,
)
