"""MCP per-call overhead: the same metric query as an in-process call and as an MCP tool
call over the SDK's own client (issue #19's figure: ≤ 2 ms median over in-process).

Cases, each ``--queries`` calls back to back, per-call medians:

* in-process: ``tally.mcp.operations.query_run`` (access check, rate limit, audited query;
  what every MCP call ends in), with the caller's token checked once; also
  ``search_metrics``, a cheap call, where the protocol's share is easier to see;
* MCP in-memory: the SDK client connected to the server object in this process (tool
  dispatch, argument validation, the token checked per call, the hop to Django's thread);
* MCP stdio: `tally mcp` as a subprocess, JSON-RPC over its pipes;
* MCP streamable HTTP: `tally mcp --http` (uvicorn, the web app's ASGI entry), one client;
* the same two servers driven by a wire client (``WireStdio``, ``WireHttp``): JSON-RPC
  written and read as bytes, one line or one keep-alive POST per call, no client library.
  The SDK's client parses and validates every answer with pydantic and the tool's output
  schema (~2 ms of its own per stdio call): the wire cases show what the server adds, the
  SDK cases what an agent built on the Python SDK waits.

The query (revenue by month and plan, ~100 rows) hits the compile cache in every case, so
the differences are the protocol's own cost.

``--clock cpu`` (for a shared machine) times CPU instead of wall seconds: the in-process and
in-memory cases count this process's CPU (in-memory: the SDK's client too, so its overhead
is an upper bound), the stdio and HTTP cases only the server process's own CPU (the client
excluded), read from ``/proc/<pid>/task/*/schedstat`` in nanoseconds.

    python -m bench mcp_overhead [--queries 100] [--repeat 1] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.runner import Benchmark, Row, Stats

ROOT = Path(__file__).resolve().parent.parent
ARGUMENTS = {
    "metrics": ["revenue"],
    "group_by": ["metric_time__month", "account__plan"],
    "order_by": ["metric_time__month", "account__plan"],
}
TOKEN_SCRIPT = (
    "from django.contrib.auth.models import User; "
    "from registry.services.access import role_grant, token_create; "
    # Unrestricted (admin): the answer is the whole ~100-row result, not a tenant's slice
    # (an analyst bound to no tenant sees no rows, which would time an empty payload).
    "u = User.objects.create_user('bench'); role_grant(user=u, role='admin'); "
    "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw)"
)
_NOTES: list[str] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=100, help="calls per case (x --repeat)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall seconds, or CPU seconds of the process that serves the call (stdio and "
        "HTTP: the server's alone): cpu on a shared machine",
    )


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
    calls = options.queries * (options.repeat or 1)
    tmp = tempfile.mkdtemp(prefix="tally-bench-mcp-")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{Path(tmp) / 'registry.sqlite3'}",
        "WAREHOUSE_URL": f"duckdb:///{Path(tmp) / 'wh.duckdb'}",
        "DJANGO_SETTINGS_MODULE": "tally.settings",
        "TALLY_DEMO": "1",
        "TALLY_RATE_QUERY": "1000000/min",
        "TALLY_RATE_COMPILE": "1000000/min",
    }
    _tally(env, "migrate", "-v0")
    _tally(env, "generate-demo", "--events", str(options.events), "--seed", "42",
           "--out", str(Path(tmp) / "wh.duckdb"))  # fmt: skip
    _tally(env, "sync", str(ROOT / "fixtures"))
    token = _tally(env, "shell", "-c", TOKEN_SCRIPT).strip().splitlines()[-1]
    os.environ.update(env)
    # The stateless server every HTTP case but one calls, and one that keeps sessions.
    web, web_sessions = _Web(env), _Web({**env, "TALLY_MCP_SESSIONS": "1"})
    try:
        samples = _interleaved(
            env, token, calls, cpu=options.clock == "cpu", web=web, web_sessions=web_sessions
        )
    finally:
        for server in (web, web_sessions):
            server.process.terminate()
            server.process.wait(timeout=30)
    rows = []
    for tool, cases in samples.items():
        base = cases[IN_PROCESS]
        for case, seconds in cases.items():
            rows.append(Row(f"{tool}: {case}", calls, Stats(tuple(seconds)).map(_ms), "ms/call"))
        for case, seconds in cases.items():
            if case != IN_PROCESS:
                paired = tuple(m - b for m, b in zip(seconds, base, strict=True))
                rows.append(
                    Row(f"{tool}: overhead of {case}", calls, Stats(paired).map(_ms), "ms/call")
                )
        # The protocol's own share: MCP against the in-process call that also checks the token.
        for case, seconds in cases.items():
            if case not in (IN_PROCESS, WITH_TOKEN):
                paired = tuple(m - b for m, b in zip(seconds, cases[WITH_TOKEN], strict=True))
                rows.append(
                    Row(f"{tool}: protocol share of {case}", calls, Stats(paired).map(_ms),
                        "ms/call")
                )  # fmt: skip
    _NOTES.append(
        f"{options.events:,} events; {calls} calls per case, interleaved round by round; "
        "overhead = median of (MCP call - the in-process call of the same round); "
        f"clock {options.clock}"
    )
    return rows


IN_PROCESS = "in-process"
WITH_TOKEN = "in-process + token check per call"
TOOLS = {"query": ARGUMENTS, "search_metrics": {"query": "revenue"}}


def _ms(seconds: float) -> float:
    return seconds * 1000


def _process_cpu(pid: int) -> float:
    """CPU seconds a process's threads have run so far (schedstat: nanoseconds, unlike
    /proc/<pid>/stat's 10 ms ticks, fine enough for one call)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total / 1e9


