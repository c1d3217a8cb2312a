"""compile and query build their CallToolResult themselves (issue #19: the SDK's conversion of
a returned dict validated and dumped every row again): the answer must be what MCPServer
builds from the same dict, byte for byte on the wire, under the same output schema."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver.utilities.func_metadata import func_metadata
from mcp_types import CallToolResult

from tally.mcp import operations
from tally.mcp.server import tool_answer
from tests.conftest import run_tally
from tests.tally.mcp.conftest import McpSetup

ROWS = [
    ["2024-01-01", "pro", 1250.5],
    ["2024-01-01", None, 0],
    ["2024-02-01", 'free "quoted" \\ é ✓', "Infinity"],
    ["2024-02-01", "team", -3.25e-07],
]
ANSWERS: dict[str, Any] = {
    "query": {
        "columns": ["metric_time__month", "account__plan", "revenue"],
        "rows": ROWS,
        "sql": 'SELECT\n  1 AS "x"\n-- release r1\n',
        "release": "r1",
        "versions": {"revenue": "1.2.0"},
        "truncated": False,
    },
    "compile": {
        "sql": "SELECT 1",
        "dialect": "duckdb",
        "columns": ["revenue"],
        "release": "r1",
        "versions": {"revenue": "1.2.0", "orders": "0.1.0"},
    },
}
TYPES: dict[str, Any] = {"query": operations.QueryRows, "compile": operations.CompiledSql}


def test_tool_answer_is_what_mcpserver_builds_from_the_dict() -> None:
    for name, raw in ANSWERS.items():
        answer_type = TYPES[name]

        # Only their declared return types matter: func_metadata reads them (set below: a
        # string annotation cannot name a local).
        def returns_dict() -> Any: ...

        def returns_result() -> Any: ...

        returns_dict.__annotations__["return"] = answer_type
        returns_result.__annotations__["return"] = Annotated[CallToolResult, answer_type]

        sdk, ours = func_metadata(returns_dict), func_metadata(returns_result)
        assert ours.output_schema == sdk.output_schema, name
        expected = sdk.convert_result(raw)
        got = ours.convert_result(tool_answer(raw))
        assert isinstance(got, CallToolResult)
        wire = {"by_alias": True, "mode": "json", "exclude_none": True}
        assert got.model_dump(**wire) == expected.model_dump(**wire), name
        assert got.model_dump_json(by_alias=True, exclude_none=True) == expected.model_dump_json(
            by_alias=True, exclude_none=True
        ), name


MIDDLEWARE = (
    "from tally.mcp.server import build_server\n"
    "print([type(m).__name__ for m in build_server()._lowlevel_server.middleware])\n"
)
PROVIDER = (
    "from opentelemetry import trace\n"
    "class Provider(trace.TracerProvider):\n"
    "    def get_tracer(self, *args, **kwargs):\n"
    "        return trace.NoOpTracer()\n"
    "trace.set_tracer_provider(Provider())\n"
)


def test_opentelemetry_spans_only_with_a_tracer_provider(mcp_setup: McpSetup) -> None:
    """Without an OpenTelemetry SDK the SDK's span middleware is dropped (issue #19: its
    no-op spans cost every call); a tracer provider installed before the server is built
    keeps it, so an instrumented deployment still gets a span per message."""
    bare = run_tally("shell", "-c", MIDDLEWARE, env=mcp_setup.env)
    assert bare.returncode == 0, bare.stderr
    assert "OpenTelemetryMiddleware" not in bare.stdout.strip().splitlines()[-1]
    traced = run_tally("shell", "-c", PROVIDER + MIDDLEWARE, env=mcp_setup.env)
    assert traced.returncode == 0, traced.stderr
    assert "'OpenTelemetryMiddleware'" in traced.stdout.strip().splitlines()[-1]
