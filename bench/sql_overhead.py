"""Per-query overhead of the SQL API over the same query run in-process (issue #19).

The baseline is ``semantic.audited.metric_query_run`` in this process (compile cache hit,
audit row, DuckDB execution; the result cache is off on both sides, as the SQL API does
not use it): what any Tally interface must do for a query. Against it, the
same question sent back to back to a real ``tally serve-sql`` by psycopg (simple protocol;
extended protocol with a bound parameter), asyncpg (a prepared statement, binary results)
and a filter dropdown's ``SELECT DISTINCT`` against ``semantic.dimension_values`` in-process.
The difference is the SQL API's own cost: the wire, parsing and mapping the SQL, the
identity re-check and rate limit, encoding rows. Target (issue #19): ≤ 2 ms median.

    python -m bench sql_overhead [--events 20000] [--queries 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.runner import Benchmark, Row, Stats, measure

ROOT = Path(__file__).resolve().parent.parent
USER = "bench"
SQL = "SELECT metric_time__month, account__plan, revenue FROM metrics ORDER BY 1, 2"
SQL_PARAM = (
    "SELECT metric_time__month, account__plan, revenue FROM metrics "
    "WHERE account__region <> $1 ORDER BY 1, 2"
)
DISTINCT = "SELECT DISTINCT account__plan FROM metrics"
BASELINE = "in-process: metric_query_run"
# The SQL API holds a DuckDB warehouse open between queries (semantic.warehouse.held);
# metric_query_run opens the file per query (~20 ms of CPU). This floor runs the same
# audited compile and stream on a held file: the like-for-like cost of the SQL API's steps.
HELD_FLOOR = "in-process: audited compile + stream, warehouse held"
# An auditor reads every tenant (no row policy), as the trusted in-process call does.
TOKEN_SCRIPT = (
    "from django.contrib.auth.models import User; "
    "from registry.services.access import role_grant, token_create; "
    f"u = User.objects.create_user({USER!r}); role_grant(user=u, role='auditor'); "
    "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw)"
)
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200, help="queries per sample")


def _tally(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tally.cli", *args], cwd=ROOT, env=env,
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode:
        raise RuntimeError(f"tally {args[0]} failed: {result.stderr[-2000:]}")
    return result.stdout


def run(options: argparse.Namespace) -> list[Row]:
    _NOTES.clear()
    repeat = options.repeat or 5
    n = options.queries
    with tempfile.TemporaryDirectory(prefix="tally-bench-sqloverhead-") as tmp:
        warehouse = Path(tmp) / "wh.duckdb"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'registry.sqlite3'}",
            "WAREHOUSE_URL": f"duckdb:///{warehouse}",
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "tally.settings"),
            "TALLY_DEMO": "1",  # demo data: development secrets
            "TALLY_RATE_QUERY": "1000000/min",
            "TALLY_RATE_COMPILE": "1000000/min",
            # The SQL API streams every answer from the warehouse; with the result cache on,
            # the in-process baseline would skip the warehouse and the "overhead" would be
            # DuckDB's own time. Off, both sides run the same scan.
            "TALLY_RESULT_CACHE_TTL_S": "0",
        }
        env.pop("CELERY_BROKER_URL", None)
        _tally(env, "migrate", "-v0")
        _tally(env, "generate-demo", "--events", str(options.events), "--seed", "42",
               "--out", str(warehouse))  # fmt: skip
        _tally(env, "sync", str(ROOT / "fixtures"))
        token = _tally(env, "shell", "-c", TOKEN_SCRIPT).strip().splitlines()[-1]
        # This process runs the in-process baseline on the same registry and warehouse.
        for key in (
            "DATABASE_URL",
            "WAREHOUSE_URL",
            "TALLY_RATE_QUERY",
            "TALLY_RATE_COMPILE",
            "TALLY_RESULT_CACHE_TTL_S",
        ):
            os.environ[key] = env[key]
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", env["DJANGO_SETTINGS_MODULE"])
        os.environ.setdefault("TALLY_DEMO", "1")
        server = subprocess.Popen(
            [sys.executable, "-m", "tally.cli", "serve-sql", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline().rsplit(":", 1)[1].split()[0])
            dsn = f"postgresql://{USER}:{token}@127.0.0.1:{port}/tally"
            rows = _measure(dsn, n, repeat, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
    _NOTES.append(f"{options.events:,} events; {n} queries per sample; {repeat} samples")
    return rows


def _measure(dsn: str, n: int, repeat: int, server_pid: int) -> list[Row]:
    import asyncpg
    import django
    import psycopg

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User

    from registry.permissions import principal_for
    from semantic.audited import metric_query_run
    from semantic.compiler.spec import MetricQuery
    from semantic.dimension_values import dimension_values
    from semantic.streams import metric_query_compile
    from semantic.warehouse.held import HeldDuckDB
    from semantic.warehouse.run import stream_compiled

    user = User.objects.get(username=USER)
    principal = principal_for(user)
    query = MetricQuery(
        metrics=("revenue",),
        group_by=("metric_time__month", "account__plan"),
        order_by=("metric_time__month", "account__plan"),
    )
    conn = psycopg.connect(dsn, autocommit=True)
    loop = asyncio.new_event_loop()
    apg = loop.run_until_complete(asyncpg.connect(dsn))
    prepared = loop.run_until_complete(apg.prepare(SQL_PARAM))
    size = len(conn.execute(SQL).fetchall())

    def in_process() -> None:
        for _ in range(n):
            metric_query_run(query=query, release_ref=None, principal=principal, acting_user=user)

    assert settings.WAREHOUSE.path is not None
    held = HeldDuckDB(settings.WAREHOUSE.path, idle_s=60)

    def warm() -> None:
        held.cursor().close()
        held.done()

    def held_in_process() -> None:
        for _ in range(n):
            compiled = metric_query_compile(query=query, principal=principal, acting_user=user)
            with stream_compiled(compiled, principal=principal, held=held) as (_c, batches):
                [row for batch in batches for row in batch]

    def values_in_process() -> None:
        for _ in range(n):
            dimension_values(principal=principal, dimension="account__plan", acting_user=user)

    def psycopg_simple() -> None:
        for _ in range(n):
            conn.execute(SQL, prepare=False).fetchall()

    def psycopg_extended() -> None:
        for _ in range(n):
            conn.execute(SQL_PARAM.replace("$1", "%s"), ["nowhere"]).fetchall()

    def asyncpg_prepared() -> None:
        async def go() -> None:
            for _ in range(n):
                await prepared.fetch("nowhere")

        loop.run_until_complete(go())

    def distinct() -> None:
        for _ in range(n):
            conn.execute(DISTINCT, prepare=False).fetchall()

    def cpu_seconds() -> float:
        # CPU of this process (the client drivers, or the in-process query) plus the server's
        # (/proc/PID/stat fields 14-15, utime and stime): a loaded machine stretches wall time
        # far more than the CPU each query costs.
        fields = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return time.process_time() + ticks / os.sysconf("SC_CLK_TCK")

    work = {
        BASELINE: in_process,
        HELD_FLOOR: held_in_process,
        "SQL API: psycopg, simple protocol": psycopg_simple,
        "SQL API: psycopg, extended + parameter": psycopg_extended,
        "SQL API: asyncpg, prepared, binary": asyncpg_prepared,
        "in-process: dimension_values": values_in_process,
        "SQL API: SELECT DISTINCT (dimension values)": distinct,
    }
    try:
        # While this process holds the file, metric_query_run's own opening of it is cheap
        # (DuckDB shares the open instance): every other case runs with it let go.
        setups = {case: held.release for case in work} | {HELD_FLOOR: warm}
        cases = {case: measure(fn, repeat=repeat, setup=setups[case]) for case, fn in work.items()}
        cpu = {
            case: measure(fn, repeat=repeat, timer=cpu_seconds, setup=setups[case])
            for case, fn in work.items()
        }
    finally:
        conn.close()
        loop.run_until_complete(apg.close())
        loop.close()
        held.release()
    cases.update(_own_steps(n, repeat))
    rows: list[Row] = []
    for unit, found, label in (("ms/query", cases, ""), ("ms CPU/query", cpu, " (CPU)")):
        per_query = {case: stats.map(lambda s: s / n * 1000) for case, stats in found.items()}
        rows.extend(Row(case + label, size, stats, unit) for case, stats in per_query.items())
        floors = {"SQL API: SELECT DISTINCT (dimension values)": "in-process: dimension_values"}
        for case, stats in per_query.items():
            if not case.startswith("SQL API:"):
                continue
            floor = per_query[floors.get(case, BASELINE)]
            extra = Stats(tuple(s - floor.median for s in stats.samples))
            rows.append(Row(f"overhead: {case}{label}", None, extra, unit))
            if case not in floors:
                held_floor = per_query[HELD_FLOOR]
                extra = Stats(tuple(s - held_floor.median for s in stats.samples))
                rows.append(Row(f"overhead vs held floor: {case}{label}", None, extra, unit))
    return rows


def _own_steps(n: int, repeat: int) -> dict[str, Stats]:
    """The SQL API's CPU work per query, without the wire and the warehouse: parse, BI
    rewrites and mapping of the statement; encoding the answer's rows (text and binary).
    Deterministic where the end-to-end rows are at the mercy of the machine's load."""
    import datetime as dt
    from decimal import Decimal

    import sqlglot

    from semantic.manifests import manifest_for_release, release_resolve
    from semantic.sqlapi import wire
    from semantic.sqlapi.bi_shapes import map_bi_select
    from semantic.sqlapi.session import row_encoders
    from semantic.sqlapi.table import sql_table_build

    table = sql_table_build(manifest_for_release(release_resolve(None)))
    fields = [wire.Field("m", 1082), wire.Field("p", 1043), wire.Field("r", 1700)]
    answer = [(dt.date(2025, 1, 1), "enterprise", Decimal("91861.00"))] * 96

    def parse_and_map() -> None:
        for _ in range(n):
            tree = sqlglot.parse_one(SQL_PARAM.replace("$1", "'x'"), read="postgres")
            map_bi_select(tree, table, dialect="duckdb")

    def encode(formats: tuple[int, ...]) -> None:
        encoders = row_encoders(fields, formats)
        for _ in range(n):
            for row in answer:
                wire.data_row([enc(v) for enc, v in zip(encoders, row, strict=True)])

    return {
        "SQL API's own step: parse + BI rewrites + map": measure(parse_and_map, repeat=repeat),
        "SQL API's own step: encode 96 rows, text": measure(lambda: encode(()), repeat=repeat),
        "SQL API's own step: encode 96 rows, binary": measure(lambda: encode((1,)), repeat=repeat),
    }


BENCHMARK = Benchmark(
    description="per-query overhead of the SQL API over the same query in-process",
    run=run,
    add_arguments=add_arguments,
    baseline=BASELINE,
    notes=lambda: "; ".join(_NOTES),
)