def _children() -> set[int]:
    """Process ids whose parent is this process."""
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            # The parent pid is the second field after the command name, which may hold spaces.
            if (
                entry.name.isdigit()
                and (entry / "stat").read_text().rpartition(")")[2].split()[1] == me
            ):
                found.add(int(entry.name))
        except OSError:
            continue
    return found


class _Web:
    """`tally mcp --http --port 0` started, with its endpoint URL."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tally.cli", "mcp", "--http", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().rsplit(" ", 1)[1].strip()
        self.pid = self.process.pid


def _interleaved(
    env: dict[str, str], token: str, calls: int, *, cpu: bool, web: _Web, web_sessions: _Web
) -> dict[str, dict[str, list[float]]]:
    """Per tool and case, the seconds of each call. Every round calls each case once, in
    turn, so a slow moment of a loaded machine lands on all cases alike."""
    import time

    import anyio
    import django

    django.setup()
    import httpx2
    from asgiref.sync import sync_to_async
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    from tally.mcp import operations
    from tally.mcp.caller import caller_authenticate
    from tally.mcp.server import build_server

    stdio = StdioServerParameters(
        command=sys.executable, args=["-m", "tally.cli", "mcp"],
        env={**env, "TALLY_TOKEN": token}, cwd=str(ROOT),
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    direct: dict[str, Callable[[Any], Any]] = {
        "query": lambda c: operations.query_run(c, dict(ARGUMENTS)),
        "search_metrics": lambda c: operations.metrics_search(c, text="revenue"),
    }

    async def main() -> dict[str, dict[str, list[float]]]:
        # The in-process call runs where MCP's tools run: on Django's thread for sync code
        # (the ORM refuses the event loop), so the baseline pays the same thread hop.
        caller = await sync_to_async(caller_authenticate, thread_sensitive=True)(token)
        before = _children()
        async with (
            Client(build_server(stdio_token=token)) as memory,
            Client(stdio) as piped,
            Client(
                streamable_http_client(web.url, http_client=httpx2.AsyncClient(headers=headers))
            ) as http,
        ):
            # The SDK's stdio client started `tally mcp` as our one new child (found before
            # the wire client starts another).
            stdio_pid = max(_children() - before, default=0)
            wire_stdio = WireStdio({**env, "TALLY_TOKEN": token})
            clients: dict[str, Any] = {
                "MCP in-memory": memory,
                "MCP stdio (tally mcp)": piped,
                "MCP HTTP (tally mcp --http)": http,
                WIRE_STDIO: wire_stdio,
                WIRE_HTTP: WireHttp(web.url, token),
                WIRE_HTTP_MODERN: WireHttp(web.url, token, version="2026-07-28"),
                WIRE_HTTP_SESSION: WireHttp(web_sessions.url, token, session=True),
            }
            # Which clock times each case: this process, or the process serving the call.
            own = time.perf_counter if not cpu else time.process_time
            clocks: dict[str, Callable[[], float]] = {
                "MCP in-memory": own,
                "MCP stdio (tally mcp)": own if not cpu else lambda: _process_cpu(stdio_pid),
                "MCP HTTP (tally mcp --http)": own if not cpu else lambda: _process_cpu(web.pid),
                WIRE_STDIO: own if not cpu else lambda: _process_cpu(wire_stdio.pid),
                WIRE_HTTP: own if not cpu else lambda: _process_cpu(web.pid),
                WIRE_HTTP_MODERN: own if not cpu else lambda: _process_cpu(web.pid),
                WIRE_HTTP_SESSION: own if not cpu else lambda: _process_cpu(web_sessions.pid),
            }
            found: dict[str, dict[str, list[float]]] = {}
            for tool, arguments in TOOLS.items():
                cases: dict[str, list[float]] = {
                    IN_PROCESS: [],
                    WITH_TOKEN: [],
                    **{c: [] for c in clients},
                }
                run_direct = sync_to_async(direct[tool], thread_sensitive=True)
                op = direct[tool]
                # What MCP (and the HTTP API) does per call besides the operation: read the
                # token again and derive the principal, so that a revoked token stops at once.
                with_token = sync_to_async(
                    lambda op=op: op(caller_authenticate(token)), thread_sensitive=True
                )
                for index in range(calls + 2):
                    start = own()
                    await run_direct(caller)
                    timings = {IN_PROCESS: own() - start}
                    start = own()
                    await with_token()
                    timings[WITH_TOKEN] = own() - start
                    for case, client in clients.items():
                        clock = clocks[case]
                        start = clock()
                        result = await client.call_tool(tool, arguments)
                        timings[case] = clock() - start
                        if result.is_error:
                            raise RuntimeError(result.content[0].text)
                        if index == 0 and tool == "query":
                            answer = result.structured_content or {}
                            if not answer.get("rows"):
                                raise RuntimeError(f"{case}: the query answered no rows")
                            _NOTES.append(f"{case}: {len(answer['rows'])} rows per answer")
                    if index >= 2:  # two warm-up rounds: caches, first imports
                        for case, seconds in timings.items():
                            cases[case].append(seconds)
                found[tool] = cases
            wire_stdio.close()
            return found

    return anyio.run(main)


WIRE_STDIO = "MCP stdio, wire client"
WIRE_HTTP = "MCP HTTP, wire client"
WIRE_HTTP_MODERN = "MCP HTTP, wire client, 2026-07-28"
WIRE_HTTP_SESSION = "MCP HTTP, wire client, session"
_HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
_INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "bench", "version": "0"},
}


class _WireAnswer:
    """The parts of the SDK's CallToolResult that the rounds read."""

    def __init__(self, message: dict[str, Any]) -> None:
        if "error" in message:
            raise RuntimeError(f"JSON-RPC error: {message['error']}")
        result = message["result"]
        self.is_error = result.get("isError", False)
        self.content = [type("Text", (), {"text": c.get("text", "")}) for c in result["content"]]
        self.structured_content = result.get("structuredContent")


