"""A repeated dashboard query: the full scan vs the result cache, in one run.

A demo warehouse of ``--events`` events, the registry synced in-process (SQLite), and one
dashboard query (events and revenue by day and plan over the whole history) run through
``query_execute``: ``--queries`` times with the cache off (every run scans), then once to
fill the cache and ``--queries`` times served from it (the data-version window is the
default 5 s, so a refresh burst looks at the warehouse once). Then the same end to end, as a
dashboard sends it: ``POST /api/v1/query`` through Django's handler with a bearer token
(authentication, grants, the policy binding, the audit row, the JSON body). Each hit row
has a CPU-time twin (``time.process_time``): on a machine shared with other work the wall
time of a 2 ms request is mostly waiting for a core. With ``--redis`` the cache is Redis
(db 13), as with TALLY_CACHE_URL in production; ``--registry`` takes a DATABASE_URL (the
default is SQLite, whose commit of the audit row is an fsync).

    python -m bench result_cache --events 2000000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.runner import Benchmark, Row, Stats

ROOT = Path(__file__).resolve().parent.parent
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--redis", action="store_true", help="cache in Redis db 13")
    parser.add_argument("--registry", default="", help="DATABASE_URL (default: SQLite)")


def run(options: argparse.Namespace) -> list[Row]:
    from semantic.demo import build_demo_warehouse

    _NOTES.clear()
    with tempfile.TemporaryDirectory(prefix="tally-bench-cache-") as tmp_name:
        tmp = Path(tmp_name)
        build_demo_warehouse(tmp / "wh.duckdb", events=options.events, seed=42)
        os.environ.update(
            {
                "DATABASE_URL": options.registry or f"sqlite:///{tmp / 'registry.sqlite3'}",
                "WAREHOUSE_URL": f"duckdb:///{tmp / 'wh.duckdb'}",
                "DJANGO_SETTINGS_MODULE": "tally.settings",
                "TALLY_DEMO": "1",
                "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
                **({"TALLY_CACHE_URL": "redis://127.0.0.1:6379/13"} if options.redis else {}),
            }
        )
        import django

        django.setup()
        from django.conf import settings
        from django.contrib.auth.models import User
        from django.core.cache import cache
        from django.core.management import call_command
        from django.test import Client

        from registry.services.access import role_grant, token_create
        from registry.services.definitions import definitions_sync
        from semantic.compiler.spec import MetricQuery
        from semantic.services import query_execute

        call_command("migrate", verbosity=0)
        definitions_sync(root=ROOT / "fixtures", acting_user=None)
        # The soak's dashboard user: an auditor (row policies do not cut the answer).
        user = User.objects.create_user("bench-dashboard")
        role_grant(user=user, role="auditor")
        token = token_create(acting_user=None, user=user, scopes="query").raw
        client = Client()
        body = {"metrics": ["events_tracked", "revenue"],
                "group_by": ["metric_time__day", "account__plan"]}  # fmt: skip
        settings.TALLY_RATE_LIMITS = {}  # the bench sends far more than a person would
        cache.clear()
        query = MetricQuery(
            metrics=("events_tracked", "revenue"),
            group_by=("metric_time__day", "account__plan"),
        )

        def direct() -> None:
            _NOTES.append(f"{len(query_execute(query=query).rows)} rows")

        def http() -> None:
            response = client.post("/api/v1/query", body, content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
            assert response.status_code == 200, response.content[:300]

        def timed(call: Callable[[], None], n: int) -> tuple[list[float], list[float]]:
            wall, cpu = [], []
            for _ in range(n):
                started, used = time.perf_counter(), time.process_time()
                call()
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - used) * 1000)
            return wall, cpu

        out: dict[str, tuple[list[float], list[float]]] = {}
        for name, call in (("direct", direct), ("http", http)):
            settings.TALLY_RESULT_CACHE_TTL_S = 0
            timed(call, 1)  # compile cache and DuckDB warm
            out[f"{name} scan"] = timed(call, options.queries)
            settings.TALLY_RESULT_CACHE_TTL_S = 300
            timed(call, 1)  # fills the cache
            out[f"{name} hit"] = timed(call, options.queries)
            cache.clear()
    backend = "Redis" if options.redis else "process memory"
    n = options.queries

    def row(label: str, samples: list[float]) -> Row:
        return Row(label, n, Stats(tuple(samples)), "ms")

    return [
        row(f"query_execute, full scan ({options.events:,} events), wall", out["direct scan"][0]),
        row(f"query_execute, result cache ({backend}), wall", out["direct hit"][0]),
        row(f"query_execute, result cache ({backend}), CPU", out["direct hit"][1]),
        row("POST /api/v1/query, full scan, wall", out["http scan"][0]),
        row(f"POST /api/v1/query, result cache ({backend}), wall", out["http hit"][0]),
        row(f"POST /api/v1/query, result cache ({backend}), CPU", out["http hit"][1]),
    ]


def notes() -> str:
    return "; ".join(sorted(set(_NOTES)))


BENCHMARK = Benchmark(
    description="a repeated dashboard query: full scan vs the result cache",
    run=run,
    add_arguments=add_arguments,
    notes=notes,
)
