"""What each MCP tool does, for one caller: the services the HTTP API's views call.

Every operation checks the action its API endpoint declares (``caller_require``), counts
against the same per-user rate as the endpoint, and hands the caller's principal to the
service, which applies row policies and PII masks and writes the audit row. Nothing here
decides policy; it only shapes arguments and JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.conf import settings
from pydantic import WithJsonSchema

# pydantic (the MCP SDK's output schemas) needs typing_extensions' TypedDict before 3.12.
from typing_extensions import TypedDict

from registry.models import Kind
from registry.roles import Action
from registry.selectors import definition_get, definition_list, release_get
from semantic.answers import value_plain
from semantic.audited import metric_query_compile, metric_query_run
from semantic.compiler.api import common_queryable_items
from semantic.compiler.dimension_values import DEFAULT_LIMIT as VALUES_DEFAULT_LIMIT
from semantic.compiler.spec import MetricQuery
from semantic.dimension_values import dimension_values
from semantic.query_bounds import query_input_bounds
from semantic.services import manifest_for_release, saved_query_apply
from tally.errors import UserError
from tally.mcp.caller import Caller, caller_require
from tally.throttling import rate_limit_check_user

# Most metrics one search returns: an agent asks again with more words, not for everything.
MAX_SEARCH_RESULTS = 200
MSG_NO_METRICS = "name at least one metric"


class MetricSummary(TypedDict):
    name: str
    label: str
    description: str
    type: str
    owner: str | None
    domain: str | None
    tier: str
    status: str
    version: str | None
    certified: bool
    certified_by: str | None
    certified_at: str | None


class MetricDefinition(MetricSummary):
    spec: dict[str, Any] | None
    versions: list[dict[str, Any]]


class DimensionList(TypedDict):
    metrics: list[str]
    release: str
    group_by: list[str]


class CompiledSql(TypedDict):
    sql: str
    dialect: str
    columns: list[str]
    release: str
    versions: dict[str, str]


# The output schema says "an array" without item schemas: a client validates structured
# output against it, and descending into every cell of 100k rows costs it more than the
# query (jsonschema walked ~20 ms per 100-row answer in bench/mcp_overhead.py).
Rows = Annotated[
    list[list[Any]],
    WithJsonSchema({"type": "array", "description": "rows, each a list in column order"}),
]
Values = Annotated[list[Any], WithJsonSchema({"type": "array", "description": "the values"})]


class QueryRows(TypedDict):
    columns: list[str]
    rows: Rows
    sql: str
    release: str
    versions: dict[str, str]
    truncated: bool


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(definition: Any) -> MetricSummary:
    version = definition.current_version
    return {
        "name": definition.name,
        "label": definition.label,
        "description": definition.description,
        "type": definition.metric_type,
        "owner": definition.owner.slug if definition.owner else None,
        "domain": definition.domain.slug if definition.domain else None,
        "tier": definition.tier,
        "status": definition.status,
        "version": version.semver if version is not None else None,
        "certified": definition.certified_by_id is not None,
        "certified_by": definition.certified_by.username if definition.certified_by else None,
        "certified_at": _iso(definition.certified_at),
    }


def metrics_search(
    caller: Caller,
    *,
    text: str | None = None,
    owner: str | None = None,
    domain: str | None = None,
    tier: str | None = None,
    limit: int = 50,
) -> list[MetricSummary]:
    """Metrics whose name, label or description contains ``text`` (all when empty), with
    owner, domain, tier and certification: what ``GET /api/v1/metrics?q=`` lists."""
    caller_require(caller, Action.READ, tool="search_metrics")
    found = definition_list(kind=Kind.METRIC, q=text or None, owner=owner, domain=domain, tier=tier)
    return [_summary(d) for d in found[: max(1, min(limit, MAX_SEARCH_RESULTS))]]


def metric_definition(caller: Caller, *, name: str) -> MetricDefinition:
    """One metric's current definition (the dbt Semantic Layer spec) and its versions, as
    ``GET /api/v1/metrics/{name}`` answers."""
    caller_require(caller, Action.READ, tool="metric_definition")
    definition = definition_get(kind=Kind.METRIC, name=name)
    version = definition.current_version
    return {
        **_summary(definition),
        "spec": version.spec if version is not None else None,
        "versions": [
            {
                "version": v.semver,
                "change_kind": v.change_kind,
                "change_summary": v.change_summary,
                "author": v.author.username if v.author else None,
                "created_at": _iso(v.created_at),
            }
            for v in definition.versions.all()
        ],
    }


def dimensions_list(
    caller: Caller, *, metrics: list[str], release: str | None = None
) -> DimensionList:
    """The group-by items every one of ``metrics`` accepts (metric_time at each grain,
    entities, dimensions), as ``GET /api/v1/metrics/{name}/dimensions`` lists for one."""
    caller_require(caller, Action.READ, tool="list_dimensions")
    if not metrics:
        raise UserError(MSG_NO_METRICS, code="bad_query", location="metrics")
    found = release_get(release)
    items = common_queryable_items(manifest_for_release(found), metrics)
    return {"metrics": list(metrics), "release": found.name, "group_by": items}


class DimensionValueList(TypedDict):
    dimension: str
    values: Values
    truncated: bool
    sql: str
    release: str
    versions: dict[str, str]


def dimension_values_list(
    caller: Caller,
    *,
    dimension: str,
    metrics: list[str],
    search: str | None = None,
    limit: int = VALUES_DEFAULT_LIMIT,
    release: str | None = None,
) -> DimensionValueList:
    """Distinct values of a dimension on the rows the metrics read, under the caller's row
    policies and masks, as ``GET /api/v1/metrics/{name}/dimensions/{dim}/values`` (a query:
    the query right and rate; audited)."""
    caller_require(caller, Action.QUERY, tool="list_dimension_values")
    rate_limit_check_user(caller.user, "query")
    answer = dimension_values(
        principal=caller.principal,
        dimension=dimension,
        metrics=tuple(metrics),
        search=search or None,
        limit=limit,
        release=release,
        acting_user=caller.user,
    )
    return {
        "dimension": answer.dimension,
        "values": [value_plain(v) for v in answer.values],
        "truncated": answer.truncated,
        "sql": answer.sql,
        "release": answer.release,
        "versions": dict(answer.versions),
    }


def _query(arguments: dict[str, Any], dialect: str) -> MetricQuery:
    # The API's size bounds (items, item length, the filters' total text) before parsing.
    query_input_bounds(arguments)
    query = MetricQuery(
        metrics=tuple(arguments.get("metrics") or ()),
        group_by=tuple(arguments.get("group_by") or ()),
        where=tuple(arguments.get("where") or ()),
        having=tuple(arguments.get("having") or ()),
        start_time=arguments.get("start_time"),
        end_time=arguments.get("end_time"),
        order_by=tuple(arguments.get("order_by") or ()),
        limit=arguments.get("limit"),
        dialect=dialect,
        min_max_only=arguments.get("min_max_only", False),
        apply_group_by=arguments.get("apply_group_by", True),
    )
    if arguments.get("saved_query"):
        query = saved_query_apply(
            name=arguments["saved_query"], query=query, release_ref=arguments.get("release")
        )
    return query


def query_compile(caller: Caller, arguments: dict[str, Any]) -> CompiledSql:
    """Compiles a metric query for the caller, as ``POST /api/v1/compile`` (audited)."""
    caller_require(caller, Action.COMPILE, tool="compile")
    rate_limit_check_user(caller.user, "compile")
    query = _query(arguments, arguments.get("dialect") or settings.WAREHOUSE.dialect)
    compiled = metric_query_compile(
        query=query,
        release_ref=arguments.get("release"),
        principal=caller.principal,
        acting_user=caller.user,
    )
    return {
        "sql": compiled.sql,
        "dialect": compiled.dialect,
        "columns": list(compiled.columns),
        "release": compiled.release,
        "versions": dict(compiled.versions),
    }


def query_run(caller: Caller, arguments: dict[str, Any]) -> QueryRows:
    """Runs a metric query for the caller, as ``POST /api/v1/query``: rows with the SQL,
    release and metric versions (audited, rows capped at TALLY_QUERY_ROW_CAP)."""
    caller_require(caller, Action.QUERY, tool="query")
    rate_limit_check_user(caller.user, "query")
    query = _query(arguments, settings.WAREHOUSE.dialect)
    answer = metric_query_run(
        query=query,
        release_ref=arguments.get("release"),
        principal=caller.principal,
        acting_user=caller.user,
        row_cap=settings.TALLY_QUERY_ROW_CAP,
    )
    return {
        "columns": list(answer.columns),
        "rows": [[value_plain(v) for v in row] for row in answer.rows],
        "sql": answer.compiled.sql,
        "release": answer.compiled.release,
        "versions": dict(answer.compiled.versions),
        "truncated": answer.truncated,
    }


def value_trace_get(
    caller: Caller, *, value_id: int, rows: int | None = None, dialect: str | None = None
) -> dict[str, Any]:
    """Traces a stored value (definitions, run SQL, contracts, source columns, drill-down
    SQL, and with ``rows`` the source rows), as ``GET /api/v1/values/{id}/trace``."""
    caller_require(caller, Action.VIEW_VALUES, tool="trace_value")
    if rows:
        # Reading source rows is a query: the query right, the query rate, and the caller's
        # row policies and masks on the drill-down (as the API).
        caller_require(caller, Action.QUERY, tool="trace_value")
        rate_limit_check_user(caller.user, "query")
    # Loaded on the first trace: lineage's graph code is most of the tools' start-up.
    from lineage.trace import value_trace

    trace = value_trace(value_id=value_id, dialect=dialect, rows=rows, principal=caller.principal)
    result: dict[str, Any] = trace.as_dict()
    return result
