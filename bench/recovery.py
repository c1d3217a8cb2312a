"""Recovery after a worker ``kill -9``, with the DEFAULT lease, reaper and requeue settings.

A PostgreSQL registry, a private ``redis-server`` (free port, no persistence) and real
Celery workers: a 92-chunk run starts on worker 1, which is killed with SIGKILL after a few
chunks; worker 2 (with beat, so the reaper runs) is started at once. Rows: seconds from the
kill until another attempt took the run over and until it succeeded, and the values check
(duplicate keys must be 0; values lost = values a clean run of the same range writes minus
the values stored). Needs PostgreSQL on 127.0.0.1:5432 and ``redis-server`` on PATH.

    python -m bench recovery
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import Benchmark, Row, Stats

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKER_MAIN = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
    "sys.argv[0] = 'celery'; from celery.__main__ import main; main()"
)
RANGE = ("events_tracked", "revenue", "--start", "2026-06-01", "--end", "2026-08-31",
         "--chunk-periods", "1")  # fmt: skip
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=20_000)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tally(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tally.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"tally {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


def _worker(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER_MAIN, "-A", "tally", "worker", "--pool", "solo",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", *extra],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def run(options: argparse.Namespace) -> list[Row]:
    import psycopg

    from semantic.demo import build_demo_warehouse

    _NOTES.clear()
    name = f"i23_ops_bench_recovery_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="tally-bench-recovery-") as tmp_name:
        tmp = Path(tmp_name)
        port = _free_port()
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", str(tmp)], stdout=subprocess.DEVNULL,
        )  # fmt: skip
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        build_demo_warehouse(tmp / "wh.duckdb", events=options.events, seed=42)
        # Only what a deployment must set: every TALLY_COMPUTE_* clock is its default.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "DJANGO_"))}
        env |= {"TALLY_DEMO": "1", "DATABASE_URL": url,
                "WAREHOUSE_URL": f"duckdb:///{tmp / 'wh.duckdb'}",
                "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0"}  # fmt: skip
        workers: list[subprocess.Popen[bytes]] = []
        try:
            _tally(env, "migrate", "--verbosity", "0")
            _tally(env, "sync", str(ROOT / "fixtures"))
            run_id = int(_tally(env, "compute", *RANGE, "--no-wait").strip().splitlines()[-1])

            def row() -> tuple[str, int, int, int, int]:
                with psycopg.connect(url, autocommit=True) as conn:
                    got = conn.execute(
                        "SELECT status, attempts, chunks_done, values_written, values_unchanged "
                        "FROM semantic_computerun WHERE id = %s",
                        (run_id,),
                    ).fetchone()
                assert got is not None
                return got

            workers.append(_worker(env, tmp / "w1.log"))
            while row()[2] < 5:
                time.sleep(0.2)
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed_at = time.monotonic()
            at_kill = row()[2]
            workers.append(_worker(env, tmp / "w2.log", "--beat", "--schedule",
                                   str(tmp / "beat-schedule")))  # fmt: skip
            while row()[1] < 2:
                time.sleep(0.2)
            resumed = time.monotonic() - killed_at
            while row()[0] not in ("succeeded", "failed"):
                time.sleep(0.5)
            done_s = time.monotonic() - killed_at
            status, attempts, chunks, _written, _unchanged = row()
            with psycopg.connect(url, autocommit=True) as conn:
                total, keys = conn.execute(
                    "SELECT count(*), count(DISTINCT (metric_name, grain, period_start, "
                    "slice_hash)) FROM semantic_metricvalue"
                ).fetchone()
            # A clean run over the same range finds every value it would write stored.
            clean = int(_tally(env, "compute", *RANGE, "--no-wait").strip().splitlines()[-1])
            while True:
                with psycopg.connect(url, autocommit=True) as conn:
                    st, cw, cu = conn.execute(
                        "SELECT status, values_written, values_unchanged FROM "
                        "semantic_computerun WHERE id = %s", (clean,),
                    ).fetchone()  # fmt: skip
                if st in ("succeeded", "failed"):
                    break
                time.sleep(0.5)
            lost = cw  # values the clean run had to write were missing (or wrong)
        finally:
            for w in workers:
                if w.poll() is None:
                    w.terminate()
                    w.wait(timeout=30)
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _NOTES.append(
        f"run {status} after {attempts} attempts, {chunks} chunks (killed at {at_kill}); "
        f"{total} values, {total - keys} duplicate keys; clean re-run {st}: {cu} unchanged, "
        f"{cw} written (= lost)"
    )
    return [
        Row("kill -9 -> run taken over (defaults)", 1, Stats((resumed,)), "s"),
        Row("kill -9 -> run succeeded (defaults)", 1, Stats((done_s,)), "s"),
        Row("values lost (clean re-run had to write)", total, Stats((float(lost),)), "values"),
        Row("duplicate value keys", total, Stats((float(total - keys),)), "rows"),
    ]


def notes() -> str:
    return "; ".join(_NOTES)


BENCHMARK = Benchmark(
    description="recovery after a worker kill -9 with default lease/reaper settings",
    run=run,
    add_arguments=add_arguments,
    notes=notes,
)
