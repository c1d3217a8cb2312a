"""Tracing a stored value back to its definitions, SQL, run, contracts, columns and rows.

A ``MetricValue`` names the run that last wrote it; the run names its release, grain,
range, slices and replay day. From those the trace rebuilds, with the same functions the
run used, the exact query of the value's source group and chunk (``run_chunk_query``) and
compiles it again (compilation is deterministic, so this is the SQL the run executed; the
run's ``sql_hash`` confirms it when the run is small enough to recompile whole). The
lineage graph of the release gives the contracts and source columns; the value and its
run are attached to a copy of the metric's upstream (``add_compiled_query`` →
``add_compute_run`` → ``add_stored_value``), so the tree starts at the value itself.
The drill-down SQL comes from the compiler (``semantic.compiler.drilldown``); the result's
JSON and text report are in ``lineage.trace_report``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import networkx as nx
from django.conf import settings
from sqlglot import exp

from lineage.graph import (
    GROUPS_BY,
    INDIRECT,
    add_compiled_query,
    add_compute_run,
    add_stored_value,
    metric_id,
    openlineage_column_lineage,
    path,
    resolve_node,
    upstream_tree,
)
from lineage.selectors import lineage_graph_get
from lineage.trace_report import DrillDown, ValueTrace
from registry.definitions.rules import metric_inputs
from registry.models import Kind, Release, ReleaseItem
from semantic.compiler.api import period_bounds
from semantic.compiler.drilldown import DrillDownPart, drilldown_selects
from semantic.compiler.manifest import Manifest
from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS
from semantic.jobs.queries import metric_groups, run_chunk_query, run_chunks, run_load_filters
from semantic.models import ComputeRun, MetricValue
from semantic.permissions import stored_values_require
from semantic.services import compile_metric_query, manifest_for_release
from semantic.warehouse.run import run_compiled
from tally.errors import NotFound, QueryError

if TYPE_CHECKING:
    pass

MSG_UNKNOWN_VALUE = "no stored value with id {value_id}"
HINT_UNKNOWN_VALUE = "list stored values with GET /api/v1/values?metric=NAME (each row has its id)"
MSG_BAD_DIALECT = "unsupported dialect {dialect!r}"
NOTE_REPOINTED = (
    "release {value_release} recomputed this value with the same result under metric version "
    "{version}; the SQL, definitions and drill-down are those of run {run} (release "
    "{run_release}, metric version {run_version}), which computed it"
)
# Recompiling every chunk of a run to check its sql_hash costs a compile per (chunk, group);
# past this many the check is skipped (a 365-chunk daily backfill would take seconds).
MAX_HASH_CHECK_QUERIES = 48
# The run's engine → the dialect its SQL was compiled for.
ENGINE_DIALECTS = {"duckdb": "duckdb", "postgresql": "postgres", "postgres": "postgres",
                   "mysql": "mysql"}  # fmt: skip


class ValueNotFound(NotFound):
    default_code = "unknown_value"


def value_trace(
    *,
    value_id: int,
    dialect: str | None = None,
    rows: int | None = None,
    principal: Principal | None = None,
) -> ValueTrace:
    """Traces one stored value: definitions, compiled SQL, run, contracts, source columns and
    drill-down SQL (run on the warehouse when ``rows`` is given, at most ``rows`` rows per read).

    ``principal`` is who reads (None: trusted). A restricted one may not trace a value of a
    metric that row policies narrow (the value is a total over every tenant: 403); otherwise
    it goes to the drill-down compiler, so its rows are secured for it.
    """
    value = (
        MetricValue.objects.select_related("run__release", "release", "metric_version")
        .filter(pk=value_id)
        .first()
    )
    if value is None:
        raise ValueNotFound(
            MSG_UNKNOWN_VALUE.format(value_id=value_id),
            code="unknown_value",
            hint=HINT_UNKNOWN_VALUE,
            location="value_id",
        )
    stored_values_require(principal=principal, metrics=[value.metric_name], release=value.release)
    if dialect is not None and dialect not in DIALECTS:
        raise QueryError(
            MSG_BAD_DIALECT.format(dialect=dialect),
            code="unsupported_dialect",
            location="dialect",
            hint="use one of " + ", ".join(DIALECTS),
        )
    run = value.run
    release = run.release
    manifest = manifest_for_release(release)
    name = value.metric_name
    version = value.metric_version.semver
    notes: list[str] = []
    if value.release_id != run.release_id:
        # An unchanged number under a new version is repointed, not rewritten (compute.py).
        notes.append(
            NOTE_REPOINTED.format(
                value_release=value.release.name,
                version=version,
                run=run.pk,
                run_release=release.name,
                run_version=manifest.metrics[name].version if name in manifest.metrics else "?",
            )
        )
    run_dialect = _run_dialect(run)

    loads = run_load_filters(run)
    groups = metric_groups(manifest, run.metrics)
    group = next(g for g in groups if name in g)
    chunks = run_chunks(run)
    first, last = next(c for c in chunks if c[0] <= value.period_start <= c[1])
    query = run_chunk_query(run=run, manifest=manifest, group=group, first=first, last=last,
                            loads=loads, dialect=run_dialect)  # fmt: skip
    compiled = compile_metric_query(query=query, release_ref=release.name)
    matches = _sql_matches_run(run, manifest, groups, chunks, loads, run_dialect)

    period_end = period_bounds(value.period_start, value.period_start, value.grain)[1]
    parts = drilldown_selects(
        manifest,
        metric=name,
        grain=value.grain,
        period_start=value.period_start,
        slice_values=value.slice,
        where=query.where,
        limit=rows,
        principal=principal,
    )
    drilldown = tuple(_drill(part, dialect or run_dialect, rows=rows) for part in parts)

    _, graph = lineage_graph_get(release_ref=release.name)
    metric_node = metric_id(name, manifest.metrics[name].version)
    if metric_node not in graph:
        metric_node = resolve_node(graph, f"metric:{name}")
    dimensions = sorted({f"dimension:{d}" for p in parts for d in p.slice_dimensions} & set(graph))
    sub = _value_graph(graph, metric_node, dimensions, compiled.sql, release.name, run.pk, value.pk)
    value_node = f"value:{value.pk}"
    return ValueTrace(
        value=value,
        run=run,
        release=release,
        metric_version=version,
        period_end=period_end,
        definitions=_definitions(release, manifest, name, parts),
        contracts=_contracts(release, sub),
        compiled_sql=compiled.sql,
        compiled_dialect=run_dialect,
        query={
            "metrics": list(query.metrics),
            "group_by": list(query.group_by),
            "where": list(query.where),
            "start_time": query.start_time,
            "end_time": query.end_time,
        },
        sql_matches_run=matches,
        lineage=upstream_tree(sub, value_node).as_dict(),
        source_columns=_source_columns(sub, value_node),
        drilldown=drilldown,
        notes=tuple(notes),
    )


def _run_dialect(run: ComputeRun) -> str:
    engine = run.warehouse.split(":", 1)[0].lower()
    return ENGINE_DIALECTS.get(engine, settings.WAREHOUSE.dialect)


def _sql_matches_run(
    run: ComputeRun,
    manifest: Manifest,
    groups: list[tuple[str, ...]],
    chunks: list[tuple[dt.date, dt.date]],
    loads: dict[str, str],
    dialect: str,
) -> bool | None:
    """Whether recompiling every (chunk, group) of the run gives its stored sql_hash.

    None when it cannot say: no hash stored, a run resumed by a later attempt (its hash
    covers only the chunks that attempt ran), or too many queries to recompile.
    """
    from semantic.warehouse.execute import sql_hash

    if not run.sql_hash or run.attempts > 1:
        return None
    if len(chunks) * len(groups) > MAX_HASH_CHECK_QUERIES:
        return None
    hashes = []
    for first, last in chunks:
        for group in groups:
            query = run_chunk_query(run=run, manifest=manifest, group=group, first=first,
                                    last=last, loads=loads, dialect=dialect)  # fmt: skip
            sql = compile_metric_query(query=query, release_ref=run.release.name).sql
            hashes.append(sql_hash(sql))
    return sql_hash("\n".join(hashes)) == run.sql_hash


def _drill(part: DrillDownPart, dialect: str, *, rows: int | None) -> DrillDown:
    from semantic.compiler.dialects import render

    shown = part.secured(dialect)
    sql = render(shown.tree.copy(), dialect, pretty=True)
    if rows is None:
        return DrillDown(part, sql, dialect)
    warehouse = settings.WAREHOUSE
    # The rows come from the configured warehouse, in its own dialect, whatever was asked
    # for display; the PII salt is a session variable, never part of the SQL shown.
    same = warehouse.dialect == dialect
    secured = shown if same else part.secured(warehouse.dialect)
    run_sql = sql if same else render(secured.tree.copy(), warehouse.dialect, pretty=True)
    result = run_compiled(
        secured, principal=part.principal, sql=run_sql, timeout_s=60, row_cap=max(rows, 1)
    )
    columns = tuple(c.name for c in result.columns)
    # A LIMIT n read returning n rows may have had more.
    truncated = result.truncated or len(result.rows) >= rows
    return DrillDown(part, sql, dialect, columns, result.rows[:rows], truncated)


def _value_graph(
    graph: nx.MultiDiGraph,
    metric_node: str,
    dimensions: list[str],
    sql: str,
    release: str,
    run_id: int,
    value_id: int,
) -> nx.MultiDiGraph:
    """The metric version's upstream, copied, with the compiled query, run and value added
    below it (the cached release graph itself is shared and never written). The slice's
    dimensions group the query's rows: indirect ``groups_by`` edges into the query."""
    nodes = {metric_node, *dimensions}
    for node in (metric_node, *dimensions):
        nodes |= nx.ancestors(graph, node)
    sub: nx.MultiDiGraph = graph.subgraph(nodes).copy()
    query_node = add_compiled_query(sub, sql=sql, metrics=[metric_node], release=release)
    for dimension in dimensions:
        sub.add_edge(dimension, query_node, key=f"{GROUPS_BY}|slice", type=GROUPS_BY,
                     subtype=INDIRECT, transformation="group_by",
                     expr=str(sub.nodes[dimension].get("expr") or ""), src="query")  # fmt: skip
    run_node = add_compute_run(sub, run_id=run_id, compiled_query=query_node)
    add_stored_value(sub, value_id=value_id, run=run_node)
    return sub


