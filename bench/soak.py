"""Soak: the HTTP API, the SQL API and a worker (with beat) together for ``--seconds``, with
faults injected, on a PostgreSQL registry and a private ``redis-server``.

Load: ``--http`` threads POST /api/v1/query (a few dashboard queries, with a token), ``--sql``
threads run metric queries over the SQL API, and a compute run is enqueued every 10 s. Faults,
spread over the soak: the worker is killed with SIGKILL (and a new one started), Redis is
restarted without persistence (its messages are lost), and the registry's backends are
terminated. Rows: requests, throughput and p50/p95/p99 per interface, errors, the RSS of each
process (start, peak), and the values check: every run ends, and a clean re-run of every
range finds all its values stored (values lost must be 0).

    python -m bench soak --seconds 180
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.runner import Benchmark, Row, Stats
from bench.soak_errors import (
    Fault,
    SoakError,
    fault_at,
    faults_reaching,
    in_flight,
    soak_error,
    unexpected,
)

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WORKER_MAIN = (
    "import sys; sys.meta_path[:] = [f for f in sys.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
    "sys.argv[0] = 'celery'; from celery.__main__ import main; main()"
)
HTTP_QUERIES = (
    {"metrics": ["events_tracked"], "group_by": ["metric_time__month"]},
    {"metrics": ["revenue", "signups"], "group_by": ["metric_time__week", "account__plan"]},
    {"metrics": ["daily_active_users"], "group_by": ["metric_time__day"]},
)
SQL_QUERY = "SELECT metric_time__month, account__plan, MEASURE(revenue) FROM metrics GROUP BY 1, 2"
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--http", type=int, default=4)
    parser.add_argument("--sql", type=int, default=4)
    parser.add_argument("--errors-out", type=Path, help="write every error (JSON) here")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _tally(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tally.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"tally {args[0]} failed: {done.stderr[-2000:]}")
    return done.stdout


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port}")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(options: argparse.Namespace) -> list[Row]:
    import psycopg

    from semantic.demo import build_demo_warehouse

    _NOTES.clear()
    name = f"i23_ops_bench_soak_{os.getpid()}"
    tmp_dir = tempfile.TemporaryDirectory(prefix="tally-bench-soak-")
    tmp = Path(tmp_dir.name)
    rport, hport, mport = _free_port(), _free_port(), _free_port()
    redis_cmd = ["redis-server", "--port", str(rport), "--save", "", "--appendonly", "no",
                 "--dir", str(tmp)]  # fmt: skip
    procs: dict[str, subprocess.Popen[bytes]] = {}
    procs["redis"] = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    build_demo_warehouse(tmp / "wh.duckdb", events=options.events, seed=42)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "DJANGO_"))}
    env |= {"TALLY_DEMO": "1", "DATABASE_URL": url, "WAREHOUSE_URL": f"duckdb:///{tmp / 'wh.duckdb'}",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{rport}/0",
            "TALLY_CACHE_URL": f"redis://127.0.0.1:{rport}/1",
            "TALLY_RATE_QUERY": "1000000/min", "TALLY_RATE_COMPILE": "1000000/min",
            "TALLY_SQL_MAX_UNAUTH_PER_ADDRESS": "64", "TALLY_LOG_FORMAT": "json",
            "TALLY_SQL_METRICS_PORT": str(mport)}  # fmt: skip
    stop = threading.Event()
    lat: dict[str, list[float]] = {"http": [], "sql": []}
    # Every error with when its request started and ended (seconds since the soak began),
    # so that it can be set against the faults (bench/soak_errors.py).
    errors: dict[str, list[SoakError]] = {"http": [], "sql": [], "compute": []}
    faults_hit: list[Fault] = []
    began = time.monotonic()
    rss: dict[str, list[float]] = {}
    runs: list[tuple[int, str]] = []
    try:
        _tally(env, "migrate", "--verbosity", "0")
        _tally(env, "sync", str(ROOT / "fixtures"))
        token = _tally(env, "shell", "-c", (
            "from django.contrib.auth.models import User; "
            "from registry.services.access import role_grant, token_create; "
            "u = User.objects.create_user('soak', password='soak-pw-123'); "
            "role_grant(user=u, role='auditor'); "
            "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw)"
        )).strip().splitlines()[-1]  # fmt: skip

        def start(role: str) -> None:
            log = (tmp / f"{role}.log").open("a")
            cmd = {
                "web": [sys.executable, "manage.py", "runserver", "--noreload",
                        f"127.0.0.1:{hport}"],
                "worker": [sys.executable, "-c", WORKER_MAIN, "-A", "tally", "worker",
                           "--concurrency", "2", "--beat", "--schedule",
                           str(tmp / "beat-schedule"), "--loglevel", "INFO"],
                "sql": [sys.executable, "-m", "tally.cli", "serve-sql", "--port", "0"],
            }[role]  # fmt: skip
            procs[role] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE
                                           if role == "sql" else log, stderr=log)  # fmt: skip

        for role in ("web", "worker", "sql"):
            start(role)
        _wait_port(hport)
        line = procs["sql"].stdout.readline().decode()  # type: ignore[union-attr]
        sport = int(line.rsplit(":", 1)[1].split()[0])

        def http_client(i: int) -> None:
            while not stop.is_set():
                body = json.dumps(HTTP_QUERIES[i % len(HTTP_QUERIES)]).encode()
                request = urllib.request.Request(
                    f"http://127.0.0.1:{hport}/api/v1/query", data=body, method="POST",
                    headers={"Authorization": f"Bearer {token}",
                             "Content-Type": "application/json"},
                )  # fmt: skip
                started = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        response.read()
                    lat["http"].append((time.perf_counter() - started) * 1000)
                except Exception as exc:
                    errors["http"].append(soak_error(exc, started, began))
                i += 1

        def sql_client() -> None:
            dsn = f"postgresql://soak:{token}@127.0.0.1:{sport}/tally"
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    with psycopg.connect(dsn, connect_timeout=30) as conn:
                        for _ in range(20):
                            if stop.is_set():
                                break
                            started = time.perf_counter()
                            conn.execute(SQL_QUERY).fetchall()
                            lat["sql"].append((time.perf_counter() - started) * 1000)
                except Exception as exc:
                    errors["sql"].append(soak_error(exc, started, began))

        def enqueue(rng: tuple[str, ...]) -> None:
            started = time.perf_counter()
            try:
                out = _tally(env, "compute", "events_tracked", "revenue", *rng,
                             "--chunk-periods", "2", "--no-wait")  # fmt: skip
                runs.append((int(out.strip().splitlines()[-1]), " ".join(rng)))
            except RuntimeError as exc:
                errors["compute"].append(soak_error(exc, started, began))

        threads = [threading.Thread(target=http_client, args=(i,)) for i in range(options.http)]
        threads += [threading.Thread(target=sql_client) for _ in range(options.sql)]
        began = time.monotonic()
        for t in threads:
            t.start()
        faults = {0.25: "kill worker", 0.5: "restart redis", 0.75: "terminate registry backends"}
        next_run, months = began, iter(range(1, 1000))
        while time.monotonic() - began < options.seconds:
            share = (time.monotonic() - began) / options.seconds
            for at in sorted(faults):
                if share >= at:
                    fault = faults.pop(at)
                    fault_began = time.monotonic() - began
                    _NOTES.append(f"{fault} at {fault_began:.0f}s")
                    if fault == "kill worker":
                        procs["worker"].send_signal(signal.SIGKILL)
                        procs["worker"].wait()
                        start("worker")
                    elif fault == "restart redis":
                        procs["redis"].terminate()
                        procs["redis"].wait()
                        procs["redis"] = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL)
                        _wait_port(rport)
                    else:
                        with psycopg.connect(url, autocommit=True) as conn:
                            conn.execute(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE datname = %s AND pid <> pg_backend_pid()", (name,),
                            )  # fmt: skip
                    faults_hit.append(Fault(fault, fault_began, time.monotonic() - began))
            if time.monotonic() >= next_run:
                n = next(months)
                year, month = 2026 - (n // 12), 12 - (n % 12)
                rng = ("--start", f"{year}-{month:02d}-01", "--end", f"{year}-{month:02d}-28")
                # Enqueued from a thread: the CLI takes seconds under load, and the loop
                # must keep sampling memory and injecting faults on time.
                threading.Thread(target=enqueue, args=(rng,)).start()
                next_run += 10
            for role, proc in procs.items():
                rss.setdefault(role, []).append(_rss_mb(proc.pid))
            time.sleep(1)
        elapsed = time.monotonic() - began
        stop.set()
        for t in threads:
            t.join(timeout=120)
        while threading.active_count() > 1 and time.monotonic() - began < options.seconds + 120:
            time.sleep(0.5)  # enqueue threads still running
        # Every run ends (the reaper hands on what the faults orphaned)…
        deadline = time.monotonic() + 600
        ids = [r for r, _ in runs]
        while time.monotonic() < deadline:
            with psycopg.connect(url, autocommit=True) as conn:
                open_runs = conn.execute(
                    "SELECT count(*) FROM semantic_computerun WHERE id = ANY(%s) AND status "
                    "NOT IN ('succeeded', 'failed')", (ids,),
                ).fetchone()[0]  # fmt: skip
            if not open_runs:
                break
            time.sleep(2)
        with psycopg.connect(url, autocommit=True) as conn:
            states = dict(conn.execute(
                "SELECT status, count(*) FROM semantic_computerun WHERE id = ANY(%s) GROUP BY 1",
                (ids,),
            ).fetchall())  # fmt: skip
        # …and a clean re-run of every range finds its values stored: what it writes was lost.
        lost = 0
        for _, rng in runs:
            parts = rng.split()
            out = _tally(env, "compute", "events_tracked", "revenue", *parts, "--format", "json",
                         "--timeout", "600")  # fmt: skip
            lost += int(json.loads(out)["values_written"])
    finally:
        stop.set()
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        tmp_dir.cleanup()
    _NOTES.append(f"runs {states}")
    for kind, found in errors.items():
        for error in found:
            hit = fault_at(error, faults_reaching(kind, faults_hit))
            why = f"in flight at {hit.name}" if hit else "UNEXPECTED"
            _NOTES.append(f"{kind} error at {error.started:.1f}-{error.ended:.1f}s ({why}): "
                          f"{error.message}")  # fmt: skip
    if options.errors_out:
        options.errors_out.write_text(json.dumps({
            "faults": [f.__dict__ for f in faults_hit],
            "errors": {k: [e.__dict__ for e in v] for k, v in errors.items()},
        }, indent=1))  # fmt: skip
    rows = []
    for kind in ("http", "sql", "compute"):
        values = lat.get(kind, [])
        reaching = faults_reaching(kind, faults_hit)
        counted = (
            f"{len(errors[kind])} errors: {len(in_flight(errors[kind], reaching))} in "
            f"flight at a fault, {len(unexpected(errors[kind], reaching))} unexpected"
        )
        if kind == "compute":
            rows.append(Row(f"compute runs ({counted})", len(runs), Stats((float(len(runs)),)),
                            "runs"))  # fmt: skip
            continue
        rows.append(Row(f"{kind}: requests ({counted})", len(values),
                        Stats((len(values) / elapsed,)), "req/s"))  # fmt: skip
        for q in (0.5, 0.95, 0.99):
            rows.append(Row(f"{kind}: p{int(q * 100)}", len(values), Stats((_pct(values, q),)),
                            "ms"))  # fmt: skip
    for role, samples in rss.items():
        if role == "redis" or not samples:
            continue
        third = max(1, len(samples) // 3)
        rows.append(Row(f"RSS {role}: start / 1st third / 2nd third / end / peak", len(samples),
                        Stats((samples[0], samples[third], samples[2 * third], samples[-1],
                               max(samples))), "MB"))  # fmt: skip
    rows.append(Row("values lost (clean re-runs had to write)", len(runs), Stats((float(lost),)),
                    "values"))  # fmt: skip
    return rows


def notes() -> str:
    return "; ".join(_NOTES)


BENCHMARK = Benchmark(
    description="HTTP API + SQL API + worker under load with faults injected",
    run=run,
    add_arguments=add_arguments,
    notes=notes,
)
