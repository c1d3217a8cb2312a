"""The web process under `runserver` holds no registry connection past a request (issue 23).

Django's development server serves every request on a new thread; each thread opened its own
persistent registry connection and, when it ended, left it open until the garbage collector
found it. A 120 s soak reached PostgreSQL's max_connections at 76 s. These tests drive the
real server (`manage.py runserver` in a subprocess, on a PostgreSQL registry of their own)
and count the database's connections in pg_stat_activity after each request.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import (
    ROOT,
    demo_warehouse_at,
    migrated_registry,
    require_service,
    run_tally,
)
from tests.integration.test_worker_faults import free_port, wait_for

pytestmark = [pytest.mark.registry_db, pytest.mark.slow]

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
QUERY = {"metrics": ["revenue", "signups"], "group_by": ["metric_time__week", "account__plan"]}
TOKEN_SCRIPT = (
    "from django.contrib.auth.models import User; "
    "from registry.services.access import role_grant, token_create; "
    "u = User.objects.create_user('dashboard'); role_grant(user=u, role='auditor'); "
    "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw)"
)


class Web:
    """A `manage.py runserver` on a free port, with its registry and a query token."""

    def __init__(self, env: dict[str, str], log: Path, token: str) -> None:
        self.port = free_port()
        self.token = token
        self.log = log
        self.dbname = env["DATABASE_URL"].rsplit("/", 1)[1]
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def up(self) -> bool:
        # A bare connect: a request would open a registry connection before the count.
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
        except OSError:
            return self.proc.poll() is not None  # a dead server ends the wait (asserted below)
        return True

    def post(self, path: str, body: object, **headers: str) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json", **headers},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def connections(self) -> int:
        """Connections to the registry database, this probe's own excepted."""
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            ((count,),) = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.dbname,)
            ).fetchall()
        return int(count)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture(scope="module")
def registry(
    tmp_path_factory: pytest.TempPathFactory, registry_template: Callable[..., str]
) -> Iterator[dict[str, str]]:
    """A migrated PostgreSQL registry with fixtures/ synced; yields the server's environment."""
    require_service("postgres")
    name = f"i23_ops_web_{os.getpid()}"
    wh = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    demo_warehouse_at(wh, events=20_000, seed=42)
    env = {
        "WAREHOUSE_URL": f"duckdb:///{wh}",
        "TALLY_RATE_QUERY": "1000000/min",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    with migrated_registry(name, env, registry_template) as registry_env:
        yield registry_env


@pytest.fixture
def web(registry: dict[str, str], tmp_path: Path) -> Iterator[Web]:
    done = run_tally("shell", "-c", TOKEN_SCRIPT, env=registry)
    assert done.returncode == 0, done.stderr
    server = Web(registry, tmp_path / "web.log", done.stdout.strip().splitlines()[-1])
    try:
        wait_for(server.up, timeout=120, what="runserver", logs=(server.log,))
        assert server.proc.poll() is None, server.log.read_text()[-4000:]
        yield server
    finally:
        server.stop()


def test_runserver_request_threads_close_their_registry_connections(web: Web) -> None:
    """Issue 23: under runserver about one request in ten left its thread's registry
    connection open (a 120 s soak hit max_connections). After each request, JSON, Arrow
    stream and refused alike, the database's connections fall back to the idle server's."""
    # The idle server's own: the main thread's, from the start-up checks (if it kept one).
    idle = web.connections()
    requests = (
        ("/api/v1/query", QUERY, {}),
        ("/api/v1/query", QUERY, {"Accept": "application/vnd.apache.arrow.stream"}),
        ("/api/v1/query", {"metrics": ["no_such_metric"]}, {}),
        ("/api/v1/compile", QUERY, {}),
    )
    for round_ in range(3):
        for path, body, headers in requests:
            status, content = web.post(path, body, **headers)
            assert status in (200, 400), content[:300]
            # The thread closes its connection just after the response is written: poll.
            wait_for(
                lambda: web.connections() <= idle,
                timeout=20,
                what=f"round {round_}, {path} {headers}: connections back to {idle}",
                logs=(web.log,),
            )
    assert web.connections() <= idle