def _source_columns(sub: nx.MultiDiGraph, value_node: str) -> tuple[dict[str, Any], ...]:
    """Warehouse columns above the value, DIRECT or INDIRECT as OpenLineage marks them, each
    with its shortest path down to the value and the expression at every hop."""
    facet = openlineage_column_lineage(sub, value_node)
    out = []
    for field_ in facet["fields"].values():
        for item in field_["inputFields"]:
            column = f"{item['name']}.{item['field']}"
            node = f"column:{column}"
            hops = [
                {"node": hop.node, "edge": hop.edge_type, "expr": hop.expr}
                for hop in path(sub, node, value_node)
            ]
            transformation = item["transformations"][0]
            out.append(
                {
                    "column": column,
                    "type": transformation["type"],
                    "subtype": transformation["subtype"],
                    "hops": hops,
                }
            )
    return tuple(out)


def _definitions(
    release: Release, manifest: Manifest, metric: str, parts: tuple[DrillDownPart, ...]
) -> tuple[dict[str, Any], ...]:
    """The metric's version and that of every input metric and semantic model it reads
    (models joined for the slice or filters included), with their specs."""
    metrics: list[str] = []
    pending = [metric]
    while pending:
        current = pending.pop(0)
        if current in metrics or current not in manifest.metrics:
            continue
        metrics.append(current)
        for kind, name, _ in metric_inputs(dict(manifest.metrics[current].spec)):
            if kind == "metric":
                pending.append(name)
    tables = {
        (t.db or "", t.name) for part in parts for t in part.select.find_all(exp.Table) if t.name
    }
    models = [
        m.name
        for m in manifest.semantic_models.values()
        if m.name in {p.semantic_model for p in parts}
        or (m.relation[1] or "", m.relation[2]) in tables
    ]
    wanted = {(Kind.METRIC, n) for n in metrics} | {(Kind.SEMANTIC_MODEL, n) for n in models}
    rows = ReleaseItem.objects.filter(
        release=release, definition__name__in=[n for _, n in wanted]
    ).values_list("definition__kind", "definition__name", "version__major", "version__minor",
                  "version__spec")  # fmt: skip
    found = {
        (kind, name): {"kind": kind, "name": name, "version": f"{major}.{minor}", "spec": spec}
        for kind, name, major, minor, spec in rows
        if (kind, name) in wanted
    }
    order = [(Kind.METRIC, n) for n in metrics] + [(Kind.SEMANTIC_MODEL, n) for n in models]
    return tuple(found[key] for key in order if key in found)


def _contracts(release: Release, sub: nx.MultiDiGraph) -> tuple[dict[str, Any], ...]:
    """Every contract declaring a table the value's lineage reads: name, ODCS version,
    registry version, and the tables."""
    names = sorted(
        n[len("contract:") :] for n, d in sub.nodes(data=True) if d.get("kind") == "contract"
    )
    tables: dict[str, set[str]] = {name: set() for name in names}
    for node, data in sub.nodes(data=True):
        if data.get("kind") == "contract_column":
            contract, table = node[len("contract_column:") :].split(".")[:2]
            if contract in tables:
                tables[contract].add(table)
    registry = dict(
        (name, f"{major}.{minor}")
        for name, major, minor in ReleaseItem.objects.filter(
            release=release, definition__kind=Kind.CONTRACT, definition__name__in=names
        ).values_list("definition__name", "version__major", "version__minor")
    )
    return tuple(
        {
            "name": name,
            "version": str(sub.nodes[f"contract:{name}"].get("version") or ""),
            "registry_version": registry.get(name, ""),
            "tables": sorted(tables[name]),
        }
        for name in names
    )
