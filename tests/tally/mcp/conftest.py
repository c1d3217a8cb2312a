"""A registry (fixtures synced), a demo warehouse and API tokens in a temporary folder, for
driving `tally mcp` with the MCP SDK's own client over stdio and streamable HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

EVENTS, SEED = 20_000, 42


@dataclass(frozen=True)
class McpSetup:
    env: dict[str, str]
    # ana (auditor: row policies do not apply) with read, compile and query.
    token: str
    # A service token bound to tenant t13: row policies apply to it.
    tenant_token: str
    # ana with the read scope only: compile and query are refused.
    read_token: str


@pytest.fixture(scope="session")
def mcp_setup(
    tmp_path_factory: pytest.TempPathFactory, registry_template: Callable[..., str]
) -> McpSetup:
    root = tmp_path_factory.mktemp("mcp")
    warehouse = demo_warehouse_at(root / "wh.duckdb", events=EVENTS, seed=SEED)
    # `tally migrate` and `tally sync fixtures/`, copied from their once-per-process result.
    template = registry_template(MIGRATE, SYNC_FIXTURES, vendor="sqlite")
    registry_url = sqlite_registry_at(root, template)
    env = {
        "DATABASE_URL": registry_url,
        "WAREHOUSE_URL": f"duckdb:///{warehouse}",
        "TALLY_RATE_QUERY": "100000/min",
        "TALLY_RATE_COMPILE": "100000/min",
    }
    create = (
        "from django.contrib.auth.models import User; "
        "from registry.services.access import role_grant, token_create; "
        "u = User.objects.create_user('ana', password='s3cret-pw'); "
        "role_grant(user=u, role='auditor'); "
        "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw); "
        "print(token_create(acting_user=None, service='bi-t13', tenant='t13', "
        "scopes='read,compile,query').raw); "
        "print(token_create(acting_user=None, user=u, scopes='read').raw)"
    )
    result = run_tally("shell", "-c", create, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    token, tenant_token, read_token = result.stdout.strip().splitlines()[-3:]
    assert all(t.startswith("tly_") for t in (token, tenant_token, read_token))
    return McpSetup(env=env, token=token, tenant_token=tenant_token, read_token=read_token)


@pytest.fixture(scope="session")
def mcp_http(mcp_setup: McpSetup) -> Iterator[str]:
    """`tally mcp --http --port 0` (the web app with /mcp); yields the MCP endpoint URL."""
    with serve_http(mcp_setup.env) as url:
        yield url


@pytest.fixture(scope="session")
def mcp_http_sessions(mcp_setup: McpSetup) -> Iterator[str]:
    """The same with TALLY_MCP_SESSIONS=1: the SDK keeps a session per initialized client."""
    with serve_http({**mcp_setup.env, "TALLY_MCP_SESSIONS": "1"}) as url:
        yield url


@contextmanager
def serve_http(env: dict[str, str]) -> Iterator[str]:
    # Kept open for the server process; its log is read when it fails to start.
    log = tempfile.NamedTemporaryFile(prefix="tally-mcp-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "tally.cli", "mcp", "--http", "--port", "0"],
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
        raise AssertionError(f"tally mcp --http did not start: {line}{Path(log.name).read_text()}")
    try:
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
