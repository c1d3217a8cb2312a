"""One metric query → one SELECT with its CTEs (the pipeline short of passes and rendering).

``query_select`` runs the stages in order: resolve the names (``resolve_items``), plan the
leaves and group them into aggregations (``plan_aggregations``: leaves that read the same
model under the same filters share one scan; ``fuse_conversion_bases``: a conversion's
aggregation can output its base measure too), build each aggregation with its metric kind
(``aggregation_select``), combine them and compute the metrics on top (``metrics_select``),
keep the rows its having items pass (``having_select``), then order and limit. Metric()
filters call back in here for their subqueries.
"""

from __future__ import annotations

import time
from dataclasses import replace

from sqlglot import exp

from semantic.compiler.combine import combine_ctes, order_limit
from semantic.compiler.date_parts import DATE_PART_GRAIN
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.entity_graph import PathError, resolve_path, suffix_path
from semantic.compiler.filters import filter_conditions, time_range
from semantic.compiler.grains import ALL_GRAINS
from semantic.compiler.having import having_select
from semantic.compiler.joins import Source
from semantic.compiler.kinds.conversion import conversion_select
from semantic.compiler.kinds.conversion_base import fuses_base
from semantic.compiler.kinds.cumulative import cumulative_select
from semantic.compiler.kinds.cumulative_time import (
    day_filter_column,
    split_day_conditions,
    time_items,
)
from semantic.compiler.kinds.derived import metric_value
from semantic.compiler.kinds.non_additive import non_additive_select, non_additive_tag
from semantic.compiler.kinds.offset import (
    joins_after_aggregation,
    offset_select,
    offset_time_items,
    require_time_item,
)
from semantic.compiler.kinds.offset_days import DAY_ITEM, has_time_filter, offset_days_select
from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import MSG_UNSUPPORTED, Leaf, base_leaf, leaves_of
from semantic.compiler.resolve import (
    METRIC_TIME,
    GroupByItem,
    check_query,
    output_order,
    parse_group_by,
    query_error,
)
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import metric_time_item, unbounded
from semantic.compiler.time_spine_fill import join_to_time_spine

# What makes two leaves share one aggregation: (model, agg time dimension, filters,
# join_to_timespine, cumulative tag, offset, non-additive tag, conversion tag).
GroupKey = tuple[str, str, tuple[str, ...], bool, str, str, str, str]


def query_select(
    query: MetricQuery, manifest: Manifest, timings: dict[str, float]
) -> tuple[exp.Select, list[str]]:
    """The query as one SELECT with its CTEs, and its group-by output columns; Metric()
    filter subqueries are left in the current ``FILTER_CTES`` for the caller to place."""
    started = time.perf_counter()
    items = resolve_items(query, manifest)
    timings["resolve"] = time.perf_counter() - started

    started = time.perf_counter()
    metric_leaves, groups = plan_aggregations(query, manifest)
    groups = fuse_conversion_bases(groups, items, query, manifest)
    timings["plan"] = time.perf_counter() - started

    started = time.perf_counter()
    keys = [item.column for item in items]
    ctes = [
        (f"agg_{index}_{key[0]}", aggregation_select(key, leaves, items, manifest, query))
        for index, (key, leaves) in enumerate(sorted(groups.items()))
    ]
    combined = metrics_select(ctes, keys, query, manifest, metric_leaves)
    result = order_limit(
        having_select(combined, query, items, manifest, metric_leaves),
        query,
        keys,
        manifest.time_spine.custom_grain_names,
    )
    timings["to_sql"] = time.perf_counter() - started
    return result, keys


def resolve_items(query: MetricQuery, manifest: Manifest) -> list[GroupByItem]:
    """The checked request's group-by items, in MetricFlow's output column order."""
    check_query(query, manifest)
    grains = manifest.time_spine.custom_grain_names
    items = [parse_group_by(g, f"group_by[{i}]", grains) for i, g in enumerate(query.group_by)]
    if any(is_bare_metric_time(item) for item in items):
        # MetricFlow reads a bare metric_time at the metrics' default grain and names the
        # column after it (metric_time__day; metric_time__month for monthly data).
        grain = default_grain(query, manifest)
        items = [
            replace(item, text=f"{METRIC_TIME}__{grain}", grain=grain)
            if is_bare_metric_time(item)
            else item
            for item in items
        ]
    items = [
        with_time_grain(with_whole_path(item, query, manifest), query, manifest) for item in items
    ]
    return sorted(items, key=output_order)


