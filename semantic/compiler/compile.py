"""compile(query, manifest) → SQL: the compiler's stages, in order.

``compile_query`` reads as its list of stages (each timed in ``CompiledQuery.timings``):

1. ``resolve`` (semantic.compiler.resolve): names → typed items, with did-you-mean errors.
2. ``plan`` (semantic.compiler.plan): metrics expand to leaf measures; leaves that read the
   same model under the same filters share one aggregation (one scan each).
3. ``to_sql`` (semantic.compiler.query): each aggregation is a CTE built by its metric kind
   (semantic.compiler.kinds) over a scan with its joins (semantic.compiler.joins), filters
   (semantic.compiler.filters) and time (semantic.compiler.time); the CTEs combine
   (semantic.compiler.combine) and the metrics are computed on top.
4. ``mask`` / ``row_policies`` (semantic.compiler.policies), for a principal only.
5. ``sql_passes`` (semantic.compiler.sql_passes), then ``render``
   (semantic.compiler.dialects) with a header naming the release and metric versions.

User text enters only as parsed, checked sqlglot expressions (see semantic.compiler.where).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from semantic.compiler.date_parts import markers_built
from semantic.compiler.dialects import render
from semantic.compiler.error_names import name_the_metric
from semantic.compiler.filters import ACCESS, FILTER_CTES, FilterCtes
from semantic.compiler.key_uses import KeyUse, key_uses, key_uses_collected
from semantic.compiler.manifest import Manifest
from semantic.compiler.policies import Access, mask_columns, secure_tables
from semantic.compiler.principal import Principal
from semantic.compiler.query import query_select
from semantic.compiler.spec import MetricQuery
from semantic.compiler.sql_passes import optimize
from tally.errors import QueryError


@dataclass
class CompiledQuery:
    sql: str
    dialect: str
    columns: tuple[str, ...]
    release: str
    versions: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    # Session variables / parameters the SQL reads and execution must set (by name, never
    # a value): "tally_pii_salt" when PII is shown as salted pseudonyms.
    parameters: tuple[str, ...] = ()
    # The declared keys its joins rely on (semantic.compiler.key_uses): the executor checks
    # the data holds them before it runs the SQL.
    key_uses: tuple[KeyUse, ...] = ()


def compile_query(
    query: MetricQuery,
    manifest: Manifest,
    *,
    level: int | None = None,
    principal: Principal | None = None,
    mask_default: str = "hash",
) -> CompiledQuery:
    """Compiles a metric query to SQL for its dialect.

    ``level`` runs that many of ``SQL_PASSES`` (0: none; default: all); every level gives
    the same rows. ``principal`` (None: a trusted caller) injects the row policies into
    every read of a semantic model and masks PII columns (``mask_default``: "hash" or
    "null" for columns whose contract does not choose); see semantic.compiler.policies.

    Raises:
        QueryError: unknown names (with suggestions), unreachable dimensions, bad filters,
            unsupported options, a filter on a masked column, a malformed row policy; never
            an exception of another type for user input.
    """
    timings: dict[str, float] = {}
    markers = markers_built()
    filter_ctes = FilterCtes(query_select)
    token = FILTER_CTES.set(filter_ctes)
    access = None
    if principal is not None:
        access = Access(manifest, principal, query.dialect, mask_default)
    access_token = ACCESS.set(access)
    try:
        with key_uses_collected() as noted:
            result, keys = query_select(query, manifest, timings)
    except QueryError as exc:
        # Name the metric the user asked for, not the input where the problem surfaced.
        raise name_the_metric(exc, query, manifest) from exc.__cause__
    finally:
        FILTER_CTES.reset(token)
        ACCESS.reset(access_token)
    filter_ctes.prepend_to(result)

    if access is not None:
        started = time.perf_counter()
        mask_columns(result, access)  # in place: the root is a SELECT, never replaced
        timings["mask"] = time.perf_counter() - started

    started = time.perf_counter()
    tree = optimize(result, level, query.dialect)
    timings["sql_passes"] = time.perf_counter() - started

    if access is not None:
        started = time.perf_counter()
        tree = secure_tables(tree, access)
        timings["row_policies"] = time.perf_counter() - started

    started = time.perf_counter()
    header = f"-- tally release {manifest.release or 'unreleased'}: " + ", ".join(
        f"{m}@{manifest.metrics[m].version}" for m in query.metrics
    )
    sql = header + "\n" + render(tree, query.dialect, date_parts=markers_built() != markers)
    timings["render"] = time.perf_counter() - started
    return CompiledQuery(
        sql=sql,
        dialect=query.dialect,
        columns=(*keys, *query.metrics),
        release=manifest.release,
        versions={m: manifest.metrics[m].version for m in query.metrics},
        timings=timings,
        parameters=access.parameters if access is not None else (),
        key_uses=key_uses(noted, manifest, query.dialect),
    )
