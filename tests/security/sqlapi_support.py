"""A registry (fixtures synced, a small demo warehouse) built once per test process, and
real `tally serve-sql` (and runserver) subprocesses started on it with per-test settings,
for the SQL API security tests."""

from __future__ import annotations

import atexit
import functools
import shutil
import socket
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT, demo_warehouse_at, run_tally
from tests.sqlapi.conftest import start_sql_server, start_web, stop

PASSWORD = "s3cret-pw"
EVENTS, SEED = 2_000, 7
# A generous bound for "the server closes the socket": never an elapsed-time assertion.
WAIT_S = 30.0


@dataclass(frozen=True)
class Registry:
    env: dict[str, str]
    # An API token (read,query) of "ana", an auditor.
    token: str
    # A service token bound to tenant t13.
    tenant_token: str


@functools.cache
def registry() -> Registry:
    root = Path(tempfile.mkdtemp(prefix="tally-sec-sqlapi-"))
    atexit.register(shutil.rmtree, root, True)
    warehouse = demo_warehouse_at(root / "wh.duckdb", events=EVENTS, seed=SEED)
    env = {
        "DATABASE_URL": f"sqlite:///{root / 'registry.sqlite3'}",
        "WAREHOUSE_URL": f"duckdb:///{warehouse}",
        "TALLY_RATE_QUERY": "100000/min",
        "TALLY_RATE_COMPILE": "100000/min",
    }
    create_users = f"""
from django.contrib.auth.models import User
from registry.services.access import role_grant, token_create
ana = User.objects.create_user("ana", password={PASSWORD!r})
role_grant(user=ana, role="auditor")
for name in ("carl", "dora", "emil", "fred"):
    role_grant(user=User.objects.create_user(name, password={PASSWORD!r}), role="analyst")
print(token_create(acting_user=None, service="bi-t13", tenant="t13", scopes="read,query").raw)
print(token_create(acting_user=None, user=ana, scopes="read,query").raw)
"""
    for args in (
        ("migrate", "-v0"),
        ("sync", str(ROOT / "fixtures")),
        ("shell", "-c", create_users),
    ):
        result = run_tally(*args, env=env, timeout=300)
        assert result.returncode == 0, result.stderr
    tenant_token, token = result.stdout.strip().splitlines()[-2:]
    return Registry(env=env, token=token, tenant_token=tenant_token)


def tally_shell(code: str, **extra_env: str) -> str:
    """Runs Python in `tally shell` on the shared registry; returns its output."""
    result = run_tally("shell", "-c", code, env={**registry().env, **extra_env}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def sql_server(**settings: str) -> Iterator[int]:
    """A `tally serve-sql` on the shared registry with extra environment; yields its port."""
    process, port = start_sql_server({**registry().env, **settings})
    try:
        yield port
    finally:
        stop(process)


@contextmanager
def web_server(**settings: str) -> Iterator[int]:
    process, port = start_web({**registry().env, **settings})
    try:
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def url(port: int, *, user: str = "ana", password: str = PASSWORD) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/tally"


def raw_socket(port: int, *, source: str = "127.0.0.1") -> socket.socket:
    """A TCP connection to the server from a given loopback address, sending nothing."""
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(WAIT_S)
    sock.connect(("127.0.0.1", port))
    return sock


def startup_packet(user: str) -> bytes:
    body = struct.pack("!I", 196608) + b"user\x00" + user.encode() + b"\x00\x00"
    return struct.pack("!I", len(body) + 4) + body


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or WAIT_S passes, which
    fails the test: the server must close it)."""
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        except TimeoutError as exc:
            raise AssertionError(
                f"the server kept the connection open; got {b''.join(chunks)!r}"
            ) from exc
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def error_fields(data: bytes) -> dict[str, str]:
    """The fields of the first ErrorResponse in ``data`` (S, C, M, H …), {} when none."""
    start = data.find(b"E")
    while start != -1:
        if start + 5 <= len(data):
            (length,) = struct.unpack("!I", data[start + 1 : start + 5])
            body = data[start + 5 : start + 1 + length]
            if body[:1] == b"S":
                fields = {}
                for part in body.split(b"\x00"):
                    if part:
                        fields[part[:1].decode()] = part[1:].decode("utf-8", "replace")
                return fields
        start = data.find(b"E", start + 1)
    return {}