def with_whole_path(item: GroupByItem, query: MetricQuery, manifest: Manifest) -> GroupByItem:
    """An item named by the end of its entity path (``user__last_login_ts`` from bookings,
    which reaches users through listing) as MetricFlow names its column: by the whole path,
    ``listing__user__last_login_ts``. Renamed only when every metric model that reaches the
    item reaches it through that same whole path (entity_graph's suffix rule); otherwise each
    model resolves the item as written and the column keeps the name asked for."""
    if not item.entity_path:
        return item
    wholes: set[tuple[str, ...] | None] = set()
    for name in query.metrics:
        for leaf in leaves_of(manifest.metrics[name], manifest, (), ()):
            model = manifest.semantic_models[leaf.measure.semantic_model]
            chain = resolve_path(manifest, model, item.entity_path, item.element)
            if not isinstance(chain, PathError):
                wholes.add(suffix_path(chain, item.entity_path))
    whole = wholes.pop() if len(wholes) == 1 else None
    if whole is None:
        return item
    asked = "__".join(item.entity_path)
    return replace(item, text="__".join(whole) + item.text[len(asked) :], entity_path=whole)


def with_time_grain(item: GroupByItem, query: MetricQuery, manifest: Manifest) -> GroupByItem:
    """A bare time dimension (``booking__paid_at``) as MetricFlow reads and names it: at its
    own data grain, ``booking__paid_at__day``; any other item unchanged. The dimension is
    found as the compiler will join it, from the first model of the query's metrics that
    reaches it (an item no model reaches is left for the join stage to refuse)."""
    if item.kind != "dimension" or not item.entity_path:
        return item
    for name in query.metrics:
        for leaf in leaves_of(manifest.metrics[name], manifest, (), ()):
            model = manifest.semantic_models[leaf.measure.semantic_model]
            path = resolve_path(manifest, model, item.entity_path, item.element)
            if isinstance(path, PathError):
                continue
            target = path[-1].model if path else model
            dim = target.dimensions.get(item.element)
            if dim is None or dim.type != "time":
                return item
            grain = dim.grain or "day"
            return replace(item, text=f"{item.text}__{grain}", kind="time", grain=grain)
    return item


def is_bare_metric_time(item: GroupByItem) -> bool:
    return (
        item.element == METRIC_TIME and item.kind == "time" and not (item.grain or item.date_part)
    )


def default_grain(query: MetricQuery, manifest: Manifest) -> str:
    """metric_time's grain when none is asked for, as MetricFlow picks it: the coarsest of the
    requested metrics' defaults. A metric's default is its own ``time_granularity`` when it
    sets one (an input metric's setting is ignored, as in MetricFlow), else the coarsest data
    grain among the agg_time_dimensions it reads, but never finer than a day."""
    return max(
        (metric_default_grain(name, manifest) for name in query.metrics),
        key=ALL_GRAINS.index,
        default="day",
    )


def metric_default_grain(name: str, manifest: Manifest) -> str:
    metric = manifest.metrics[name]
    own = str(metric.spec.get("time_granularity") or "").lower()
    if own in ALL_GRAINS:
        return own
    found = "day"
    for leaf in leaves_of(metric, manifest, (), ()):
        model = manifest.semantic_models[leaf.measure.semantic_model]
        dim = model.dimensions.get(leaf.measure.agg_time_dimension)
        grain = dim.grain if dim is not None and dim.grain in ALL_GRAINS else "day"
        found = max(found, grain, key=ALL_GRAINS.index)
    return found


def plan_aggregations(
    query: MetricQuery, manifest: Manifest
) -> tuple[dict[str, list[Leaf]], dict[GroupKey, list[Leaf]]]:
    """Each metric's leaves, and the leaves grouped into aggregations (one scan each)."""
    metric_leaves: dict[str, list[Leaf]] = {}
    # One aggregation per (model, agg time dimension, filters): measures that share all three
    # share a scan; a different agg_time_dimension means a different metric_time column.
    groups: dict[GroupKey, list[Leaf]] = {}
    for name in query.metrics:
        leaves = leaves_of(manifest.metrics[name], manifest, (), ())
        metric_leaves[name] = leaves
        for leaf in leaves:
            bucket = groups.setdefault(group_key(leaf), [])
            if leaf.alias not in {other.alias for other in bucket}:
                bucket.append(leaf)
    return metric_leaves, groups


