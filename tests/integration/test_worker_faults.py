"""Faults under a REAL Celery worker (issue 23): a broker restarted mid-run, a worker killed
with the reaper (beat) recovering its run, a registry backend terminated mid-run, and the
CLI when the broker is down or no worker answers.

Each test runs its OWN redis-server on a free port (restarted at will without touching the
shared one) and a PostgreSQL registry of its own. Waits poll a condition with a deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
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
    unavailable,
)

WORKER_MAIN = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
    "sys.argv[0] = 'celery'; from celery.__main__ import main; main()"
)
RUN_ARGS = ("events_tracked", "revenue", "--start", "2026-06-01", "--end", "2026-08-31",
            "--chunk-periods", "1")  # fmt: skip


def wait_for(
    check: Callable[[], bool], *, timeout: float, what: str, logs: tuple[Path, ...] = ()
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tails = "\n".join(p.read_text()[-4000:] for p in logs if p.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server without persistence: a restart loses every message."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self.up, timeout=10, what=f"redis-server on {self.port}")

    def up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, registry_template: Callable[..., str]
) -> Iterator[dict[str, str]]:
    """A migrated PostgreSQL registry with fixtures/ synced; yields the worker environment."""
    require_service("postgres")
    name = f"i23_ops_faults_{os.getpid()}"
    wh = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    demo_warehouse_at(wh, events=20_000, seed=42)
    env = {
        "WAREHOUSE_URL": f"duckdb:///{wh}",
        # Short clocks so recovery takes seconds; the defaults' timings are bench's job.
        "TALLY_COMPUTE_LEASE_S": "2",
        "TALLY_COMPUTE_REAP_EVERY_S": "1",
        "TALLY_COMPUTE_REQUEUE_AFTER_S": "3",
        "TALLY_COMPUTE_RETRY_BASE_S": "0.5",
        "TALLY_COMPUTE_LOCK_WAIT_S": "60",
    }
    with migrated_registry(name, env, registry_template) as registry_env:
        yield registry_env


class Worker:
    def __init__(self, env: dict[str, str], log: Path, *extra: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, "-A", "tally", "worker", "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat", *extra],
            cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def logged(self, text: str) -> bool:
        return text in self.log.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str], *extra: str) -> Worker:
        worker = Worker(env, tmp_path / f"worker{len(started)}.log", *extra)
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
            "error")  # fmt: skip
    (row,) = sql(env, f"SELECT {', '.join(cols)} FROM semantic_computerun WHERE id = %s", run_id)
    return dict(zip(cols, row, strict=True))


def enqueue(env: dict[str, str], *args: str) -> int:
    done = run_tally("compute", *args, "--no-wait", env=env)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def assert_one_value_per_key(env: dict[str, str], run_id: int) -> None:
    """No key holds two current values (tests share the registry: a later run over the same
    periods finds its values unchanged, so the check is over the whole table)."""
    ((total, keys),) = sql(
        env,
        "SELECT count(*), count(DISTINCT (metric_name, grain, period_start, slice_hash)) "
        "FROM semantic_metricvalue",
    )
    assert total == keys > 0
    ((counted,),) = sql(
        env,
        "SELECT values_written + values_unchanged FROM semantic_computerun WHERE id = %s",
        run_id,
    )
    assert counted > 0


def test_worker_survives_a_broker_restart_under_a_running_task(
    registry: dict[str, str], broker: RedisServer, workers: Callable[..., Worker]
) -> None:
    """Issue 23: with kombu 5.7.0 a prefork worker whose Redis restarted under a running task
    died ('NoneType' object has no attribute 'hostname') and new runs stayed queued. The
    worker reconnects, finishes the run, and takes the next run from the restarted Redis."""
    env = {**registry, "CELERY_BROKER_URL": broker.url}
    run_id = enqueue(env, *RUN_ARGS)
    worker = workers(env, "--pool", "prefork", "--concurrency", "2")
    wait_for(lambda: run_row(env, run_id)["chunks_done"] >= 3, timeout=90,
             what="first chunks", logs=(worker.log,))  # fmt: skip
    broker.stop()
    wait_for(lambda: worker.logged("Connection to broker lost"), timeout=30,
             what="the worker noticing", logs=(worker.log,))  # fmt: skip
    broker.start()
    wait_for(lambda: run_row(env, run_id)["status"] == "succeeded", timeout=120,
             what="the in-flight run", logs=(worker.log,))  # fmt: skip
    assert_one_value_per_key(env, run_id)
    nxt = enqueue(env, "revenue", "--start", "2026-05-01", "--end", "2026-05-31")
    wait_for(lambda: run_row(env, nxt)["status"] == "succeeded", timeout=60,
             what="a run sent after the restart", logs=(worker.log,))  # fmt: skip
    assert worker.proc.poll() is None, worker.log.read_text()[-4000:]
    assert "Unrecoverable error" not in worker.log.read_text()


def test_reaper_recovers_the_run_of_a_killed_worker(
    registry: dict[str, str], broker: RedisServer, workers: Callable[..., Worker]
) -> None:
    """kill -9 mid-run: the lease stops being renewed, beat's reaper re-sends the run (the
    broker's own re-delivery waits a 900 s visibility timeout) and it resumes after its last
    committed chunk with exactly one value per key."""
    env = {**registry, "CELERY_BROKER_URL": broker.url}
    run_id = enqueue(env, *RUN_ARGS)
    first = workers(env, "--pool", "solo")
    wait_for(lambda: run_row(env, run_id)["chunks_done"] >= 3, timeout=90,
             what="first chunks", logs=(first.log,))  # fmt: skip
    first.kill()
    killed = run_row(env, run_id)
    assert killed["status"] == "running" and killed["chunks_done"] < killed["chunks_total"]
    second = workers(env, "--pool", "solo", "--beat", "--schedule",
                     str(first.log.parent / "beat-schedule"))  # fmt: skip
    wait_for(lambda: run_row(env, run_id)["status"] == "succeeded", timeout=120,
             what="the reaped run", logs=(first.log, second.log))  # fmt: skip
    done = run_row(env, run_id)
    assert done["attempts"] == 2 and done["chunks_done"] == done["chunks_total"] == 92
    assert_one_value_per_key(env, run_id)


def test_a_run_whose_message_the_broker_lost_is_resent(
    registry: dict[str, str], broker: RedisServer, workers: Callable[..., Worker]
) -> None:
    """Issue 23: after Redis lost its messages, queued runs stayed queued forever. The
    reaper sees the overdue message and sends the run again."""
    env = {**registry, "CELERY_BROKER_URL": broker.url}
    run_id = enqueue(env, "revenue", "--start", "2026-04-01", "--end", "2026-04-30")
    broker.stop()  # no persistence: the message is gone
    broker.start()
    worker = workers(env, "--pool", "solo", "--beat", "--schedule",
                     str(broker.workdir / "beat-schedule"))  # fmt: skip
    wait_for(lambda: run_row(env, run_id)["status"] == "succeeded", timeout=60,
             what="the re-sent run", logs=(worker.log,))  # fmt: skip


def test_a_terminated_registry_backend_is_retried(
    registry: dict[str, str], broker: RedisServer, workers: Callable[..., Worker]
) -> None:
    """Issue 23: one dropped registry connection failed a run for good (internal_error:
    OperationalError). It is a transient error: the run retries and completes."""
    env = {**registry, "CELERY_BROKER_URL": broker.url}
    run_id = enqueue(env, *RUN_ARGS)
    worker = workers(env, "--pool", "solo")
    wait_for(lambda: run_row(env, run_id)["chunks_done"] >= 3, timeout=90,
             what="first chunks", logs=(worker.log,))  # fmt: skip
    dbname = env["DATABASE_URL"].rsplit("/", 1)[1]
    killed = sql(
        env,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        dbname,
    )
    assert killed, "no worker backend to terminate"
    wait_for(lambda: run_row(env, run_id)["status"] in ("succeeded", "failed"), timeout=120,
             what="the run to end", logs=(worker.log,))  # fmt: skip
    done = run_row(env, run_id)
    assert done["status"] == "succeeded", done["error"]
    assert_one_value_per_key(env, run_id)


def test_compute_with_the_broker_down_fails_cleanly_and_marks_the_run(
    registry: dict[str, str], broker: RedisServer
) -> None:
    """Issue 23: with Redis down `tally compute` printed a traceback and left a queued run."""
    env = {**registry, "CELERY_BROKER_URL": broker.url}
    broker.stop()
    done = run_tally("compute", "revenue", "--start", "2026-03-01", "--end", "2026-03-31",
                     env=env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "error[broker_unavailable]" in done.stderr and "Traceback" not in done.stderr
    ((status, code),) = sql(
        env, "SELECT status, error->>'code' FROM semantic_computerun ORDER BY id DESC LIMIT 1"
    )
    assert (status, code) == ("failed", "broker_unavailable")


def test_compute_wait_gives_up_and_says_what_it_waits_for(
    registry: dict[str, str], broker: RedisServer
) -> None:
    """Issue 23: `tally compute` polled a run nobody would take forever. It stops after
    --timeout, names what it was waiting for and exits 4; the run stays queued for a worker."""
    env = {**registry, "CELERY_BROKER_URL": broker.url}
    done = run_tally("compute", "revenue", "--start", "2026-02-01", "--end", "2026-02-28",
                     "--timeout", "1", env=env)  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "waiting for a worker to take run" in done.stderr
    assert "error[wait_timeout]" in done.stderr and "Traceback" not in done.stderr


def test_compute_when_the_registry_drops_while_enqueueing_fails_cleanly_and_marks_the_run(
    registry: dict[str, str], broker: RedisServer, tmp_path: Path
) -> None:
    """Issue 23: when the registry dropped while `tally compute` queued its run, the command
    printed a traceback and left the run `queued` (with no enqueued_at the reaper never
    looked at it). The broker's writes are paused so the command waits inside the send,
    after its commit; its registry backend is terminated there, then the broker resumes. The
    command exits 1 with error[registry_unavailable] and a hint, and the run is failed."""
    import redis

    env = {**registry, "CELERY_BROKER_URL": broker.url}
    dbname = env["DATABASE_URL"].rsplit("/", 1)[1]
    ((before,),) = sql(env, "SELECT coalesce(max(id), 0) FROM semantic_computerun")
    control = redis.Redis(port=broker.port)
    control.execute_command("CLIENT", "PAUSE", 120_000, "WRITE")
    log = tmp_path / "compute.err"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tally.cli", "compute", "revenue", "--start", "2026-04-01",
             "--end", "2026-04-30", "--timeout", "5"],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=log.open("w"),
            text=True,
        )  # fmt: skip
        # The run is committed and the command is inside the send: drop its connection.
        wait_for(
            lambda: sql(env, "SELECT count(*) FROM semantic_computerun WHERE id > %s", before)
            == [(1,)],
            timeout=90, what="the run to be committed", logs=(log,),
        )  # fmt: skip
        killed = sql(
            env,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            dbname,
        )
        assert killed, "the command holds no registry connection to terminate"
    finally:
        control.execute_command("CLIENT", "UNPAUSE")
        control.close()
    proc.communicate(timeout=120)
    stderr = log.read_text()
    assert proc.returncode == 1, stderr
    assert "error[registry_unavailable]" in stderr and "hint:" in stderr, stderr
    assert "Traceback" not in stderr, stderr
    runs = sql(env, "SELECT status, error->>'code' FROM semantic_computerun WHERE id > %s", before)
    assert runs == [("failed", "registry_unavailable")]
