"""`tally mcp` driven by the MCP SDK's own client, over stdio and streamable HTTP: the token
decides the principal, so a tenant-bound token sees only its tenant's rows, a token without
the query scope is refused, and every query is in the audit log."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from semantic.compiler.resolve import MSG_APPLY_GROUP_BY, MSG_MIN_MAX_ONLY
from tally.mcp.caller import MSG_NO_TOKEN
from tests.conftest import ROOT, in_own_thread, run_tally
from tests.tally.mcp.conftest import McpSetup

BY_PLAN = {"metrics": ["revenue"], "group_by": ["account__plan"], "order_by": ["account__plan"]}


def _stdio(setup: McpSetup, token: str | None) -> Client:
    env = {**os.environ, **setup.env}
    env.pop("TALLY_TOKEN", None)
    if token is not None:
        env["TALLY_TOKEN"] = token
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "tally.cli", "mcp"], env=env, cwd=str(ROOT)
    )
    return Client(params)


def _http(url: str, token: str | None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers)))


def _run(client: Client, body: Callable[[Client], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with client as connected:
            return await body(connected)

    return in_own_thread(anyio.run, main)


def _cli_rows(setup: McpSetup, *extra: str) -> list[list[Any]]:
    result = run_tally(
        "query", "--metrics", "revenue", "--group-by", "account__plan",
        "--order-by", "account__plan", "--format", "json", *extra, env=setup.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [[plan, float(value)] for plan, value in json.loads(result.stdout)["rows"]]


def test_stdio_lists_tools_and_queries_with_sql_release_and_versions(mcp_setup: McpSetup) -> None:
    """Over stdio the tools are listed and a query answers rows equal to `tally query`'s,
    with the SQL, the release and the metric versions."""

    async def body(client: Client) -> Any:
        tools = await client.list_tools()
        answer = await client.call_tool("query", BY_PLAN)
        return {t.name for t in tools.tools}, answer

    names, answer = _run(_stdio(mcp_setup, mcp_setup.token), body)
    assert {
        "search_metrics",
        "list_dimensions",
        "list_dimension_values",
        "compile",
        "query",
        "trace_value",
    } <= names
    assert not answer.is_error, answer.content
    result = answer.structured_content
    assert result["rows"] == _cli_rows(mcp_setup)
    assert result["columns"] == ["account__plan", "revenue"]
    assert result["sql"].startswith("-- tally release r1: revenue@")
    assert result["release"] == "r1" and result["versions"] == {"revenue": "1.0"}


def test_tenant_token_sees_only_its_tenant_over_stdio_and_http(
    mcp_setup: McpSetup, mcp_http: str
) -> None:
    """A token bound to tenant t13 gets t13's rows (as `--principal-attr tenant_id=t13`),
    never the whole warehouse's, over both transports."""
    tenant_rows = _cli_rows(mcp_setup, "--principal-attr", "tenant_id=t13")
    all_rows = _cli_rows(mcp_setup)
    assert tenant_rows != all_rows

    async def body(client: Client) -> Any:
        return await client.call_tool("query", BY_PLAN)

    for client in (
        _stdio(mcp_setup, mcp_setup.tenant_token),
        _http(mcp_http, mcp_setup.tenant_token),
    ):
        answer = _run(client, body)
        assert not answer.is_error, answer.content
        assert answer.structured_content["rows"] == tenant_rows
    over_http = _run(_http(mcp_http, mcp_setup.token), body)
    assert over_http.structured_content["rows"] == all_rows


def test_token_without_query_scope_is_refused_and_audited(
    mcp_setup: McpSetup, mcp_http: str
) -> None:
    """A read-only token may search metrics but not query: the tool answers an error naming
    the refusal, as the API's 403, and the refusal is in the audit log."""

    async def body(client: Client) -> Any:
        found = await client.call_tool("search_metrics", {"query": "revenue"})
        refused = await client.call_tool("query", BY_PLAN)
        return found, refused

    found, refused = _run(_http(mcp_http, mcp_setup.read_token), body)
    assert not found.is_error
    names = [m["name"] for m in found.structured_content["result"]]
    assert "revenue" in names
    assert refused.is_error
    assert "error[forbidden]: token 'ana-" in refused.content[0].text
    assert "may not query" in refused.content[0].text
    log = run_tally("audit-log", "--action", "access.denied", "--format", "json", env=mcp_setup.env)
    assert log.returncode == 0, log.stderr
    assert any(row["object_name"] == "mcp query" for row in json.loads(log.stdout))


