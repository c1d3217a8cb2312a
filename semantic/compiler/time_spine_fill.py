"""join_to_timespine: every time-spine period gets a row, with MetricFlow's row range.

The aggregation is LEFT JOINed onto the spine's periods at the grain of the query's time
item: ``metric_time``, or else the measure's own agg_time_dimension (``booking__ds__day``:
the same time, named after the model). Which spine periods appear follows MetricFlow
(``DataflowPlanBuilder._build_simple_metric_recipe``), and each rule is what the filter
means:

* a filter that reads only the agg time (``metric_time__day >= '2020-01-01'``, from the query
  or the metric's definition) also bounds the spine: a period the filter excludes is not a
  period of the answer, filled or not;
* a query filter on other items, all of them in the group-by (``booking__is_instant``), is
  applied again after the join: the spine's extra periods have NULL in those columns, which
  the filter does not accept (MetricFlow: "re-apply constraints");
* any other filter (on an item not grouped by, or a Metric()) stays inside the aggregation.
"""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.date_parts import date_part_expr
from semantic.compiler.entity_graph import local_entities
from semantic.compiler.grains import SUB_DAILY
from semantic.compiler.manifest import Manifest, Measure, SemanticModel
from semantic.compiler.plan import Leaf
from semantic.compiler.resolve import METRIC_TIME, GroupByItem
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import metric_time_item, spine_at, spine_join, spine_period
from semantic.compiler.where import parse_where, substitute
from semantic.compiler.where.refs import ParsedWhere, QueryItemRef


def join_to_time_spine(
    select: exp.Select,
    items: list[GroupByItem],
    leaves: list[Leaf],
    manifest: Manifest,
    query: MetricQuery,
    filters: tuple[str, ...] = (),
) -> exp.Select:
    """The aggregation ``select`` on every spine period of the query's time item (unchanged
    when the query groups by no agg time); ``filters`` are the leaves' own (definition)
    filters, ``query.where`` the query's."""
    measure = leaves[0].measure
    model = manifest.semantic_models[measure.semantic_model]
    time_item = metric_time_item(items) or agg_time_item(items, model, measure)
    if time_item is None or time_item.date_part:
        return select
    grain = time_item.grain or "day"
    grains = manifest.time_spine.custom_grain_names
    parsed = [
        parse_where(t, location=f"where[{i}]", custom_granularity_names=grains)
        for i, t in enumerate(query.where)
    ]
    own = [
        parse_where(t, location=f"filter[{i}]", custom_granularity_names=grains)
        for i, t in enumerate(filters)
    ]
    spine_where: tuple[exp.Expr, ...] = ()
    if grain not in SUB_DAILY:
        # Sub-daily spines have no day column to read a day filter against.
        day = exp.column(spine_at(manifest, grain)[1], table="spine")
        spine_where = tuple(
            substitute(p, {r.placeholder: spine_value(manifest, day, r) for r in p.refs})
            for p in (*parsed, *own)
            if p.refs and all(is_agg_time(r, model, measure) for r in p.refs)
        )
    joined = spine_join(
        select,
        items,
        leaves,
        manifest,
        query,
        time_item=time_item,
        target=exp.column("period", table="time_spine"),
        join_type="left",
        spine_where=spine_where,
    )
    for p in parsed:
        condition = regrouped(p, items, time_item, model, measure)
        if condition is not None:
            joined = joined.where(condition, copy=False)
    return joined


def agg_time_item(
    items: list[GroupByItem], model: SemanticModel, measure: Measure
) -> GroupByItem | None:
    """The group-by item that is the measure's agg_time_dimension read on its own model."""
    return next(
        (
            i
            for i in items
            if i.kind == "time"
            and i.element == measure.agg_time_dimension
            and len(i.entity_path) == 1
            and i.entity_path[0] in local_entities(model)
        ),
        None,
    )


def is_agg_time(ref: QueryItemRef, model: SemanticModel, measure: Measure) -> bool:
    """metric_time, or the measure's agg_time_dimension on its own model."""
    if ref.kind in ("metric", "entity"):
        return False
    if ref.name == METRIC_TIME:
        return not ref.entity_path
    return (
        ref.name == measure.agg_time_dimension
        and len(ref.entity_path) == 1
        and ref.entity_path[0] in local_entities(model)
    )


def spine_value(manifest: Manifest, day: exp.Expr, ref: QueryItemRef) -> exp.Expr:
    """An agg time item as the spine row gives it: its day at the item's grain or date part."""
    if ref.date_part:
        return date_part_expr(day.copy(), ref.date_part)
    return spine_period(manifest, day.copy(), ref.grain or "day", "spine")


def regrouped(
    parsed: ParsedWhere,
    items: list[GroupByItem],
    time_item: GroupByItem,
    model: SemanticModel,
    measure: Measure,
) -> exp.Expr | None:
    """A query filter re-applied after the spine join, over the output columns: one that
    reads something besides the agg time, every item of it grouped by; else None."""
    if not parsed.refs or all(is_agg_time(r, model, measure) for r in parsed.refs):
        return None
    columns: dict[str, exp.Expr] = {}
    for ref in parsed.refs:
        item = next((i for i in items if same_item(ref, i)), None)
        if item is None:
            return None
        table = "time_spine" if item is time_item else "agg"
        name = "period" if item is time_item else item.column
        columns[ref.placeholder] = exp.column(name, table=table)
    return substitute(parsed, columns)


def same_item(ref: QueryItemRef, item: GroupByItem) -> bool:
    """Whether a filter's item is the group-by item (same name, path, grain, date part)."""
    if ref.kind == "metric" or ref.name != item.element:
        return False
    if ref.name == METRIC_TIME:
        grain = None if ref.date_part else ref.grain or "day"
        return (item.grain, item.date_part) == (grain, ref.date_part)
    if tuple(ref.entity_path) != item.entity_path:
        return False
    if item.kind == "time":
        return (ref.grain or item.grain, ref.date_part) == (item.grain, item.date_part)
    return item.kind == ("entity" if ref.kind == "entity" else "dimension")
