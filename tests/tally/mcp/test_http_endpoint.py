"""The streamable HTTP endpoint's checks that run before any tool (issue #19 sends /mcp
straight to the SDK's session manager, past the Starlette app's router): DNS-rebinding Host
check, body size limit; and the SDK's ``Mcp-Param-*`` header validation, skipped for tools
that declare no such header, answering as before."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest

from tally.mcp.http import header_schema_lookup
from tests.tally.mcp.conftest import McpSetup

CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {
        "name": "search_metrics",
        "arguments": {"query": "revenue"},
        # The stateless era's per-request envelope.
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    },
}


def _post(url: str, token: str, body: bytes, version: str, **headers: str) -> httpx2.Response:
    return httpx2.post(
        url,
        content=body,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": version,
            **headers,
        },
        timeout=60,
    )


@pytest.mark.parametrize("version", ["2026-07-28", "2025-06-18"])
def test_a_foreign_host_is_refused(mcp_setup: McpSetup, mcp_http: str, version: str) -> None:
    """A request naming a host the web app does not serve (DNS rebinding) gets 421 and runs
    no tool, on the stateless path of either protocol era."""
    answer = _post(
        mcp_http, mcp_setup.token, json.dumps(CALL).encode(), version, Host="evil.example"
    )
    assert answer.status_code == 421, answer.text


def test_a_body_over_the_limit_is_refused(mcp_setup: McpSetup, mcp_http: str) -> None:
    """A body past TALLY_MAX_BODY_BYTES (10 MiB by default) gets 413 before it is parsed."""
    body = b'{"jsonrpc": "2.0", "pad": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    answer = _post(mcp_http, mcp_setup.token, body, "2026-07-28")
    assert answer.status_code == 413, answer.text


def test_an_undeclared_mcp_param_header_is_accepted_as_the_sdk_accepts_it(
    mcp_setup: McpSetup, mcp_http: str
) -> None:
    """No Tally tool annotates a property with x-mcp-header, so the SDK's validation accepts
    any Mcp-Param-* header: skipping it for such tools changes no answer."""
    answer = _post(
        mcp_http,
        mcp_setup.token,
        json.dumps(CALL).encode(),
        "2026-07-28",
        **{"Mcp-Method": "tools/call", "Mcp-Name": "search_metrics"},
        **{"Mcp-Param-Query": "something else"},
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert not result.get("isError"), result
    assert any(m["name"] == "revenue" for m in result["structuredContent"]["result"])


def test_header_lookup_answers_only_for_schemas_that_declare_a_header() -> None:
    """The lookup the SDK validates Mcp-Param-* headers with: None for a schema without an
    x-mcp-header annotation (nothing to validate), the schema itself when one is declared,
    however deep."""
    plain: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}}
    nested: dict[str, Any] = {
        "type": "object",
        "properties": {"q": {"anyOf": [{"type": "string", "x-mcp-header": "Q"}]}},
    }
    schemas = {"plain": plain, "nested": nested}
    lookup = header_schema_lookup(schemas.get)
    assert lookup is not None
    assert lookup("plain") is None
    assert lookup("nested") is nested
    assert lookup("missing") is None
    # A tool registered again under the same name is decided again.
    schemas["plain"] = {"type": "object", "properties": {"q": {"x-mcp-header": "Q"}}}
    assert lookup("plain") is schemas["plain"]
    assert header_schema_lookup(None) is None
