"""The queries a compute run executes: the jobs floor's public API for whoever rebuilds them.

A run scans one warehouse query per *source group* (the metrics reading the same semantic
models) and *chunk* (a slice of its periods). Lineage rebuilds exactly those queries, for a
run's OpenLineage SQL facet and for tracing a stored value back to its SQL, so the compute
job and lineage must share these functions rather than copy them:

* ``run_chunks(run)``: the run's chunks, ``(first, last)`` day pairs, in order;
* ``run_load_filters(run)``: the where filters of an ``as_of`` replay (empty otherwise);
* ``metric_groups(manifest, metrics)``: the source groups;
* ``run_chunk_query(...)``: the MetricQuery of one group and chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from registry.models import Kind, Release, ReleaseItem
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import MetricQuery
from semantic.jobs.periods import chunks
from semantic.models import ComputeRun
from semantic.services import manifest_for_release


def metric_sources(manifest: Manifest, name: str) -> frozenset[str]:
    """Semantic models a metric reads (through ratio, derived and conversion inputs too)."""
    from semantic.compiler.drilldown import metric_measures

    return frozenset(m.semantic_model for m in metric_measures(manifest, name))


def metric_groups(manifest: Manifest, metrics: Iterable[str]) -> list[tuple[str, ...]]:
    """Metrics grouped by the set of semantic models they read: one warehouse query per group.

    Example (fixtures): ``events_tracked`` and ``daily_active_users`` both read ``events``,
    so they share a scan; ``revenue`` reads ``invoices`` and gets its own query.
    """
    groups: dict[frozenset[str], list[str]] = {}
    for name in sorted(set(metrics)):
        groups.setdefault(metric_sources(manifest, name), []).append(name)
    return [tuple(names) for _, names in sorted(groups.items(), key=lambda kv: sorted(kv[0]))]


def load_filters(*, release: Release, as_of: dt.date) -> dict[str, str]:
    """Semantic model → a where filter keeping rows loaded on or before ``as_of``, for every
    model whose contract names a load column (its freshness SLA element) that the model
    exposes as a time dimension."""
    from registry.definitions.contracts import contract_tables

    loaded: dict[str, str] = {}  # table -> load column
    specs = ReleaseItem.objects.filter(release=release, definition__kind=Kind.CONTRACT)
    for spec in specs.values_list("version__spec", flat=True):
        for sla in spec.get("slaProperties") or ():
            element = str(sla.get("element") or "")
            if sla.get("property") == "freshness" and "." in element:
                table, column = element.split(".", 1)
                if table in contract_tables(spec):
                    loaded[table.lower()] = column.lower()
    filters: dict[str, str] = {}
    for name, model in manifest_for_release(release).semantic_models.items():
        column = loaded.get(model.relation[2].lower())
        if not column or not model.primary_entity:
            continue
        for dim in model.dimensions.values():
            if dim.type == "time" and column in (dim.name.lower(), dim.expr.strip().lower()):
                filters[name] = (
                    f"{{{{ TimeDimension('{model.primary_entity}__{dim.name}', 'day') }}}}"
                    f" <= '{as_of.isoformat()}'"
                )
                break
    return filters


def run_chunk_query(
    *,
    run: ComputeRun,
    manifest: Manifest,
    group: tuple[str, ...],
    first: dt.date,
    last: dt.date,
    loads: dict[str, str],
    dialect: str,
) -> MetricQuery:
    """The query a run executes for one source group and chunk (value tracing rebuilds the
    run's SQL with it, so both must stay this one function)."""
    return MetricQuery(
        metrics=group,
        group_by=(f"metric_time__{run.grain}", *run.slices),
        where=tuple(loads[m] for m in sorted(metric_sources(manifest, group[0])) if m in loads),
        start_time=first.isoformat(),
        end_time=last.isoformat(),
        dialect=dialect,
    )


def run_chunks(run: ComputeRun) -> list[tuple[dt.date, dt.date]]:
    """The run's chunks (first and last day of each), in the order the run computes them."""
    return list(chunks(run.start, run.end, run.grain, run.timings.get("chunk_periods")))


def run_load_filters(run: ComputeRun) -> dict[str, str]:
    """The load filters of an ``as_of`` replay run (see load_filters); empty for other runs."""
    return load_filters(release=run.release, as_of=run.as_of) if run.as_of else {}
