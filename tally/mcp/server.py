"""The MCP server's tools and resources (official ``mcp`` SDK, ``MCPServer``).

Each tool is a thin async wrapper: it finds the caller's token (stdio: the one the process
was started with; HTTP: the request's ``Authorization: Bearer`` header), then runs one
operation of ``tally.mcp.operations`` on Django's thread for synchronous code
(``sync_to_async(thread_sensitive=True)``: the ORM refuses to run on the event loop, and one
thread keeps one database connection). A Tally ``UserError`` becomes a tool error whose text
is the CLI's ``error[code]: message`` with its hint, so an agent can read what to change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

import pydantic_core
from asgiref.sync import sync_to_async
from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp_types import CallToolResult, TextContent
from opentelemetry import trace
from pydantic import Field

from registry.services.audit import access_context_bind, access_context_reset
from semantic.compiler.dimension_values import DEFAULT_LIMIT as VALUES_DEFAULT_LIMIT
from semantic.compiler.dimension_values import MAX_LIMIT as VALUES_MAX_LIMIT
from semantic.compiler.dimension_values import MAX_SEARCH as VALUES_MAX_SEARCH
from semantic.compiler.spec import DIALECTS
from tally.db import connections_keep
from tally.errors import UserError
from tally.mcp import operations
from tally.mcp.caller import Caller, bearer, caller_authenticate

T = TypeVar("T")
INSTRUCTIONS = (
    "Tally is a governed metric registry and semantic layer. Find metrics with "
    "search_metrics (each has an owner, a tier and a certification), see what a metric can be "
    "grouped by with list_dimensions (and the values of a dimension with "
    "list_dimension_values), then compile or query with metric names and group-by items such "
    "as metric_time__month or account__plan. Filters are MetricFlow where clauses: "
    "\"{{ Dimension('account__plan') }} = 'pro'\". Every answer names the release and metric "
    "versions it used; trace_value walks a stored value back to its sources."
)

Names = Annotated[list[str], Field(max_length=100)]
Where = Annotated[
    list[str],
    Field(
        max_length=100,
        description="MetricFlow filters, e.g. \"{{ Dimension('account__plan') }} = 'pro'\"",
    ),
]

Having = Annotated[
    list[str],
    Field(
        max_length=100,
        description="conditions on the query's output columns after aggregation, e.g. "
        '"revenue > 1000"',
    ),
]


OrderBy = Annotated[list[str] | None, Field(description="outputs; prefix - for descending")]
Limit = Annotated[int | None, Field(ge=0)]
Dialect = Annotated[str | None, Field(json_schema_extra={"enum": list(DIALECTS)})]
# MetricFlow's options of a query without metrics, as the API's body and the CLI's flags
# take them; the compiler checks their use (error bad_query_option).
MinMaxOnly = Annotated[
    bool,
    Field(
        description="without metrics: the least and greatest value of the one group_by item "
        "(no order_by or limit)"
    ),
]
ApplyGroupBy = Annotated[
    bool,
    Field(
        description="without metrics: false lists every joined row of the group_by items, "
        "duplicates kept"
    ),
]


def _tool_error(exc: UserError) -> ToolError:
    return ToolError("\n".join(exc.cli_lines()))


def tool_answer(result: Mapping[str, Any]) -> CallToolResult:
    """A tool's answer as ``MCPServer`` builds it from the returned dict of JSON values: the
    dict as structured content and, for clients that read text, as indented JSON in a text
    block; the same bytes on the wire.

    Returned as a ``CallToolResult`` (annotated with the answer's type, so the output schema
    is unchanged), the SDK only validates the structured content against that schema; from a
    dict it also validated and dumped it again and copied it into a new result (issue #19:
    ~0.1 ms CPU a 100-row query answer).
    """
    text = pydantic_core.to_json(result, fallback=str, indent=2).decode()
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=dict(result)
    )


def _token_of(ctx: Context[Any, Any], stdio_token: str | None) -> str | None:
    # Over HTTP every request brings its own token; over stdio the process has one.
    headers = ctx.headers
    if headers is not None:
        return bearer(headers.get("authorization"))
    return stdio_token


def as_caller(raw: str | None, fn: Callable[[Caller], T]) -> T:
    """``fn`` of the caller of token ``raw`` (refused: ``Unauthenticated``)."""
    # Runs on the sync thread: the audit context names this call's token and nothing of a
    # previous call's, and a connection broken since the last call is replaced.
    connections_keep()
    bound = access_context_bind(token=None, principal=None, ip=None)
    try:
        return fn(caller_authenticate(raw))
    finally:
        access_context_reset(bound)


def tracing_unless_idle(server: MCPServer) -> None:
    """Drops the SDK's OpenTelemetry middleware (a span around every message) when no
    OpenTelemetry SDK is installed, as the SDK's own comment on ``Server.middleware`` offers.

    Without one the spans record nothing, yet each call still builds the span's attributes,
    reads the trace context from its ``_meta`` and enters two context managers (issue #19:
    ~90 Python calls a message). A tracer provider installed before the server is built
    (``opentelemetry-instrument``, or in the settings) keeps the spans.
    """
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        lowlevel = server._lowlevel_server
        lowlevel.middleware = [
            m for m in lowlevel.middleware if not isinstance(m, OpenTelemetryMiddleware)
        ]


def build_server(*, stdio_token: str | None = None) -> MCPServer:
    """The MCP server; ``stdio_token`` is the caller of every call when no HTTP request
    carries one (``tally mcp``)."""
    server = MCPServer(name="tally", instructions=INSTRUCTIONS, log_level="WARNING")
    tracing_unless_idle(server)
    # Built once: asgiref's wrapper inspects the function and copies its metadata when built.
    on_django_thread = sync_to_async(as_caller, thread_sensitive=True)

    async def call(ctx: Context[Any, Any], fn: Callable[[Caller], T]) -> T:
        raw = _token_of(ctx, stdio_token)
        try:
            return await on_django_thread(raw, fn)
        except UserError as exc:
            raise _tool_error(exc) from None

    @server.tool(
        description="Search governed metrics by name, label or description; each result has "
        "its description, owner team, domain, tier and certification."
    )
    async def search_metrics(
        ctx: Context[Any, Any],
        query: Annotated[str, Field(max_length=200, description="text to look for")] = "",
        owner: str | None = None,
        domain: str | None = None,
        tier: str | None = None,
        limit: Annotated[int, Field(ge=1, le=operations.MAX_SEARCH_RESULTS)] = 50,
    ) -> list[operations.MetricSummary]:
        return await call(
            ctx,
            lambda c: operations.metrics_search(
                c, text=query, owner=owner, domain=domain, tier=tier, limit=limit
            ),
        )

    @server.tool(
        description="The group-by items (metric_time grains, entities, dimensions) that all "
        "the given metrics accept."
    )
    async def list_dimensions(
        ctx: Context[Any, Any], metrics: Names, release: str | None = None
    ) -> operations.DimensionList:
        return await call(
            ctx, lambda c: operations.dimensions_list(c, metrics=metrics, release=release)
        )

    @server.tool(
        description="Distinct values of a dimension (e.g. account__plan) on the rows the given "
        "metrics read, under your token's row policies and masks; search filters them "
        "(case-insensitive substring). truncated says more exist than limit."
    )
    async def list_dimension_values(
        ctx: Context[Any, Any],
        dimension: Annotated[str, Field(max_length=255)],
        metrics: Names | None = None,
        search: Annotated[str | None, Field(max_length=VALUES_MAX_SEARCH)] = None,
        limit: Annotated[int, Field(ge=0, le=VALUES_MAX_LIMIT)] = VALUES_DEFAULT_LIMIT,
        release: str | None = None,
    ) -> operations.DimensionValueList:
        return await call(
            ctx,
            lambda c: operations.dimension_values_list(
                c,
                dimension=dimension,
                metrics=metrics or [],
                search=search,
                limit=limit,
                release=release,
            ),
        )

    # compile and query take the same query arguments (compile also a dialect): one operation
    # call each, the arguments passed on as the dict the API's request body would be.
    async def query_call(
        ctx: Context[Any, Any],
        op: Callable[[Caller, dict[str, Any]], Mapping[str, Any]],
        **arguments: Any,
    ) -> CallToolResult:
        return tool_answer(await call(ctx, lambda c: op(c, arguments)))

    @server.tool(
        name="compile",
        description="Compile a metric query to SQL (not run). Returns the SQL, its columns, "
        "the release and the metric versions used. With no metrics: the distinct combinations "
        "of the group-by items.",
    )
    async def compile_tool(
        ctx: Context[Any, Any],
        metrics: Names,
        group_by: Names | None = None,
        where: Where | None = None,
        having: Having | None = None,
        order_by: OrderBy = None,
        limit: Limit = None,
        start_time: str | None = None,
        end_time: str | None = None,
        saved_query: str | None = None,
        release: str | None = None,
        dialect: Dialect = None,
        min_max_only: MinMaxOnly = False,
        apply_group_by: ApplyGroupBy = True,
    ) -> Annotated[CallToolResult, operations.CompiledSql]:
        return await query_call(
            ctx, operations.query_compile, metrics=metrics, group_by=group_by, where=where,
            having=having, order_by=order_by, limit=limit, start_time=start_time,
            end_time=end_time, saved_query=saved_query, release=release, dialect=dialect,
            min_max_only=min_max_only, apply_group_by=apply_group_by,
        )  # fmt: skip

    @server.tool(
        name="query",
        description="Run a metric query on the warehouse under your token's row policies and "
        "masks. Returns columns and rows with the SQL, the release and the metric versions. "
        "With no metrics: the distinct combinations of the group-by items.",
    )
    async def query_tool(
        ctx: Context[Any, Any],
        metrics: Names,
        group_by: Names | None = None,
        where: Where | None = None,
        having: Having | None = None,
        order_by: OrderBy = None,
        limit: Limit = None,
        start_time: str | None = None,
        end_time: str | None = None,
        saved_query: str | None = None,
        release: str | None = None,
        min_max_only: MinMaxOnly = False,
        apply_group_by: ApplyGroupBy = True,
    ) -> Annotated[CallToolResult, operations.QueryRows]:
        return await query_call(
            ctx, operations.query_run, metrics=metrics, group_by=group_by, where=where,
            having=having, order_by=order_by, limit=limit, start_time=start_time,
            end_time=end_time, saved_query=saved_query, release=release,
            min_max_only=min_max_only, apply_group_by=apply_group_by,
        )  # fmt: skip

    @server.tool(
        description="Trace a stored metric value (its id) back to its definitions, the SQL "
        "of its run, contracts, source columns and drill-down SQL; rows=N also reads up to N "
        "source rows."
    )
    async def trace_value(
        ctx: Context[Any, Any],
        value_id: int,
        rows: Annotated[int | None, Field(ge=1, le=10_000)] = None,
        dialect: str | None = None,
    ) -> dict[str, Any]:
        return await call(
            ctx,
            lambda c: operations.value_trace_get(c, value_id=value_id, rows=rows, dialect=dialect),
        )

    @server.resource(
        "tally://metrics/{name}",
        name="metric",
        description="A metric's current definition (dbt Semantic Layer spec), owner, tier, "
        "certification and versions",
        mime_type="application/json",
    )
    async def metric_resource(name: str, ctx: Context[Any, Any]) -> operations.MetricDefinition:
        try:
            return await call(ctx, lambda c: operations.metric_definition(c, name=name))
        except ToolError as exc:
            raise ResourceError(str(exc)) from None

    return server