def test_queries_are_audited_under_the_token(mcp_setup: McpSetup) -> None:
    """A query over MCP writes the same `query.run` audit row as over HTTP, naming the
    token's principal and the rows returned."""

    async def body(client: Client) -> Any:
        return await client.call_tool(
            "query", {**BY_PLAN, "where": ["{{ Dimension('account__plan') }} = 'pro'"]}
        )

    answer = _run(_stdio(mcp_setup, mcp_setup.tenant_token), body)
    assert not answer.is_error, answer.content
    log = run_tally("audit-log", "--action", "query.run", "--format", "json", env=mcp_setup.env)
    assert log.returncode == 0, log.stderr
    rows = [r for r in json.loads(log.stdout) if r["principal"] == "token:bi-t13"]
    assert rows and rows[0]["row_count"] == 1


def test_errors_are_tool_errors_with_code_and_hint(mcp_setup: McpSetup, mcp_http: str) -> None:
    """An unknown metric is a tool error carrying the compiler's code and did-you-mean hint;
    a request without a token is HTTP 401; a bad token is refused on the call."""

    async def body(client: Client) -> Any:
        return await client.call_tool("compile", {"metrics": ["revenu"]})

    answer = _run(_stdio(mcp_setup, mcp_setup.token), body)
    assert answer.is_error
    assert "error[unknown_metric]: unknown metric 'revenu'" in answer.content[0].text
    assert "hint: did you mean 'revenue'?" in answer.content[0].text

    response = httpx2.post(mcp_http, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == MSG_NO_TOKEN

    bad = _run(_http(mcp_http, "tly_0000_not-a-real-token"), body)
    assert bad.is_error and "error[not_authenticated]" in bad.content[0].text


def test_stdio_without_a_token_exits_1_with_a_hint(mcp_setup: McpSetup) -> None:
    """`tally mcp` with no TALLY_TOKEN refuses to start, with the command that mints one."""
    env = {k: v for k, v in mcp_setup.env.items()}
    result = run_tally("mcp", env={**env, "TALLY_TOKEN": ""})
    assert result.returncode == 1
    assert "error[not_authenticated]" in result.stderr
    assert "tally token create" in result.stderr


def test_dimensions_compile_and_metric_resource(mcp_setup: McpSetup) -> None:
    """list_dimensions names the group-by items, compile returns SQL without running, and
    the metric resource is the definition with owner and tier."""

    async def body(client: Client) -> Any:
        dims = await client.call_tool("list_dimensions", {"metrics": ["revenue"]})
        compiled = await client.call_tool(
            "compile",
            {"metrics": ["revenue"], "group_by": ["metric_time__month"], "dialect": "snowflake"},
        )
        resource = await client.read_resource("tally://metrics/revenue")
        templates = await client.list_resource_templates()
        return dims, compiled, resource, templates

    dims, compiled, resource, templates = _run(_stdio(mcp_setup, mcp_setup.token), body)
    assert "metric_time__month" in dims.structured_content["group_by"]
    assert "account__plan" in dims.structured_content["group_by"]
    assert compiled.structured_content["dialect"] == "snowflake"
    assert "SELECT" in compiled.structured_content["sql"]
    definition = json.loads(resource.contents[0].text)
    assert definition["name"] == "revenue" and definition["owner"] == "finance-data"
    assert definition["spec"]["type"] == "simple"
    assert any(t.uri_template == "tally://metrics/{name}" for t in templates.resource_templates)


def test_dimension_values_follow_the_tokens_tenant(mcp_setup: McpSetup, mcp_http: str) -> None:
    """list_dimension_values under a tenant-bound token lists only that tenant; the auditor's
    token lists them all, with search and limit."""

    def body(arguments: dict[str, Any]) -> Callable[[Client], Awaitable[Any]]:
        async def call(client: Client) -> Any:
            return await client.call_tool("list_dimension_values", arguments)

        return call

    tenants = {"dimension": "account__tenant_id", "metrics": ["revenue"]}
    restricted = _run(_http(mcp_http, mcp_setup.tenant_token), body(tenants))
    assert not restricted.is_error, restricted.content
    assert restricted.structured_content["values"] == ["t13"]
    everyone = _run(_stdio(mcp_setup, mcp_setup.token), body({**tenants, "limit": 2}))
    assert everyone.structured_content["truncated"] is True
    assert len(everyone.structured_content["values"]) == 2
    searched = _run(_http(mcp_http, mcp_setup.token), body({**tenants, "search": "t13"}))
    assert "t13" in searched.structured_content["values"]
    assert all("t13" in v for v in searched.structured_content["values"])


CONNECTIONS_SCRIPT = """
import anyio
from asgiref.sync import sync_to_async
from django.db.backends.signals import connection_created
from mcp import Client
from tally.mcp.server import build_server

opened = []
connection_created.connect(
    lambda sender, connection, **kw: opened.append(connection), weak=False
)


async def main():
    async with Client(build_server(stdio_token={token!r})) as client:
        counts = []
        for _ in range(3):
            answer = await client.call_tool("search_metrics", {{"query": "revenue"}})
            assert not answer.is_error, answer.content
            counts.append(len(opened))
        # A call that left its transaction open (autocommit off) must not leak it into the next.
        await sync_to_async(lambda: opened[-1].set_autocommit(False), thread_sensitive=True)()
        answer = await client.call_tool("search_metrics", {{"query": "revenue"}})
        counts.append(len(opened))
        print(counts, answer.is_error)


anyio.run(main)
"""


def test_tool_calls_keep_one_connection_and_replace_a_spoilt_one(mcp_setup: McpSetup) -> None:
    """Successive tool calls reuse the tool thread's database connection (reconnecting on
    every call cost ~5 ms CPU, more than the query), and a connection a call left outside
    autocommit is replaced before the next call, which then answers normally."""
    script = CONNECTIONS_SCRIPT.format(token=mcp_setup.token)
    result = run_tally("shell", "-c", script, env=mcp_setup.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[1, 1, 1, 2] False"


def test_compile_and_query_take_the_options_of_a_query_without_metrics(
    mcp_setup: McpSetup,
) -> None:
    """min_max_only and apply_group_by reach the compiler as the API's body and the CLI's
    flags pass them: min_max_only answers the rows `tally query --min-max-only` gives, and
    apply_group_by=false drops the GROUP BY of the compiled SQL."""

    async def body(client: Client) -> Any:
        plans = {"metrics": [], "group_by": ["account__plan"]}
        least_most = await client.call_tool("query", {**plans, "min_max_only": True})
        pairs = {"metrics": [], "group_by": ["user__country", "account__plan"]}
        grouped = await client.call_tool("compile", pairs)
        every_row = await client.call_tool("compile", {**pairs, "apply_group_by": False})
        return least_most, grouped, every_row

    least_most, grouped, every_row = _run(_stdio(mcp_setup, mcp_setup.token), body)
    assert not least_most.is_error, least_most.content
    cli = run_tally(
        "query", "--group-by", "account__plan", "--min-max-only", "--format", "json",
        env=mcp_setup.env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert least_most.structured_content["columns"] == ["account__plan__min", "account__plan__max"]
    assert least_most.structured_content["rows"] == json.loads(cli.stdout)["rows"]
    assert "GROUP BY" in grouped.structured_content["sql"]
    assert "GROUP BY" not in every_row.structured_content["sql"]


def test_options_misused_are_tool_errors_naming_the_field(mcp_setup: McpSetup) -> None:
    """As the API's 400: min_max_only with a metric, or apply_group_by=false with a metric, is
    error[bad_query_option] located at the field to drop, with the compiler's message and
    hint; a value that is no boolean is refused before anything compiles."""

    async def body(client: Client) -> Any:
        by_plan = {"metrics": ["revenue"], "group_by": ["account__plan"]}
        return (
            await client.call_tool("query", {**by_plan, "min_max_only": True}),
            await client.call_tool("compile", {**by_plan, "apply_group_by": False}),
            await client.call_tool("compile", {**by_plan, "min_max_only": "maybe"}),
        )

    min_max, group_by, not_bool = _run(_stdio(mcp_setup, mcp_setup.token), body)
    assert min_max.is_error
    # The SDK puts "Error executing tool query: " before the text the tool raised.
    assert min_max.content[0].text.endswith(
        f"metrics: error[bad_query_option]: {MSG_MIN_MAX_ONLY}\n  hint: drop metrics or min_max_only"
    )
    assert group_by.is_error
    assert f"apply_group_by: error[bad_query_option]: {MSG_APPLY_GROUP_BY}" in (
        group_by.content[0].text
    )
    assert not_bool.is_error and "min_max_only" in not_bool.content[0].text


def test_query_takes_having_as_the_cli_does(mcp_setup: McpSetup) -> None:
    """having reaches the compiler as --having does (the same rows as `tally query`), and a
    name that is not an output is a tool error[bad_having] at having[0]."""

    async def body(client: Client) -> Any:
        kept = await client.call_tool("query", {**BY_PLAN, "having": ["revenue > 100000"]})
        bad = await client.call_tool("compile", {**BY_PLAN, "having": ["cost > 1"]})
        return kept, bad

    kept, bad = _run(_stdio(mcp_setup, mcp_setup.token), body)
    assert not kept.is_error, kept.content
    rows = _cli_rows(mcp_setup, "--having", "revenue > 100000")
    assert rows and kept.structured_content["rows"] == rows
    assert len(rows) < len(_cli_rows(mcp_setup))
    assert bad.is_error and "having[0]:0-4: error[bad_having]: 'cost'" in bad.content[0].text
