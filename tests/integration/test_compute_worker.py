"""Compute runs on a REAL Celery worker over Redis, with the registry on PostgreSQL.

The worker is `celery -A tally worker --pool solo` in a subprocess (solo: the task runs in
the worker's own process, so kill -9 kills the task too).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import (
    ROOT,
    demo_warehouse_at,
    migrated_registry,
    require_service,
    run_tally,
)

# Redis DB 7 is this suite's own; under xdist (`./dev test` runs -n 2) each pytest worker
# gets its own DB, or one worker's Celery process would take the other's tasks.
_XDIST = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
BROKER = f"redis://127.0.0.1:6379/{7 + int(_XDIST or 0) % 4}"
# `celery` with this checkout's packages only: an editable install of another checkout (a
# shared virtualenv) would otherwise answer autodiscovery's imports of modules this
# checkout lacks (say registry.tasks) from that other tree.
WORKER_MAIN = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
    "sys.argv[0] = 'celery'; from celery.__main__ import main; main()"
)


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, registry_template: Callable[..., str]
) -> Iterator[dict[str, str]]:
    """A migrated PostgreSQL registry with fixtures/ synced; yields the worker environment."""
    require_service("postgres")
    require_service("redis")
    import redis

    redis.Redis.from_url(BROKER).flushdb()
    name = f"tally_worker_{os.getpid()}"
    wh = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    demo_warehouse_at(wh, events=20_000, seed=42)
    env = {
        "WAREHOUSE_URL": f"duckdb:///{wh}",
        "CELERY_BROKER_URL": BROKER,
        # Short clocks so a killed worker's task comes back within seconds.
        "TALLY_CELERY_VISIBILITY_TIMEOUT_S": "4",
        "TALLY_CELERY_RESTORE_SWEEP_S": "1",
        "TALLY_COMPUTE_LEASE_S": "3",
        "TALLY_COMPUTE_RETRY_BASE_S": "0.5",
        "TALLY_COMPUTE_LOCK_WAIT_S": "60",
    }
    with migrated_registry(name, env, registry_template) as registry_env:
        yield registry_env


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, "-A", "tally", "worker", "--pool", "solo",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker(env, tmp_path / f"worker{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def sql(env: dict[str, str], query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def run_row(env: dict[str, str], run_id: int) -> dict[str, Any]:
    cols = ("status", "attempts", "retries", "chunks_done", "chunks_total", "values_written",
            "values_revised", "error")  # fmt: skip
    (row,) = sql(env, f"SELECT {', '.join(cols)} FROM semantic_computerun WHERE id = %s", run_id)
    return dict(zip(cols, row, strict=True))


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: str, logs: tuple[Path, ...] = ()
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tails = "\n".join(p.read_text()[-3000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def enqueue(env: dict[str, str], *args: str) -> int:
    done = run_tally("compute", *args, "--no-wait", env=env)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def test_killed_worker_leaves_exactly_one_value_per_key(
    registry: dict[str, str], workers: Callable[[dict[str, str]], Worker]
) -> None:
    """kill -9 of the worker mid-run: the task comes back (acks_late), the run resumes after
    its last committed chunk and ends with exactly one current value per key."""
    run_id = enqueue(
        registry, "events_tracked", "daily_active_users", "revenue", "--start", "2026-06-01",
        "--end", "2026-08-31", "--chunk-periods", "1",
    )  # fmt: skip
    first = workers(registry)
    wait_for(
        lambda: run_row(registry, run_id)["chunks_done"] >= 5,
        timeout=90, what="first chunks", logs=(first.log,),
    )  # fmt: skip
    first.kill()
    killed = run_row(registry, run_id)
    assert killed["status"] == "running" and killed["chunks_done"] < killed["chunks_total"]
    second = workers(registry)
    wait_for(
        lambda: run_row(registry, run_id)["status"] == "succeeded",
        timeout=120, what="re-delivered run", logs=(first.log, second.log),
    )  # fmt: skip
    done = run_row(registry, run_id)
    assert done["attempts"] == 2 and done["chunks_done"] == done["chunks_total"] == 92
    ((total, keys),) = sql(
        registry,
        "SELECT count(*), count(DISTINCT (metric_name, grain, period_start, slice_hash)) "
        "FROM semantic_metricvalue WHERE run_id = %s",
        run_id,
    )
    assert total == keys == done["values_written"]
    assert sql(registry, "SELECT count(*) FROM semantic_valuerevision") == [(0,)]


def test_transient_warehouse_error_is_retried_until_it_clears(
    registry: dict[str, str], workers: Callable[[dict[str, str]], Worker], tmp_path: Path
) -> None:
    """A warehouse that is not there yet (missing DuckDB file = unavailable) is retried with
    backoff; once it appears the same run succeeds and its retries are recorded."""
    later = tmp_path / "later.duckdb"
    env = {**registry, "WAREHOUSE_URL": f"duckdb:///{later}"}
    run_id = enqueue(env, "revenue", "--start", "2026-05-01", "--end", "2026-05-31")
    worker = workers(env)
    wait_for(
        lambda: run_row(env, run_id)["retries"] >= 2,
        timeout=60, what="two retries", logs=(worker.log,),
    )  # fmt: skip
    retrying = run_row(env, run_id)
    assert retrying["error"]["code"] == "warehouse_unavailable"
    shutil.copyfile(registry["WAREHOUSE_URL"].removeprefix("duckdb:///"), later)
    wait_for(
        lambda: run_row(env, run_id)["status"] == "succeeded",
        timeout=60, what="success after retries", logs=(worker.log,),
    )  # fmt: skip
    done = run_row(env, run_id)
    assert done["retries"] >= 2 and done["error"] is None and done["values_written"] == 31


def test_concurrent_runs_of_one_series_take_turns(
    registry: dict[str, str], workers: Callable[[dict[str, str]], Worker]
) -> None:
    """Two workers given two runs of the same metric: the second waits for the first's lock,
    so their write phases never overlap and the second sees every value unchanged."""
    args = ("events_per_active_account", "--start", "2026-01-01", "--end", "2026-04-30",
            "--chunk-periods", "1")  # fmt: skip
    one, two = enqueue(registry, *args), enqueue(registry, *args)
    a, b = workers(registry), workers(registry)
    wait_for(
        lambda: {run_row(registry, r)["status"] for r in (one, two)} == {"succeeded"},
        timeout=120, what="both runs", logs=(a.log, b.log),
    )  # fmt: skip
    rows = sql(
        registry,
        "SELECT id, (timings->>'locked_at')::timestamptz, finished_at, values_written, "
        "values_unchanged FROM semantic_computerun WHERE id IN (%s, %s) ORDER BY 2",
        one,
        two,
    )
    (_, _, first_end, written, _), (_, second_locked, _, rewritten, unchanged) = rows
    assert second_locked >= first_end
    assert written > 0 and rewritten == 0 and unchanged == written
