"""A SQL API client that disconnects leaves no registry connection behind (issue 23's soak:
BI clients reconnecting every few seconds used up PostgreSQL's max_connections within 40 s,
and every web request, SQL query and compute run then failed until the backends were
terminated). Each connection's thread closes its registry connection when it ends."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import ROOT, demo_warehouse_at, require_service, run_tally
from tests.integration.test_worker_faults import wait_for
from tests.sqlapi.conftest import free_port, start_sql_server, stop

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLIENTS = 25


@pytest.fixture
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    require_service("postgres")
    name = f"i23_sqlapi_conns_{os.getpid()}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    wh = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    demo_warehouse_at(wh, events=2_000, seed=42)
    env = {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{name}",
           "WAREHOUSE_URL": f"duckdb:///{wh}", "TALLY_RATE_QUERY": "100000/min"}  # fmt: skip
    for args in (("migrate", "--verbosity", "0"), ("sync", str(ROOT / "fixtures"))):
        done = run_tally(*args, env=env)
        assert done.returncode == 0, done.stderr
    try:
        yield name, env
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backends(name: str) -> int:
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _open_sessions(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        lines = response.read().decode().splitlines()
    return next(float(x.split()[1]) for x in lines if x.startswith("tally_sqlapi_connections "))


@pytest.mark.service("postgres")
def test_disconnected_clients_leave_no_registry_connection(
    registry: tuple[str, dict[str, str]],
) -> None:
    name, env = registry
    made = run_tally("shell", "-c", (
        "from django.contrib.auth.models import User; "
        "from registry.services.access import role_grant, token_create; "
        "u = User.objects.create_user('bi'); role_grant(user=u, role='auditor'); "
        "print(token_create(acting_user=None, user=u, scopes='read,query').raw)"
    ), env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    metrics_port = free_port()
    process, port = start_sql_server({**env, "TALLY_SQL_METRICS_PORT": str(metrics_port)})
    try:
        for _ in range(CLIENTS):
            url = f"postgresql://bi:{token}@127.0.0.1:{port}/tally"
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        # Every session's thread has ended (the gauge drops after its cleanup)…
        wait_for(lambda: _open_sessions(metrics_port) == 0, timeout=60, what="sessions to end")
        # …and closed its registry connection: what is left is the server's own (the
        # catalog it built at start), not one per client that came and went.
        assert _backends(name) <= 2
    finally:
        stop(process)
