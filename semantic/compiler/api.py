"""The compiler's public face: what code outside semantic/compiler imports.

The stages live in their own modules (see semantic.compiler.compile); importers outside the
compiler take these names from here, so the stages can move without touching them.
"""

from __future__ import annotations

from semantic.compiler.compile import CompiledQuery, compile_query
from semantic.compiler.definition_sql import DEFINITION_DIALECT
from semantic.compiler.filters import check_filter_metric
from semantic.compiler.joins import queryable_items
from semantic.compiler.resolve import METRIC_TIME, parse_group_by
from semantic.compiler.time import period_bounds
from semantic.compiler.where import ParsedWhere, QueryItemRef, parse_where, substitute

__all__ = [
    "DEFINITION_DIALECT",
    "METRIC_TIME",
    "CompiledQuery",
    "ParsedWhere",
    "QueryItemRef",
    "check_filter_metric",
    "compile_query",
    "parse_group_by",
    "parse_where",
    "period_bounds",
    "queryable_items",
    "substitute",
]
