"""Conversion metrics: base events, and conversion events of the same entity within a window.

Builds the base-events scan and the conversions scan (joined on the entity, the window and
any constant properties) as one aggregation, MetricFlow's semantics.
"""

from __future__ import annotations

from sqlglot import exp

from registry.definitions.issues import did_you_mean
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.filters import filter_conditions, time_range
from semantic.compiler.joins import Source
from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.manifest import Manifest, Measure
from semantic.compiler.nodes import append_join
from semantic.compiler.plan import Leaf
from semantic.compiler.resolve import GroupByItem, query_error
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import trunc

MSG_UNKNOWN_PROPERTY = (
    "constant property {name!r} of conversion metric {metric!r} is not a dimension or entity "
    "of {model!r}"
)


def conversion_select(
    leaf: Leaf, items: list[GroupByItem], manifest: Manifest, query: MetricQuery
) -> exp.Select:
    """Conversions, MetricFlow's semantics: each conversion event (day grain) is credited to
    the latest base event of the same entity on or before it and inside the window; the
    conversion measure is then aggregated under that base event's group-by values.

    One ROW_NUMBER picks the base event per conversion row, where MetricFlow joins, tags rows
    with random UUIDs and deduplicates with FIRST_VALUE over every column.
    """
    spec = leaf.conversion
    assert spec is not None
    base_model = manifest.semantic_models[spec.base_measure.semantic_model]
    conv_model = manifest.semantic_models[leaf.measure.semantic_model]
    base = Source(
        base_model, manifest, spec.base_measure.name, spec.base_measure.agg_time_dimension
    )
    conv = Source(conv_model, manifest, leaf.measure.name, leaf.measure.agg_time_dimension)
    for model in (base_model, conv_model):
        if spec.entity not in model.entities:
            raise query_error(
                f"conversion entity {spec.entity!r} is not an entity of {model.name!r}",
                code="unreachable_dimension",
                location="metrics",
            )

    def day(source: Source, measure: Measure) -> exp.Expr:
        dim = source.model.dimensions[measure.agg_time_dimension]
        return trunc(definition_expr(dim.expr, source.alias), "day")

    # Constant properties (MetricFlow: an extra equality per pair in the join of base and
    # conversion events); each is a local dimension or entity of its own model.
    properties = [
        (
            property_expr(base, base_property, spec.metric),
            property_expr(conv, conversion_property, spec.metric),
        )
        for base_property, conversion_property in spec.constant_properties
    ]
    base_rows = exp.select(
        day(base, spec.base_measure).as_("base_day", copy=False),
        definition_expr(base_model.entities[spec.entity].expr, base.alias).as_(
            "entity_key", copy=False
        ),
        *[base.item_expr(item, spec.base_measure).as_(item.column, copy=False) for item in items],
        *[value.as_(f"property_{n}", copy=False) for n, (value, _) in enumerate(properties)],
    )
    conditions = filter_conditions(
        tuple(query.where), base, spec.base_measure, "where"
    ) + filter_conditions(spec.base_filters, base, spec.base_measure, "filter")
    conditions += time_range(query, base, spec.base_measure, items)
    base_rows = base.from_clause(base_rows)
    for condition in conditions:
        base_rows = base_rows.where(condition, copy=False)

    conv_rows = exp.select(
        exp.Window(this=exp.RowNumber()).as_("conversion_id", copy=False),
        day(conv, leaf.measure).as_("conversion_day", copy=False),
        definition_expr(conv_model.entities[spec.entity].expr, conv.alias).as_(
            "entity_key", copy=False
        ),
        definition_expr(leaf.measure.expr, conv.alias).as_("conversion_value", copy=False),
        *[value.as_(f"property_{n}", copy=False) for n, (_, value) in enumerate(properties)],
    )
    # Filters first: resolving their items registers the joins that from_clause then emits.
    conv_conditions = filter_conditions(leaf.filters, conv, leaf.measure, "filter")
    conv_rows = conv.from_clause(conv_rows)
    for condition in conv_conditions:
        conv_rows = conv_rows.where(condition, copy=False)

    base_day = exp.column("base_day", table="base_events")
    conversion_day = exp.column("conversion_day", table="conversions")
    on = exp.and_(
        exp.EQ(
            this=exp.column("entity_key", table="base_events"),
            expression=exp.column("entity_key", table="conversions"),
        ),
        exp.LTE(this=base_day, expression=conversion_day),
        *[
            # Plain equality, as in MetricFlow: a NULL property never matches.
            exp.EQ(
                this=exp.column(f"property_{n}", table="base_events"),
                expression=exp.column(f"property_{n}", table="conversions"),
            )
            for n in range(len(properties))
        ],
    )
    if spec.window:
        count, unit = spec.window
        earliest = exp.Sub(
            this=conversion_day.copy(),
            expression=exp.Interval(
                this=exp.Literal.string(str(count)), unit=exp.Var(this=unit.upper())
            ),
        )
        on = exp.and_(on, exp.GT(this=base_day.copy(), expression=earliest))
    latest_first = exp.Window(
        this=exp.RowNumber(),
        partition_by=[exp.column("conversion_id", table="conversions")],
        order=exp.Order(expressions=[exp.Ordered(this=base_day.copy(), desc=True)]),
    )
    matched = exp.select(
        *[exp.column(item.column, table="base_events") for item in items],
        exp.column("conversion_value", table="conversions"),
        latest_first.as_("base_rank", copy=False),
    ).from_(conv_rows.subquery("conversions", copy=False), copy=False)
    matched = append_join(
        matched, base_rows.subquery("base_events", copy=False), on=on, kind="INNER"
    )
    select = exp.select(
        *[exp.column(item.column, table="matched") for item in items],
        aggregate(leaf.measure, exp.column("conversion_value", table="matched")).as_(
            leaf.alias, copy=False
        ),
    ).from_(matched.subquery("matched", copy=False), copy=False)
    select = select.where(
        exp.EQ(this=exp.column("base_rank", table="matched"), expression=exp.Literal.number(1)),
        copy=False,
    )
    if items:
        select = select.group_by(
            *[exp.Literal.number(i + 1) for i in range(len(items))], copy=False
        )
    return select


def property_expr(source: Source, name: str, metric: str) -> exp.Expr:
    """A conversion constant property: a local dimension (a time dimension at its own grain,
    as MetricFlow resolves it) or entity of the source's model."""
    model = source.model
    dim = model.dimensions.get(name)
    if dim is not None:
        value = definition_expr(dim.expr, source.alias)
        return trunc(value, dim.grain or "day") if dim.type == "time" else value
    if name in model.entities:
        return definition_expr(model.entities[name].expr, source.alias)
    raise query_error(
        MSG_UNKNOWN_PROPERTY.format(name=name, metric=metric, model=model.name),
        code="unknown_dimension",
        location=f"metric {metric}" if metric else "metrics",
        hint=did_you_mean(name, [*model.dimensions, *model.entities]),
    )
