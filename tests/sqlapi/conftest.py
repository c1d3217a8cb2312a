"""A registry (fixtures synced), a demo warehouse, and real `tally serve-sql` and Django
servers in subprocesses on free ports, shared by the SQL API and client tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import (
    MIGRATE,
    ROOT,
    SYNC_FIXTURES,
    demo_warehouse_at,
    run_tally,
    sqlite_registry_at,
)

USER, PASSWORD = "ana", "s3cret-pw"
EVENTS, SEED = 20_000, 42


@dataclass(frozen=True)
class Servers:
    env: dict[str, str]
    sql_port: int
    http_port: int
    warehouse: Path
    # An API token of USER (query scope): the password BI tools use, and the client's.
    token: str
    # A service token bound to tenant t13: row policies apply to it.
    tenant_token: str

    def url(self, *, user: str = USER, password: str = PASSWORD, port: int | None = None) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{port or self.sql_port}/tally"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_sql_server(env: dict[str, str], *extra: str) -> tuple[subprocess.Popen[str], int]:
    """`tally serve-sql --port 0`; returns the process and the port it printed. Its log
    goes to a file (an unread pipe would fill up and stall the server)."""
    # Kept open for the server process, which outlives this function.
    log = tempfile.NamedTemporaryFile(prefix="tally-serve-sql-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "tally.cli", "serve-sql", "--port", "0", *extra],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise AssertionError(f"serve-sql did not start: {line}{Path(log.name).read_text()}")
    process.log_path = log.name  # type: ignore[attr-defined]
    return process, int(line.rsplit(":", 1)[1].split()[0])


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"runserver did not listen on {port}")


def start_web(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """Django's runserver on a free port, once it listens."""
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_http(port)
    return web, port


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory, registry_template: Callable[..., str]
) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("sqlapi")
    warehouse = demo_warehouse_at(root / "wh.duckdb", events=EVENTS, seed=SEED)
    # `tally migrate` and `tally sync fixtures/`, copied from their once-per-process result.
    template = registry_template(MIGRATE, SYNC_FIXTURES, vendor="sqlite")
    registry_url = sqlite_registry_at(root, template)
    env = {
        "DATABASE_URL": registry_url,
        "WAREHOUSE_URL": f"duckdb:///{warehouse}",
        # The tests send far more queries per minute than a person would.
        "TALLY_RATE_QUERY": "100000/min",
        "TALLY_RATE_COMPILE": "100000/min",
        # The soak test's 50 clients all connect from 127.0.0.1 at once, like a BI server's
        # connection pool.
        "TALLY_SQL_MAX_UNAUTH_PER_ADDRESS": "64",
    }
    create_users = (
        "from django.contrib.auth.models import User; "
        "from registry.services.access import role_grant, token_create; "
        f"u = User.objects.create_user({USER!r}, password={PASSWORD!r}); "
        # auditor: row policies do not apply, so answers equal the trusted `tally query`.
        "role_grant(user=u, role='auditor'); "
        "User.objects.create_user('visitor', password='visitor-pw'); "
        "print(token_create(acting_user=None, service='bi-t13', tenant='t13', "
        "scopes='read,query').raw); "
        "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw)"
    )
    result = run_tally("shell", "-c", create_users, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    tenant_token, token = result.stdout.strip().splitlines()[-2:]
    assert token.startswith("tly_") and tenant_token.startswith("tly_")
    sql, sql_port = start_sql_server(env)
    web, http_port = start_web(env)
    try:
        yield Servers(
            env=env,
            sql_port=sql_port,
            http_port=http_port,
            warehouse=warehouse,
            token=token,
            tenant_token=tenant_token,
        )
    finally:
        stop(sql)
        web.terminate()
        web.wait(timeout=10)