def group_key(leaf: Leaf) -> GroupKey:
    return (
        leaf.measure.semantic_model,
        leaf.measure.agg_time_dimension,
        tuple(sorted(set(leaf.filters))),
        leaf.join_to_timespine,
        leaf.cumulative.tag if leaf.cumulative else "",
        " ".join(leaf.offset) if leaf.offset else "",
        non_additive_tag(leaf.measure),
        leaf.conversion.tag if leaf.conversion else "",
    )


def fuse_conversion_bases(
    groups: dict[GroupKey, list[Leaf]],
    items: list[GroupByItem],
    query: MetricQuery,
    manifest: Manifest,
) -> dict[GroupKey, list[Leaf]]:
    """The aggregations, with a conversion's base measure moved into the conversion's own
    aggregation (its second leaf) where that reads the same base events and groups
    (``conversion_base.fuses_base``) and the base is an aggregation of its own, read by
    nothing else: one read of the base events and one aggregation fewer to merge (Spark,
    activation_rate_7d_by_month: the stages of the hand-written SQL). The column keeps the
    base leaf's alias, so every metric reading it reads it from the fused aggregation."""
    # Without metric_time, the base aggregation widens the time range to the query's default
    # grain, the conversion's base events to days (filters.time_range): not the same rows.
    ranged = bool(query.start_time or query.end_time) and metric_time_item(items) is None
    if ranged and default_grain(query, manifest) != "day":
        return groups
    fused = dict(groups)
    for key, leaves in groups.items():
        converted = leaves[0]
        if converted.conversion is None or len(leaves) != 1:
            continue
        base = base_leaf(converted)
        base_key = group_key(base)
        alone = [leaf.alias for leaf in fused.get(base_key, ())] == [base.alias]
        if alone and fuses_base(converted, base, items, query.dialect):
            del fused[base_key]
            fused[key] = [converted, base]
    return fused


