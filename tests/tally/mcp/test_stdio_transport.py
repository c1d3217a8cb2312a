"""Tally's stdio transport (tally/mcp/stdio.py) against the SDK's: the SDK's own client
over it, and the same bytes on the wire as the SDK's stdio_server for the same input
(a malformed line, invalid UTF-8, CRLF, messages larger than a pipe's buffer, EOF)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import ROOT, in_own_thread

pytestmark = pytest.mark.timeout(120)

BIG = "x" * 200_000  # > 64 KiB, a pipe's buffer, in both directions
SERVER = [sys.executable, "-m", "tests.tally.mcp.stdio_echo"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_sdk_client_round_trips_a_large_message() -> None:
    params = StdioServerParameters(command=SERVER[0], args=SERVER[1:], env=_env(), cwd=str(ROOT))

    async def main() -> tuple[list[str], Any]:
        async with Client(params) as client:
            tools = await client.list_tools()
            result = await client.call_tool("echo", {"text": BIG})
            return [t.name for t in tools.tools], result

    # Its own thread: under xdist an earlier test may have left an event loop running here.
    names, result = in_own_thread(anyio.run, main)
    assert names == ["echo"]
    assert not result.is_error
    assert result.content[0].text == BIG


def _request(id_: int | str, method: str, **params: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode()


INITIALIZE = _request(
    1,
    "initialize",
    protocolVersion="2025-06-18",
    capabilities={},
    clientInfo={"name": "test", "version": "1"},
)
INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def _exchange(*mode: str) -> tuple[list[bytes], int]:
    """One session, written line by line, each answer read before the next request;
    then stdin is closed: the answers and the server's exit status."""
    process = subprocess.Popen(
        [*SERVER, *mode],
        cwd=ROOT,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    answers = []

    def ask(*lines: bytes) -> None:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"".join(lines))
        process.stdin.flush()
        answers.append(process.stdout.readline())

    try:
        ask(INITIALIZE + b"\n")
        ask(
            INITIALIZED + b"\n",
            b"not json\n",  # malformed: no answer, the session goes on
            b"\n",
            b'{"jsonrpc":"2.0","id":"\xff\xfe","method":"ping"}\n',  # invalid UTF-8: replaced
        )
        ask(_request(2, "tools/call", name="echo", arguments={"text": BIG}) + b"\r\n")
        ask(_request(3, "ping") + b"\n")
        process.stdin.close()  # EOF: the server ends by itself
        rest = process.stdout.read()
        return [*answers, rest], process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_same_wire_as_the_sdk_transport() -> None:
    ours, ours_status = _exchange()
    sdks, sdk_status = _exchange("sdk")
    assert (ours_status, sdk_status) == (0, 0)
    assert ours == sdks
    ids = [json.loads(line)["id"] for line in ours[:-1]]
    assert ids == [1, "\ufffd\ufffd", 2, 3]
    assert json.loads(ours[2])["result"]["content"][0]["text"] == BIG
    assert ours[-1] == b""  # nothing after EOF
