"""Compile and query on behalf of a principal, with an audit row per call.

The API's compile and query go through here: the principal (from the request's user or
token) is handed to the semantic services, which apply row policies and masking for it, and
every call, refused ones included, appends who, what, the SQL hash and the rows returned.
"""

from __future__ import annotations

from typing import Any

from registry.services.audit import audit_event_create
from semantic.compiler.api import CompiledQuery
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.services import (
    QueryAnswer,
    compile_metric_query,
    query_execute,
    release_resolve,
)
from tally.errors import TallyError


def _payload(query: MetricQuery, principal: Principal | None) -> dict[str, Any]:
    return {
        "metrics": list(query.metrics),
        "group_by": list(query.group_by),
        "where": list(query.where),
        # Only when set: audit rows written before having existed keep their shape.
        **({"having": list(query.having)} if query.having else {}),
        "order_by": list(query.order_by),
        "limit": query.limit,
        "start_time": query.start_time,
        "end_time": query.end_time,
        "dialect": query.dialect,
        "principal": (
            {
                "attributes": dict(principal.attributes),
                "view_pii": principal.view_pii,
                "unrestricted": principal.unrestricted,
            }
            if principal is not None
            else None
        ),
    }


def _audit(
    action: str,
    *,
    query: MetricQuery,
    principal: Principal | None,
    acting_user: Any,
    compiled: CompiledQuery | None = None,
    rows: int | None = None,
    error: TallyError | None = None,
) -> None:
    payload = _payload(query, principal)
    if compiled is not None:
        payload["versions"] = dict(compiled.versions)
    if error is not None:
        payload["error"] = {"code": error.code, "message": error.message}
    audit_event_create(
        actor=acting_user,
        action=action if error is None else f"{action}_failed",
        object_kind="query",
        object_name=",".join(query.metrics),
        release=release_resolve(compiled.release) if compiled is not None else None,
        payload=payload,
        sql=compiled.sql if compiled is not None else None,
        row_count=rows,
    )


def metric_query_compile(
    *,
    query: MetricQuery,
    release_ref: str | None,
    principal: Principal | None,
    acting_user: Any,
) -> CompiledQuery:
    """Compiles for a principal and appends a ``query.compile`` audit row (or ``…_failed``)."""
    try:
        compiled: CompiledQuery = compile_metric_query(
            query=query, release_ref=release_ref, principal=principal
        )
    except TallyError as exc:
        _audit(
            "query.compile", query=query, principal=principal, acting_user=acting_user, error=exc
        )
        raise
    _audit(
        "query.compile",
        query=query,
        principal=principal,
        acting_user=acting_user,
        compiled=compiled,
    )
    return compiled


def metric_query_run(
    *,
    query: MetricQuery,
    release_ref: str | None,
    principal: Principal | None,
    acting_user: Any,
    row_cap: int = 100_000,
) -> QueryAnswer:
    """Runs a query for a principal; the ``query.run`` audit row holds SQL hash and row count."""
    try:
        answer: QueryAnswer = query_execute(
            query=query, release_ref=release_ref, principal=principal, row_cap=row_cap
        )
    except TallyError as exc:
        _audit("query.run", query=query, principal=principal, acting_user=acting_user, error=exc)
        raise
    _audit(
        "query.run",
        query=query,
        principal=principal,
        acting_user=acting_user,
        compiled=answer.compiled,
        rows=answer.row_count,
    )
    return answer
