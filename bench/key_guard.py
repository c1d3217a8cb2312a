"""The query-time fan-out guard's cost (issue 16): a metric query joined on a declared key.

A demo warehouse of ``--events`` events, the registry synced in-process (SQLite), and one
dashboard query (events and revenue by day and account plan: a join on accounts' primary
key) run ``--queries`` times through ``run_compiled`` (the executor every path shares), the
result cache out of the way, in four ways, alternated query by query so that load on the
machine hits each alike:

- without the key check (the compiled query with no ``key_uses``): the baseline;
- repeat: the key's probe answer is cached at this data version (what every query pays
  until the data changes: a dictionary look-up);
- first at a data version: the probe runs (one GROUP BY over the accounts table);
- first, data version looked up too: as after TALLY_RESULT_CACHE_VERSION_S (the version
  scan is shared with the result cache, which pays it anyway when it is on).

Then ``keys_check`` alone, cached and probing, and the data version look-up alone: the
counts-and-times scan as it was before write marks, and the whole look-up with them (on
DuckDB the marks are a stat of the database file and its log). Each row has a CPU-time twin
(``time.process_time``, this process only: DuckDB runs in it).

    python -m bench key_guard --events 500000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.runner import Benchmark, Row, Stats

ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--queries", type=int, default=20)


def run(options: argparse.Namespace) -> list[Row]:
    from semantic.demo import build_demo_warehouse

    with tempfile.TemporaryDirectory(prefix="tally-bench-keys-") as tmp_name:
        tmp = Path(tmp_name)
        build_demo_warehouse(tmp / "wh.duckdb", events=options.events, seed=42)
        os.environ.update(
            {
                "DATABASE_URL": f"sqlite:///{tmp / 'registry.sqlite3'}",
                "WAREHOUSE_URL": f"duckdb:///{tmp / 'wh.duckdb'}",
                "DJANGO_SETTINGS_MODULE": "tally.settings",
                "TALLY_DEMO": "1",
            }
        )
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        from registry.services.definitions import definitions_sync
        from semantic.compiler.spec import MetricQuery
        from semantic.key_guard import key_probes_forget, keys_check
        from semantic.manifests import manifest_for_release, release_resolve
        from semantic.result_cache import (
            data_version_detail,
            data_version_sql,
            result_versions_forget,
        )
        from semantic.services import compile_metric_query
        from semantic.warehouse.execute import execute
        from semantic.warehouse.run import run_compiled

        call_command("migrate", verbosity=0)
        definitions_sync(root=ROOT / "fixtures", acting_user=None)
        settings.TALLY_RESULT_CACHE_VERSION_S = 3600  # repeats keep one data version
        query = MetricQuery(
            metrics=("events_tracked", "revenue"),
            group_by=("metric_time__day", "account__plan"),
            dialect=settings.WAREHOUSE.dialect,
        )
        guarded = compile_metric_query(query=query)
        assert [u.model for u in guarded.key_uses] == ["accounts"], guarded.key_uses
        unguarded = dataclasses.replace(guarded, key_uses=())

        def plain() -> None:
            run_compiled(unguarded, principal=None)

        def repeat() -> None:
            run_compiled(guarded, principal=None)

        def first() -> None:
            key_probes_forget()
            run_compiled(guarded, principal=None)

        def first_version() -> None:
            key_probes_forget()
            result_versions_forget()
            run_compiled(guarded, principal=None)

        cases: dict[str, Callable[[], None]] = {
            "no key check": plain,
            "repeat (probe cached)": repeat,
            "first at a data version (probe runs)": first,
            "first, data version looked up too": first_version,
        }

        def check_cached() -> None:
            keys_check(guarded)

        def check_probe() -> None:
            key_probes_forget()
            keys_check(guarded)

        cases["keys_check alone, probe cached"] = check_cached
        cases["keys_check alone, probe runs"] = check_probe
        release = release_resolve(None)
        version_sql = data_version_sql(manifest_for_release(release), settings.WAREHOUSE.dialect)
        assert version_sql is not None

        def version_counts_times() -> None:
            execute(settings.WAREHOUSE, version_sql, timeout_s=60)

        def version_with_marks() -> None:
            result_versions_forget()
            data_version_detail(release)

        cases["data version alone, counts and times only (before)"] = version_counts_times
        cases["data version alone, with write marks"] = version_with_marks
        for call in cases.values():
            call()  # warm: compile cache, DuckDB, the spine
        wall: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(options.queries):
            for name, call in cases.items():
                started, used = time.perf_counter(), time.process_time()
                call()
                wall[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - used) * 1000)
    rows = []
    for name in cases:
        alone = name.startswith(("keys_check", "data version"))
        label = name if alone else f"run_compiled, {name}"
        rows.append(Row(f"{label}, wall", options.queries, Stats(tuple(wall[name])), "ms"))
        rows.append(Row(f"{label}, CPU", options.queries, Stats(tuple(cpu[name])), "ms"))
    return rows


BENCHMARK = Benchmark(
    description="the fan-out guard's key probe: first query at a data version vs repeats",
    run=run,
    add_arguments=add_arguments,
)
