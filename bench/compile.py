"""Compile speed: Tally (warm, no cache; cache hit) against MetricFlow in the same run.

Queries: the issue's reference query (3 metrics, 3 dimensions, 2 joins) and a set of
conformance queries. MetricFlow is timed in its own virtualenv (``.venv-mf``, see
docs/conformance.md) by scripts/metricflow/bench_compile.py: ``MetricFlowEngine.explain`` on
the same definitions, warm, in-process. Without .venv-mf its rows are left out.

    python -m bench compile
    python -m bench compile --repeat 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.runner import Benchmark, Row, Stats, measure, run_worker

REPO = Path(__file__).resolve().parents[1]
MF_PYTHON = REPO / ".venv-mf" / "bin" / "python"
LOOP = 1000
CONFORMANCE_CASES = (
    "events_tracked_by_week",
    "revenue_by_month",
    "signups_by_account_plan",
    "events_by_user_account_region",
    "paid_invoice_rate_by_quarter",
    "net_new_accounts_by_month",
    "revenue_growth_mom_by_month",
    "weekly_active_users_by_day",
    "cumulative_revenue_by_month",
    "revenue_pro_by_month",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-metricflow", action="store_true", help="skip MetricFlow's rows")


def run(options: argparse.Namespace) -> list[Row]:
    repeat = options.repeat or 100
    with tempfile.TemporaryDirectory(prefix="tally-bench-compile-") as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'registry.sqlite3'}"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
        os.environ.setdefault("TALLY_DEMO", "1")  # demo data: development secrets
        import django

        django.setup()
        from django.core.management import call_command

        from registry.services.definitions import definitions_sync
        from semantic.compiler.api import compile_query
        from semantic.compiler.principal import Principal
        from semantic.compiler.spec import MetricQuery
        from semantic.services import compile_metric_query, manifest_for_release, release_resolve
        from tests.conformance.test_conformance import EXPECTED, _query, conformance_manifest

        call_command("migrate", verbosity=0)
        definitions_sync(root=REPO / "fixtures", acting_user=None)
        manifest = manifest_for_release(release_resolve(None))
        reference = MetricQuery(
            metrics=("events_tracked", "signups", "event_rows"),
            group_by=("metric_time__month", "account__plan", "account__region"),
        )
        rows = [
            Row(
                "tally: compile, no cache [reference]",
                1,
                _back_to_back(lambda: compile_query(reference, manifest), samples=repeat),
            ),
            Row(
                # Row policies on every read and masks (issue #8): what a tenant's token costs.
                "tally: compile for a tenant principal, no cache [reference]",
                1,
                _back_to_back(
                    lambda: compile_query(
                        reference, manifest, principal=Principal("bench", {"tenant_id": "t1"})
                    ),
                    samples=repeat,
                ),
            ),
            Row(
                "tally: cache hit [reference]",
                1,
                # Microsecond work is timed in loops of LOOP calls, as timeit does: one call
                # per sample would time the cold caches measure() leaves after its gc.collect().
                measure(
                    lambda: [compile_metric_query(query=reference) for _ in range(LOOP)],
                    repeat=max(5, repeat // 10),
                    warmup=2,
                ).map(lambda seconds: seconds / LOOP),
            ),
        ]
        conformance = conformance_manifest()
        per_query: list[float] = []
        for case in CONFORMANCE_CASES:
            query = _query(json.loads((EXPECTED / f"{case}.json").read_text())["query"])
            stats = _back_to_back(
                lambda q=query: compile_query(q, conformance), samples=max(5, repeat // 10)
            )
            per_query.append(stats.median)
        rows.append(
            Row("tally: compile, no cache [conformance]", len(per_query), Stats(tuple(per_query)))
        )
    if not options.no_metricflow and MF_PYTHON.exists():
        names = ",".join(CONFORMANCE_CASES)
        samples = run_worker(
            [str(MF_PYTHON), str(REPO / "scripts" / "metricflow" / "bench_compile.py"),
             "--tally-python", sys.executable, "--names", names, "--repeat", "10"],
            label="MetricFlow timing", tail=2000,
        )  # fmt: skip
        medians = [Stats(tuple(v)).median for v in samples.values()]
        # Same ten queries on both sides: each row is the median over queries of each
        # query's median compile time, so the ratio compares like with like.
        rows.append(Row("metricflow [conformance]", len(medians), Stats(tuple(medians))))
    return rows


def _back_to_back(fn: Callable[[], object], *, samples: int, calls: int = 20) -> Stats:
    """Per-call time of ``fn`` called back to back, as a warm server compiles and as
    scripts/metricflow/bench_compile.py times MetricFlow: each sample is ``calls`` calls in a
    row divided by ``calls``, garbage collection left on (its cost is part of compiling).

    measure() collects garbage before every sample, which leaves the CPU caches cold: right
    for seconds-long work, but it adds about half to a millisecond-long compile, and
    MetricFlow's loop has no such step.
    """
    for _ in range(calls):
        fn()
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        durations.append((time.perf_counter() - started) / calls)
    return Stats(tuple(durations))


BENCHMARK = Benchmark(
    description="compile speed: Tally warm (no cache, cache hit) vs MetricFlow warm in-process",
    run=run,
    add_arguments=add_arguments,
    baseline="metricflow",
)