def aggregation_select(
    key: GroupKey,
    leaves: list[Leaf],
    items: list[GroupByItem],
    manifest: Manifest,
    query: MetricQuery,
) -> exp.Select:
    """One aggregation's SELECT (a CTE of the query), built by its metric kind."""
    model_name, _, filters, spine, cumulative, offset, _na, conv = key
    time_item = metric_time_item(items)
    if time_item is not None and time_item.date_part and (spine or cumulative):
        raise query_error(
            f"{time_item.text!r} cannot group a metric read against the time spine "
            "(cumulative, offset or join_to_timespine)",
            code="unsupported_date_part",
            location="group_by",
            hint=f"group by metric_time at a grain instead, e.g. "
            f"metric_time__{DATE_PART_GRAIN[time_item.date_part]}",
        )
    model = manifest.semantic_models[model_name]
    source = Source(model, manifest, leaves[0].measure.name, leaves[0].measure.agg_time_dimension)
    anchor = leaves[0].measure
    shifted: list[GroupByItem] = []
    shift = leaves[0].offset
    if shift is not None:
        shifted = offset_time_items(items, source, anchor)
        require_time_item(shifted)
        if conv and not joins_after_aggregation(shifted, shift):
            raise query_error(
                MSG_UNSUPPORTED.format(
                    what="an offset of a conversion metric by "
                    + ", ".join(repr(i.text) for i in shifted)
                ),
                code="unsupported_metric",
                location="group_by",
                hint="group by one metric_time grain no coarser than the offset's",
            )
    if conv:
        # Conversions read base and conversion events themselves; the group-by items and
        # the query's where belong to the base events, which the conversion events' model
        # need not reach (MetricFlow's semantics).
        select = conversion_select(leaves[0], items, manifest, query, *leaves[1:])
        if offset:
            select = offset_select(select, items, leaves, manifest, query, shifted[0])
        return select
    if (
        shift is not None
        and not cumulative
        and not (joins_after_aggregation(shifted, shift) and not has_time_filter(query, manifest))
    ):
        # A where on metric_time selects report days: only this join tells them apart.
        return offset_days_select(source, items, shifted, leaves, filters, manifest, query)
    spec = leaves[0].cumulative
    if (
        spec
        and not spec.window
        and not spec.grain_to_date
        and not time_items(items, source, anchor)
    ):
        # All-time without metric_time is the total over every row, as in MetricFlow: a
        # plain aggregation (also what a Metric() filter on it groups by entity).
        cumulative = ""
    if cumulative:
        # Before anything reads the scan's columns: a group-by or filter item on metric_time
        # would add joins (a custom grain's spine) that the spine days make needless. The
        # filters' metric_time items keep spine days, after the window join (MetricFlow).
        bind = day_filter_column(items, source, anchor, manifest)
        conditions, day_conditions = split_day_conditions(
            filter_conditions(tuple(query.where), source, anchor, "where", day_column=bind)
            + filter_conditions(filters, source, anchor, "filter", day_column=bind),
            leaves[0].measure.name,
        )
        if offset and day_conditions:
            # The days would be kept before the shift, i.e. the wrong days (MetricFlow
            # re-applies such filters on both sides of the offset).
            raise query_error(
                f"a filter on metric_time of an offset of cumulative metric "
                f"{leaves[0].measure.name!r} is not supported",
                code="unsupported_filter",
                location="where",
                hint="use start_time/end_time for the days to show",
            )
        if shift is not None and not joins_after_aggregation(shifted, shift):
            # The cumulative value of each day, then read on the days the offset points at.
            others = [item for item in items if not any(item is t for t in shifted)]
            daily = cumulative_select(
                source, [*others, DAY_ITEM], leaves, conditions, manifest, unbounded(query), anchor
            )
            return offset_days_select(
                source, items, shifted, leaves, filters, manifest, query, daily=daily
            )
        select = cumulative_select(
            source,
            items,
            leaves,
            conditions,
            manifest,
            query if not offset else unbounded(query),
            anchor,
            day_conditions,
        )
        if spine:
            select = join_to_time_spine(select, items, leaves, manifest, query)
        if offset:
            select = offset_select(select, items, leaves, manifest, query, shifted[0])
        return select
    select = exp.select(
        *[source.item_expr(item, anchor).as_(item.column, copy=False) for item in items], copy=False
    )
    for leaf in leaves:
        value = definition_expr(leaf.measure.expr, source.alias)
        select = select.select(
            aggregate(leaf.measure, value).as_(leaf.alias, copy=False), copy=False
        )
    conditions = filter_conditions(tuple(query.where), source, anchor, "where") + filter_conditions(
        filters, source, anchor, "filter"
    )
    if not offset:
        # An offset input reads periods before the range; the range applies after shifting.
        conditions += time_range(query, source, anchor, items, default_grain(query, manifest))
    if anchor.non_additive:
        select = non_additive_select(source, items, leaves, conditions, anchor)
    else:
        select = source.from_clause(select)
        for condition in conditions:
            select = select.where(condition, copy=False)
    if items:
        select = select.group_by(
            *[exp.Literal.number(i + 1) for i in range(len(items))], copy=False
        )
    if spine:
        select = join_to_time_spine(select, items, leaves, manifest, query, filters)
    if offset:
        select = offset_select(select, items, leaves, manifest, query, shifted[0])
    return select


def metrics_select(
    ctes: list[tuple[str, exp.Select]],
    keys: list[str],
    query: MetricQuery,
    manifest: Manifest,
    metric_leaves: dict[str, list[Leaf]],
) -> exp.Select:
    """The aggregations combined on their keys, each metric computed on top, under WITH."""
    final = combine_ctes(ctes, keys, query.dialect)
    outputs: list[exp.Expr] = [exp.column(k, table="combined") for k in keys]
    for name in query.metrics:
        outputs.append(
            metric_value(manifest.metrics[name], manifest, metric_leaves).as_(name, copy=False)
        )
    result = exp.select(*outputs, copy=False).from_(final, copy=False)
    if ctes:
        result.set(
            "with_",
            exp.With(
                expressions=[
                    exp.CTE(this=cte, alias=exp.TableAlias(this=exp.to_identifier(name)))
                    for name, cte in ctes
                ]
            ),
        )
    return result
