"""Worker soak: N compute tasks through one real Celery worker over Redis; time and memory.

All runs are created first (each computes ``revenue`` for one distinct day of a small demo
warehouse, so every task writes a value), then one ``celery worker --pool solo`` drains the
queue while its resident memory is sampled from ``/proc``. Rows: the drain time, tasks/s,
and the worker's RSS after the first 10% of tasks, at the end, and its peak (VmHWM): a flat
line means no per-task leak. Needs Redis on 127.0.0.1:6379 (DB 7 is flushed).

    python -m bench worker_soak --tasks 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import Benchmark, Row, Stats

BROKER = "redis://127.0.0.1:6379/7"
ROOT = Path(__file__).resolve().parent.parent
# Only this checkout's packages (a shared virtualenv may hold an editable install of another).
WORKER_MAIN = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
    "sys.argv[0] = 'celery'; from celery.__main__ import main; main()"
)
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20_000)


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def run(options: argparse.Namespace) -> list[Row]:
    import redis

    from semantic.demo import build_demo_warehouse

    _NOTES.clear()
    with tempfile.TemporaryDirectory(prefix="tally-bench-soak-") as tmp:
        wh, db = Path(tmp) / "warehouse.duckdb", Path(tmp) / "registry.sqlite3"
        build_demo_warehouse(wh, events=options.events, seed=42)
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{db}",
            "WAREHOUSE_URL": f"duckdb:///{wh}",
            "CELERY_BROKER_URL": BROKER,
            "DJANGO_SETTINGS_MODULE": "tally.settings",
            "TALLY_DEMO": "1",
        }
        redis.Redis.from_url(BROKER).flushdb()
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        from registry.services.definitions import definitions_sync
        from semantic.jobs.compute import compute_run_create

        call_command("migrate", verbosity=0)
        definitions_sync(root=ROOT / "fixtures", acting_user=None)
        first = dt.date(2024, 11, 1)
        for i in range(options.tasks):
            day = first + dt.timedelta(days=i % 730)
            compute_run_create(
                metrics=["revenue" if i < 730 else "invoices_issued"], start=day, end=day,
                acting_user=None,
            )  # fmt: skip
        from django.db import connections

        connections.close_all()
        log = Path(tmp) / "worker.log"
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, "-A", "tally", "worker", "--pool", "solo",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        started = time.perf_counter()
        samples: list[tuple[int, int]] = []
        con = sqlite3.connect(db, timeout=30)
        try:
            done = 0
            while done < options.tasks:
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
                (done,) = con.execute(
                    "SELECT count(*) FROM semantic_computerun WHERE status IN ('succeeded', 'failed')"
                ).fetchone()
                samples.append((done, _rss_kb(worker.pid)))
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            peak = _rss_kb(worker.pid, "VmHWM")
            (failed,) = con.execute(
                "SELECT count(*) FROM semantic_computerun WHERE status = 'failed'"
            ).fetchone()
        finally:
            con.close()
            worker.terminate()
            worker.wait(timeout=30)
    tenth = next(rss for n, rss in samples if n >= options.tasks // 10)
    _NOTES.append(f"{failed} failed runs; RSS samples every 0.2 s: {len(samples)}")
    n = options.tasks
    return [
        Row(f"worker: drain {n} compute tasks", n, Stats((elapsed,))),
        Row("worker: throughput", n, Stats((n / elapsed,)), "tasks/s"),
        Row("worker RSS after 10% of tasks", n, Stats((tenth / 1024,)), "MB"),
        Row("worker RSS at the end", n, Stats((samples[-1][1] / 1024,)), "MB"),
        Row("worker peak RSS (VmHWM)", n, Stats((peak / 1024,)), "MB"),
    ]


def notes() -> str:
    return "; ".join(_NOTES)


BENCHMARK = Benchmark(
    description="1,000 compute tasks through one real worker over Redis: time and RSS",
    run=run,
    add_arguments=add_arguments,
    notes=notes,
)
