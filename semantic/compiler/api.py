"""The compiler's public face: what code outside semantic/compiler imports.

The stages live in their own modules (see semantic.compiler.compile); importers outside the
compiler take these names from here, so the stages can move without touching them.
"""

from __future__ import annotations

from semantic.compiler.compile import CompiledQuery
from semantic.compiler.compile import compile_query as compile_metric_query
from semantic.compiler.definition_sql import DEFINITION_DIALECT
from semantic.compiler.dimension_query import dimension_query_compile
from semantic.compiler.filters import check_filter_metric
from semantic.compiler.joins import common_queryable_items, queryable_items
from semantic.compiler.manifest import Manifest
from semantic.compiler.principal import Principal
from semantic.compiler.resolve import METRIC_TIME, parse_group_by
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import period_bounds
from semantic.compiler.where import ParsedWhere, QueryItemRef, parse_where, substitute

__all__ = [
    "DEFINITION_DIALECT",
    "METRIC_TIME",
    "CompiledQuery",
    "ParsedWhere",
    "QueryItemRef",
    "check_filter_metric",
    "common_queryable_items",
    "compile_query",
    "parse_group_by",
    "parse_where",
    "period_bounds",
    "queryable_items",
    "substitute",
]


def compile_query(
    query: MetricQuery,
    manifest: Manifest,
    *,
    level: int | None = None,
    principal: Principal | None = None,
    mask_default: str = "hash",
) -> CompiledQuery:
    """Compiles a query: metrics by group-by items (semantic.compiler.compile), or, with no
    metrics, the distinct combinations of the group-by items
    (semantic.compiler.dimension_query)."""
    if not query.metrics and query.group_by:
        return dimension_query_compile(
            query, manifest, principal=principal, mask_default=mask_default
        )
    return compile_metric_query(
        query, manifest, level=level, principal=principal, mask_default=mask_default
    )
