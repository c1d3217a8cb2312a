"""TALLY_MCP_SESSIONS=1 (issue #19): the SDK keeps a session per client that initializes,
instead of setting up a server per request. A session opens only for a valid token, serves
only the token that opened it, and every tool call still checks its request's token, so a
revoked token stops at once; 2026-07-28 clients (no session) are served as before."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import in_own_thread
from tests.tally.mcp.conftest import McpSetup
from tests.tally.mcp.test_http_endpoint import CALL
from tests.tally.mcp.test_mcp_access_changes import _shell, _user_token
from tests.tally.mcp.test_mcp_server import BY_PLAN

VERSION = "2025-06-18"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": VERSION,
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
QUERY = {
    "jsonrpc": "2.0",
    "id": 2,
    "method": "tools/call",
    "params": {"name": "query", "arguments": BY_PLAN},
}


def _post(url: str, token: str, body: dict[str, Any], **headers: str) -> httpx2.Response:
    return httpx2.post(
        url,
        json=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": VERSION,
            **headers,
        },
        timeout=60,
    )


def _open(url: str, token: str) -> str:
    opened = _post(url, token, INITIALIZE)
    assert opened.status_code == 200, opened.text
    session = opened.headers["mcp-session-id"]
    done = _post(
        url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"},
        **{"Mcp-Session-Id": session},
    )  # fmt: skip
    assert done.status_code == 202, done.text
    return session


def test_a_session_serves_its_token_alone_and_a_revoked_token_stops_at_once(
    mcp_setup: McpSetup, mcp_http_sessions: str
) -> None:
    url = mcp_http_sessions
    token = _user_token(mcp_setup, "mcp-session", role="analyst", tenant="t13")
    session = _open(url, token)
    first = _post(url, token, QUERY, **{"Mcp-Session-Id": session})
    assert first.status_code == 200, first.text
    assert first.json()["result"]["structuredContent"]["rows"]
    # Another valid token cannot use the session: 404, as for a session that does not exist.
    foreign = _post(url, mcp_setup.token, QUERY, **{"Mcp-Session-Id": session})
    assert foreign.status_code == 404, foreign.text
    prefix = token.split("_")[1]
    _shell(
        mcp_setup,
        "from registry.services.access import token_get, token_revoke\n"
        f"token_revoke(token=token_get(ref={prefix!r}), acting_user=None)\n",
    )
    after = _post(url, token, QUERY, **{"Mcp-Session-Id": session})
    assert after.status_code == 200, after.text
    assert after.json()["result"]["isError"] is True
    assert "token revoked" in after.json()["result"]["content"][0]["text"]


def test_no_session_opens_for_a_refused_token(mcp_setup: McpSetup, mcp_http_sessions: str) -> None:
    refused = _post(mcp_http_sessions, "tly_nosuch_secret", INITIALIZE)
    assert refused.status_code == 401, refused.text
    assert "mcp-session-id" not in refused.headers
    assert refused.json()["error"]["code"] == "not_authenticated"
    # A call without a session (and not an initialize) is not served either.
    stray = _post(mcp_http_sessions, mcp_setup.token, QUERY)
    assert stray.status_code == 400, stray.text


def test_clients_of_either_era_are_served_with_sessions_on(
    mcp_setup: McpSetup, mcp_http_sessions: str
) -> None:
    """The SDK's client in legacy mode (initialize, then its session) and in its default
    mode (2026-07-28, per-request envelope), and a bare 2026-07-28 POST."""

    async def main() -> list[Any]:
        answers = []
        for mode in ("legacy", "auto"):
            headers = {"Authorization": f"Bearer {mcp_setup.token}"}
            transport = streamable_http_client(
                mcp_http_sessions, http_client=httpx2.AsyncClient(headers=headers)
            )
            async with Client(transport, mode=mode) as client:
                answers.append(await client.call_tool("query", BY_PLAN))
        return answers

    for answer in in_own_thread(anyio.run, main):
        assert not answer.is_error, answer.content[0].text
        assert answer.structured_content["rows"]
    bare = _post(
        mcp_http_sessions, mcp_setup.token, CALL,
        **{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
           "Mcp-Name": "search_metrics"},
    )  # fmt: skip
    assert bare.status_code == 200, bare.text
    assert json.loads(bare.text)["result"]["structuredContent"]["result"]