class WireStdio:
    """`tally mcp` as a child, spoken to in JSON lines over its pipes (blocking: the rounds
    wait for each answer anyway)."""

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tally.cli", "mcp"], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.pid = self._process.pid
        self._next = 0
        self._call("initialize", _INITIALIZE)
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _send(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(message).encode() + b"\n")
        self._process.stdin.flush()

    def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next += 1
        self._send({"jsonrpc": "2.0", "id": self._next, "method": method, "params": params})
        assert self._process.stdout is not None
        answer: dict[str, Any] = json.loads(self._process.stdout.readline())
        if answer.get("id") != self._next:
            raise RuntimeError(f"answer to another request: {answer!r:.200}")
        return answer

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> _WireAnswer:
        return _WireAnswer(self._call("tools/call", {"name": name, "arguments": arguments}))

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(timeout=30)


class WireHttp:
    """`tally mcp --http` over one keep-alive connection: a POST per call, JSON answers, no
    event stream. By default no session (the server is stateless): each call is a
    2025-06-18 POST without initialize; ``version`` 2026-07-28 sends the per-request
    envelope instead (``_meta`` and the Mcp-Method/Mcp-Name headers: the path the SDK's own
    client takes after ``server/discover``); ``session`` initializes once and sends the
    Mcp-Session-Id it is given (a server with TALLY_MCP_SESSIONS=1)."""

    def __init__(
        self, url: str, token: str, *, version: str = "2025-06-18", session: bool = False
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        self._path = parts.path
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self._version = version
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": version,
        }
        self._next = 0
        if session:
            _, headers = self._post({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                     "params": _INITIALIZE})  # fmt: skip
            opened = headers.get("mcp-session-id")
            if not opened:
                raise RuntimeError("the server opened no session (TALLY_MCP_SESSIONS unset?)")
            self._headers["Mcp-Session-Id"] = opened
            self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _post(
        self, body: dict[str, Any], **headers: str
    ) -> tuple[dict[str, Any] | None, http.client.HTTPMessage]:
        self._connection.request("POST", self._path, json.dumps(body),
                                 {**self._headers, **headers})  # fmt: skip
        response = self._connection.getresponse()
        payload = response.read()
        if response.status not in (200, 202):
            raise RuntimeError(f"HTTP {response.status}: {payload[:300]!r}")
        return (json.loads(payload) if payload else None), response.headers

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> _WireAnswer:
        self._next += 1
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        headers = {}
        if self._version not in _HANDSHAKE_VERSIONS:
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": self._version,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
            headers = {"Mcp-Method": "tools/call", "Mcp-Name": name}
        body = {"jsonrpc": "2.0", "id": self._next, "method": "tools/call", "params": params}
        answer, _ = self._post(body, **headers)
        assert answer is not None
        return _WireAnswer(answer)


def notes() -> str:
    return "; ".join(_NOTES)


BENCHMARK = Benchmark(
    description="MCP per-call overhead over an in-process query (in-memory, stdio, HTTP)",
    run=run,
    add_arguments=add_arguments,
    baseline="in-process query",
    notes=notes,
)
