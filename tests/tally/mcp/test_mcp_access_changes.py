"""Issue #19: MCP calls reuse the caller's derived principal while the access generation is
unchanged, so every access change must bump it. A revoked token, a removed role and a
changed tenant attribute of the user's profile each apply to the very next call of an
already-open MCP session, over stdio and over streamable HTTP (the SDK's own clients)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import in_own_thread, run_tally
from tests.tally.mcp.conftest import McpSetup
from tests.tally.mcp.test_mcp_server import BY_PLAN, _cli_rows, _http, _stdio


def _shell(setup: McpSetup, code: str) -> str:
    result = run_tally("shell", "-c", code, env=setup.env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def _user_token(setup: McpSetup, username: str, *, role: str, tenant: str) -> str:
    """A new user holding ``role`` (restricted: row policies apply) with tenant_id=``tenant``
    in their access profile, and a token of theirs that may query."""
    return _shell(
        setup,
        "from django.contrib.auth.models import User\n"
        "from registry.services.access import access_profile_set, role_grant, token_create\n"
        f"u = User.objects.create_user({username!r})\n"
        f"role_grant(user=u, role={role!r})\n"
        f"access_profile_set(user=u, attributes={{'tenant_id': {tenant!r}}})\n"
        "print(token_create(acting_user=None, user=u, scopes='read,compile,query').raw)\n",
    )


def _rows(result: Any) -> list[list[Any]]:
    assert not result.is_error, result.content[0].text
    return [[plan, float(value)] for plan, value in result.structured_content["rows"]]


def _before_and_after(
    setup: McpSetup, url: str, token: str, change: Callable[[], object]
) -> dict[str, tuple[Any, Any]]:
    """Per transport, the query's result before and after ``change``, in one open session."""

    async def main() -> dict[str, tuple[Any, Any]]:
        out: dict[str, tuple[Any, Any]] = {}
        async with _stdio(setup, token) as piped, _http(url, token) as http:
            clients: dict[str, Client] = {"stdio": piped, "http": http}
            before = {name: await c.call_tool("query", BY_PLAN) for name, c in clients.items()}
            await anyio.to_thread.run_sync(change)
            for name, client in clients.items():
                out[name] = (before[name], await client.call_tool("query", BY_PLAN))
        return out

    return dict(in_own_thread(anyio.run, main))


@pytest.mark.slow
def test_a_revoked_token_fails_the_next_call(mcp_setup: McpSetup, mcp_http: str) -> None:
    token = _user_token(mcp_setup, "mcp-revoked", role="analyst", tenant="t13")
    prefix = token.split("_")[1]
    revoke = (
        "from registry.services.access import token_get, token_revoke\n"
        f"token_revoke(token=token_get(ref={prefix!r}), acting_user=None)\n"
    )
    found = _before_and_after(mcp_setup, mcp_http, token, lambda: _shell(mcp_setup, revoke))
    for before, after in found.values():
        assert not before.is_error
        assert after.is_error
        assert "token revoked" in after.content[0].text


@pytest.mark.slow
def test_a_removed_role_refuses_the_next_call(mcp_setup: McpSetup, mcp_http: str) -> None:
    token = _user_token(mcp_setup, "mcp-demoted", role="analyst", tenant="t13")
    demote = (
        "from django.contrib.auth.models import User\n"
        "from registry.services.access import role_revoke\n"
        "role_revoke(user=User.objects.get(username='mcp-demoted'), role='analyst')\n"
    )
    found = _before_and_after(mcp_setup, mcp_http, token, lambda: _shell(mcp_setup, demote))
    for before, after in found.values():
        assert not before.is_error
        assert after.is_error
        assert "error[forbidden]" in after.content[0].text
        assert "do not allow it" in after.content[0].text


@pytest.mark.slow
def test_a_changed_tenant_attribute_applies_to_the_next_call(
    mcp_setup: McpSetup, mcp_http: str
) -> None:
    token = _user_token(mcp_setup, "mcp-moved", role="analyst", tenant="t13")
    move = (
        "from django.contrib.auth.models import User\n"
        "from registry.services.access import access_profile_set\n"
        "access_profile_set(user=User.objects.get(username='mcp-moved'), "
        "attributes={'tenant_id': 't14'})\n"
    )
    t13 = _cli_rows(mcp_setup, "--principal-attr", "tenant_id=t13")
    t14 = _cli_rows(mcp_setup, "--principal-attr", "tenant_id=t14")
    assert t13 != t14
    found = _before_and_after(mcp_setup, mcp_http, token, lambda: _shell(mcp_setup, move))
    for name, (before, after) in found.items():
        assert _rows(before) == t13, name
        assert _rows(after) == t14, name
    # The audit rows of the last calls name the same token: the session went on.
    audited = _shell(
        mcp_setup,
        "import json\nfrom registry.models import AuditEvent\n"
        f"print(json.dumps(AuditEvent.objects.filter(token__prefix={token.split('_')[1]!r}, "
        "action='query.run').count()))\n",
    )
    assert json.loads(audited) == 4
