"""Non-additive measures (semi-additive, e.g. balances): the value at the window's end.

Each group keeps only the rows at the first or last value of the non-additive dimension
(optionally per window-choice entity) before aggregating.
"""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.joins import Source
from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.manifest import Measure
from semantic.compiler.nodes import relation_table
from semantic.compiler.plan import Leaf
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, query_error
from semantic.compiler.time import trunc


def non_additive_tag(measure: Measure) -> str:
    spec = measure.non_additive or {}
    if not spec:
        return ""
    groupings = ",".join(spec.get("window_groupings") or ())
    return f"{spec.get('name')}:{spec.get('window_choice', 'min')}:{groupings}"


def non_additive_select(
    source: Source,
    items: list[GroupByItem],
    leaves: list[Leaf],
    conditions: list[exp.Expr],
    anchor: Measure,
) -> exp.Select:
    """A semi-additive measure (end-of-period MRR), MetricFlow's semantics: keep only the rows
    whose non-additive time dimension (at day grain) is the max (or min) within each window
    grouping (and each metric_time period when grouped by time), then aggregate. A window
    function does it in one pass instead of MetricFlow's self-join."""
    spec = anchor.non_additive or {}
    dim = source.model.dimensions.get(str(spec.get("name")))
    if dim is None:
        raise query_error(
            f"non-additive dimension {spec.get('name')!r} of {anchor.name!r} is not a dimension",
            code="unreachable_dimension",
            location="group_by",
        )
    day = trunc(definition_expr(dim.expr, source.alias), "day")
    partition = [
        source.item_expr(GroupByItem(g, "entity", g, (), None), anchor)
        for g in spec.get("window_groupings") or ()
    ]
    partition += [
        source.item_expr(i, anchor) for i in items if i.kind == "time" and i.element == METRIC_TIME
    ]
    choose = exp.Min if str(spec.get("window_choice", "min")).lower() == "min" else exp.Max
    limit = (
        exp.Window(this=choose(this=day.copy()), partition_by=partition)
        if partition
        else exp.Window(this=choose(this=day.copy()))
    )
    reads = {
        column.table
        for expression in (*conditions, *partition)
        for column in expression.find_all(exp.Column)
    }
    if reads <= {source.alias}:
        # The filters and the window read the measure's own table only: pick the rows
        # there, under the table's alias, and join dimension tables to the few rows kept.
        picked = exp.select(
            exp.Column(this=exp.Star(), table=exp.to_identifier(source.alias)),
            day.as_("tally_row_day", copy=False),
            limit.as_("tally_window_day", copy=False),
            copy=False,
        ).from_(relation_table(source.model.relation, source.alias), copy=False)
        for condition in conditions:
            picked = picked.where(condition, copy=False)
        outer = exp.select(
            *[source.item_expr(item, anchor).as_(item.column, copy=False) for item in items],
            *[
                aggregate(leaf.measure, definition_expr(leaf.measure.expr, source.alias)).as_(
                    leaf.alias, copy=False
                )
                for leaf in leaves
            ],
            copy=False,
        )
        outer = source.from_clause(outer, base=picked.subquery(source.alias, copy=False))
        return outer.where(
            exp.EQ(
                this=exp.column("tally_row_day", table=source.alias),
                expression=exp.column("tally_window_day", table=source.alias),
            ),
            copy=False,
        )
    inner = exp.select(
        *[source.item_expr(item, anchor).as_(item.column, copy=False) for item in items],
        *[
            definition_expr(leaf.measure.expr, source.alias).as_(f"value_{n}", copy=False)
            for n, leaf in enumerate(leaves)
        ],
        day.as_("row_day", copy=False),
        limit.as_("window_day", copy=False),
        copy=False,
    )
    inner = source.from_clause(inner)
    for condition in conditions:
        inner = inner.where(condition, copy=False)
    outer = exp.select(
        *[exp.column(item.column, table="measure_rows") for item in items],
        *[
            aggregate(leaf.measure, exp.column(f"value_{n}", table="measure_rows")).as_(
                leaf.alias, copy=False
            )
            for n, leaf in enumerate(leaves)
        ],
        copy=False,
    ).from_(inner.subquery("measure_rows", copy=False), copy=False)
    return outer.where(
        exp.EQ(
            this=exp.column("row_day", table="measure_rows"),
            expression=exp.column("window_day", table="measure_rows"),
        ),
        copy=False,
    )
