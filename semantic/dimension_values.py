"""Dimension values for a caller: the distinct values of one group-by item, reachable from
given metrics (or read from the item's own model), under the caller's row policies and masks.

The one service behind ``tally list dimension-values``, ``GET /api/v1/metrics/{name}/
dimensions/{dim}/values`` and the SQL API's ``SELECT DISTINCT dim``: compiled by
semantic.compiler.dimension_values, run through semantic.warehouse.run (time spine, PII
salt), audited as ``query.dimension_values`` like every other query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from registry.services.audit import audit_event_create
from semantic.compiler.api import CompiledQuery
from semantic.compiler.dimension_values import DEFAULT_LIMIT, dimension_values_compile
from semantic.compiler.principal import Principal
from semantic.manifests import manifest_for_release, release_resolve
from semantic.warehouse.run import run_compiled
from tally.errors import TallyError

__all__ = [
    "DimensionValues",
    "dimension_values",
    "dimension_values_compile_audited",
    "dimension_values_compiled",
]

AUDIT_ACTION = "query.dimension_values"


@dataclass(frozen=True)
class DimensionValues:
    """The values (ordered, at most ``limit``), whether more exist, and what produced them."""

    dimension: str
    values: tuple[Any, ...]
    truncated: bool
    sql: str
    release: str
    versions: dict[str, str]

    @property
    def rows(self) -> tuple[tuple[Any, ...], ...]:
        return tuple((value,) for value in self.values)


def dimension_values_compiled(
    *,
    principal: Principal | None,
    dimension: str,
    metrics: Sequence[str] = (),
    where: Sequence[str] = (),
    search: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    release: str | None = None,
    dialect: str | None = None,
    descending: bool = False,
    probe: bool = True,
) -> CompiledQuery:
    """The compiled dimension-values query for a principal (None: trusted) on a release
    (default latest), for the warehouse's dialect unless another is named."""
    return dimension_values_compile(
        manifest_for_release(release_resolve(release)),
        dimension=dimension,
        metrics=metrics,
        where=where,
        search=search or None,
        limit=limit,
        dialect=dialect or settings.WAREHOUSE.dialect,
        principal=principal,
        mask_default=settings.TALLY_PII_MASK,
        descending=descending,
        probe=probe,
    )


def _payload(
    principal: Principal | None, dimension: str, metrics: Sequence[str], where: Sequence[str]
) -> dict[str, Any]:
    return {
        "dimension": dimension,
        "metrics": list(metrics),
        "where": list(where),
        "principal": None
        if principal is None
        else {
            "attributes": dict(principal.attributes),
            "view_pii": principal.view_pii,
            "unrestricted": principal.unrestricted,
        },
    }


def dimension_values_compile_audited(
    *,
    principal: Principal | None,
    acting_user: Any,
    dimension: str,
    where: Sequence[str] = (),
    limit: int | None = None,
    descending: bool = False,
    release: str | None = None,
) -> CompiledQuery:
    """Compiles a dimension's values (the SQL API's ``SELECT DISTINCT dim``, which streams
    the rows itself) and appends a ``query.dimension_values`` audit row, or ``…_failed``."""
    payload = {**_payload(principal, dimension, (), where), "limit": limit}
    try:
        compiled = dimension_values_compiled(
            principal=principal,
            dimension=dimension,
            where=where,
            limit=limit,
            release=release,
            descending=descending,
            probe=False,
        )
    except TallyError as exc:
        payload["error"] = {"code": exc.code, "message": exc.message}
        audit_event_create(
            actor=acting_user,
            action=AUDIT_ACTION + "_failed",
            object_kind="query",
            object_name=dimension,
            payload=payload,
        )
        raise
    audit_event_create(
        actor=acting_user,
        action=AUDIT_ACTION,
        object_kind="query",
        object_name=dimension,
        release=release_resolve(compiled.release) if compiled.release else None,
        payload=payload,
        sql=compiled.sql,
    )
    return compiled


def dimension_values(
    *,
    principal: Principal | None,
    dimension: str,
    metrics: Sequence[str] = (),
    search: str | None = None,
    limit: int = DEFAULT_LIMIT,
    release: str | None = None,
    where: Sequence[str] = (),
    acting_user: Any = None,
    timeout_s: float = 60,
) -> DimensionValues:
    """Runs the distinct values of ``dimension`` for a principal and appends a
    ``query.dimension_values`` audit row (``…_failed`` on a refusal)."""
    payload = {**_payload(principal, dimension, metrics, where), "search": search, "limit": limit}
    compiled: CompiledQuery | None = None
    try:
        compiled = dimension_values_compiled(
            principal=principal,
            dimension=dimension,
            metrics=metrics,
            where=where,
            search=search,
            limit=limit,
            release=release,
        )
        result = run_compiled(
            compiled,
            principal=principal,
            release_ref=release,
            timeout_s=timeout_s,
            # The compiled SQL reads limit + 1 rows: one more than asked says "truncated".
            row_cap=limit + 1,
        )
    except TallyError as exc:
        payload["error"] = {"code": exc.code, "message": exc.message}
        audit_event_create(
            actor=acting_user,
            action=AUDIT_ACTION + "_failed",
            object_kind="query",
            object_name=dimension,
            payload=payload,
            sql=compiled.sql if compiled is not None else None,
        )
        raise
    values = tuple(row[0] for row in result.rows)
    answer = DimensionValues(
        dimension=compiled.columns[0],
        values=values[:limit],
        truncated=len(values) > limit or result.truncated,
        sql=compiled.sql,
        release=compiled.release,
        versions=dict(compiled.versions),
    )
    audit_event_create(
        actor=acting_user,
        action=AUDIT_ACTION,
        object_kind="query",
        object_name=dimension,
        release=release_resolve(compiled.release) if compiled.release else None,
        payload={**payload, "versions": answer.versions},
        sql=compiled.sql,
        row_count=len(answer.values),
    )
    return answer
