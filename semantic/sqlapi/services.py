"""What the SQL API server asks of the semantic layer: the table of a release, and a
SELECT on it compiled for the warehouse (for a principal)."""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from sqlglot import exp

from semantic.compiler.api import CompiledQuery
from semantic.compiler.principal import Principal
from semantic.dimension_values import dimension_values_compile_audited
from semantic.manifests import manifest_for_release, release_key, release_resolve
from semantic.result_cache import result_cache_ttl, result_key
from semantic.sqlapi.bi_shapes import map_bi_select
from semantic.sqlapi.catalog import Catalog
from semantic.sqlapi.table import SqlTable, sql_table_build
from semantic.sqlapi.translate import MappedQuery
from semantic.streams import metric_query_compile
from semantic.warehouse.run import session_variables

_catalogs: dict[tuple[int, str], Catalog] = {}
_lock = threading.Lock()


def sql_catalog_get(*, release_ref: str | None = None) -> Catalog:
    """The ``tally.metrics`` table and its DuckDB catalog for a release (latest by default),
    built once per process and release (at most two are kept, each within
    TALLY_SQL_CATALOG_MEMORY)."""
    release = release_resolve(release_ref)
    key = release_key(release)
    with _lock:
        catalog = _catalogs.get(key)
        if catalog is None:
            catalog = Catalog(
                sql_table_build(manifest_for_release(release)),
                memory_limit=settings.TALLY_SQL_CATALOG_MEMORY,
            )
            # Keep the current and the previous release: connections opened before a
            # merge keep answering from the catalog they described to their client.
            while len(_catalogs) >= 2:
                _catalogs.pop(next(iter(_catalogs)))
            _catalogs[key] = catalog
    return catalog


def sql_select_map(*, select: exp.Expr, table: SqlTable) -> MappedQuery:
    """A SELECT on tally.metrics (parameters bound) mapped onto a MetricQuery for the
    warehouse's dialect: a pure function of the statement and the release's table, the same
    for every principal."""
    return map_bi_select(select, table, dialect=settings.WAREHOUSE.dialect)


def sql_mapped_compile(
    *, mapped: MappedQuery, principal: Principal | None, acting_user: Any
) -> tuple[MappedQuery, CompiledQuery]:
    """A mapped SELECT (``sql_select_map``) compiled for the warehouse on behalf of the
    connection's principal (audited like the HTTP API's compiles); with no metric, the query
    of one column's distinct values (semantic.dimension_values), or of several columns'
    distinct combinations (a query without metrics)."""
    query = mapped.query
    if not query.metrics and len(query.group_by) == 1:
        # SELECT [DISTINCT] dim … [GROUP BY dim]: a filter dropdown asking for the values.
        return mapped, dimension_values_compile_audited(
            principal=principal,
            acting_user=acting_user,
            dimension=query.group_by[0],
            where=query.where,
            limit=query.limit,
            descending=bool(query.order_by) and query.order_by[0].startswith("-"),
        )
    compiled = metric_query_compile(
        query=mapped.query, principal=principal, acting_user=acting_user
    )
    return mapped, compiled


def sql_result_key(
    *, compiled: CompiledQuery, principal: Principal | None, row_cap: int
) -> str | None:
    """The result-cache key of a compiled SELECT (None: the cache is off). The same as the
    HTTP API's for the same SQL, principal binding and row cap: the two share answers."""
    if result_cache_ttl() <= 0:
        return None
    return result_key(
        release=release_resolve(compiled.release), sql=compiled.sql, row_cap=row_cap,
        principal=principal, variables=session_variables(compiled, principal=principal),
    )  # fmt: skip
