"""SQL API overhead and Arrow transfer, against real `tally serve-sql` and Django servers.

1. Per-query overhead: the same metric query (revenue by month and plan, ~100 rows) sent
   back to back as ``POST /api/v1/query`` (JSON, one keep-alive session, bearer token) and
   over the PostgreSQL wire protocol (one psycopg connection; simple protocol and the
   extended one with a bound parameter). Both paths hit the compile cache, so the
   difference is the SQL API's own cost (parse, map, stream) against DRF's.
2. Transfer: ``events_tracked`` by day × user × event type (~1M rows on a 1M-event demo
   warehouse) as JSON (rows parsed by the client) and as an Arrow IPC stream (read into a
   ``pyarrow.Table``).

    python -m bench sql_api [--events 1000000] [--repeat 5] [--soak-seconds 0]

``--soak-seconds N`` adds a soak: 50 clients connect and query in a loop for N seconds;
rows: queries/s and errors.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.runner import Benchmark, Row, Stats, measure

ROOT = Path(__file__).resolve().parent.parent
USER = "bench"
SMALL_SQL = (
    "SELECT metric_time__month, account__plan, revenue FROM metrics GROUP BY 1, 2 ORDER BY 1, 2"
)
SMALL_JSON = {
    "metrics": ["revenue"],
    "group_by": ["metric_time__month", "account__plan"],
    "order_by": ["metric_time__month", "account__plan"],
}
BIG_JSON = {
    "metrics": ["events_tracked"],
    "group_by": ["metric_time__day", "user", "event__event_type"],
}
# Both paths authenticate as a BI tool does: one API token (an HMAC check per request, no
# password hashing), as the password of the SQL connection and as the HTTP bearer token.
TOKEN_SCRIPT = (
    "from django.contrib.auth.models import User; "
    "from registry.services.access import role_grant, token_create; "
    f"u = User.objects.create_user({USER!r}); role_grant(user=u, role='analyst'); "
    "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw)"
)
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per overhead sample")
    parser.add_argument("--soak-seconds", type=float, default=0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tally(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tally.cli", *args], cwd=ROOT, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"tally {args[0]} failed: {result.stderr[-2000:]}")
    return result.stdout


def run(options: argparse.Namespace) -> list[Row]:
    import psycopg
    import pyarrow as pa
    import requests

    _NOTES.clear()
    repeat = options.repeat or 5
    with tempfile.TemporaryDirectory(prefix="tally-bench-sqlapi-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'registry.sqlite3'}",
            "WAREHOUSE_URL": f"duckdb:///{Path(tmp) / 'wh.duckdb'}",
            "TALLY_QUERY_ROW_CAP": "5000000",
            "TALLY_SQL_ROW_CAP": "5000000",
            # Back-to-back queries from one user: lift the per-user rate limits.
            "TALLY_RATE_QUERY": "1000000/min",
            "TALLY_RATE_COMPILE": "1000000/min",
        }
        _tally(env, "migrate", "-v0")
        _tally(env, "generate-demo", "--events", str(options.events), "--seed", "42",
               "--out", str(Path(tmp) / "wh.duckdb"))  # fmt: skip
        _tally(env, "sync", str(ROOT / "fixtures"))
        token = _tally(env, "shell", "-c", TOKEN_SCRIPT).strip().splitlines()[-1]
        server_log = Path(tmp) / "serve-sql.log"
        sql = subprocess.Popen(
            [sys.executable, "-m", "tally.cli", "serve-sql", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=server_log.open("w"), text=True,
        )  # fmt: skip
        assert sql.stdout is not None
        sql_port = int(sql.stdout.readline().rsplit(":", 1)[1].split()[0])
        http_port = _free_port()
        web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{http_port}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", http_port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.1)
            base = f"http://127.0.0.1:{http_port}/api/v1/query"
            dsn = f"postgresql://{USER}:{token}@127.0.0.1:{sql_port}/tally"
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            conn = psycopg.connect(dsn, autocommit=True)
            n = options.queries

            def http_small() -> None:
                for _ in range(n):
                    response = session.post(base, json=SMALL_JSON)
                    response.raise_for_status()
                    response.json()

            def sql_simple() -> None:
                for _ in range(n):
                    conn.execute(SMALL_SQL, prepare=False).fetchall()

            def sql_extended() -> None:
                for _ in range(n):
                    conn.execute(
                        SMALL_SQL.replace("GROUP BY", "WHERE account__region <> %s GROUP BY"),
                        ["nowhere"],
                    ).fetchall()

            per_query = {
                "POST /api/v1/query (JSON)": measure(http_small, repeat=repeat),
                "SQL API, simple protocol": measure(sql_simple, repeat=repeat),
                "SQL API, extended protocol + parameter": measure(sql_extended, repeat=repeat),
            }
            rows = [
                Row(case, n, stats.map(lambda s: s / n * 1000), "ms/query")
                for case, stats in per_query.items()
            ]
            http_ms = per_query["POST /api/v1/query (JSON)"].median / n * 1000
            for case in list(per_query)[1:]:
                overhead = per_query[case].median / n * 1000 - http_ms
                rows.append(Row(f"overhead over POST: {case}", n, Stats((overhead,)), "ms/query"))

            rows.append(_translate_row(n, repeat))

            def big_json() -> int:
                response = session.post(base, json=BIG_JSON)
                response.raise_for_status()
                return len(response.json()["rows"])

            def big_arrow() -> int:
                response = session.post(
                    base + "?format=arrow", json=BIG_JSON, stream=True,
                    headers={"Accept": "application/vnd.apache.arrow.stream"},
                )  # fmt: skip
                response.raise_for_status()
                response.raw.decode_content = True
                return pa.ipc.open_stream(response.raw).read_all().num_rows

            size = big_arrow()
            assert big_json() == size, "JSON and Arrow disagree on the row count"
            rows.append(Row("transfer: JSON", size, measure(big_json, repeat=repeat, warmup=0)))
            rows.append(
                Row("transfer: Arrow IPC", size, measure(big_arrow, repeat=repeat, warmup=0))
            )
            if options.soak_seconds:
                rows.extend(_soak(dsn, options.soak_seconds))
                problems = [
                    line for line in server_log.read_text().splitlines()
                    if "Error" in line and "unsupported syntax" not in line
                ]  # fmt: skip
                if problems:
                    _NOTES.append(f"server log: {problems[-3:]}")
            conn.close()
        finally:
            sql.terminate()
            web.terminate()
            sql.wait(timeout=30)
            web.wait(timeout=30)
    _NOTES.append(f"{options.events:,} events; {repeat} samples")
    return rows


def _translate_row(n: int, repeat: int) -> Row:
    """What the SQL API adds in front of the compiler: parse the SQL and map it onto a
    MetricQuery (in this process, on the fixtures' table)."""
    import sqlglot

    from semantic.compiler.definition_checks import load_project
    from semantic.compiler.manifest import build_manifest
    from semantic.sqlapi.table import sql_table_build
    from semantic.sqlapi.translate import map_select

    project = load_project(ROOT / "fixtures")
    manifest = build_manifest(
        [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()],
        release="r1",
    )
    table = sql_table_build(manifest)

    def translate() -> None:
        for _ in range(n):
            map_select(sqlglot.parse_one(SMALL_SQL, read="postgres"), table, dialect="duckdb")

    stats = measure(translate, repeat=repeat)
    return Row(
        "SQL API's own step: parse + map (in-process)",
        n,
        stats.map(lambda s: s / n * 1000),
        "ms/query",
    )


def _soak(dsn: str, seconds: float) -> list[Row]:
    import psycopg

    errors: list[BaseException] = []
    done = [0] * 50
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        try:
            while time.monotonic() < deadline:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    for _ in range(10):
                        conn.execute(SMALL_SQL).fetchall()
                        done[index] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(50)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    if errors:
        _NOTES.append(f"soak errors: {errors[:3]!r}")
    total = sum(done)
    return [
        Row(f"soak: 50 clients for {seconds:g} s", total, Stats((total / elapsed,)), "queries/s"),
        Row("soak: errors", total, Stats((float(len(errors)),)), "errors"),
    ]


def notes() -> str:
    return "; ".join(_NOTES)


BENCHMARK = Benchmark(
    description="SQL API per-query overhead vs POST /api/v1/query; Arrow vs JSON transfer",
    run=run,
    add_arguments=add_arguments,
    baseline="POST /api/v1/query (JSON)",
    notes=notes,
)
