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
from semantic.compiler.kinds.conversion_base import (
    BASE_VALUE,
    DISTINCT_SAFE,
    GROUPS_BY_JOIN_DIALECTS,
    matches_itself,
    with_base_groups,
)
from semantic.compiler.kinds.cumulative import WINDOW_DAYS
from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.manifest import Manifest, Measure
from semantic.compiler.nodes import append_join
from semantic.compiler.plan import Leaf
from semantic.compiler.resolve import GroupByItem, query_error
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import trunc

# Periods that bucket the window join, each with the fewest days one of its periods has.
BUCKET_GRAINS: tuple[tuple[str, int], ...] = (
    ("week", 7),
    ("month", 28),
    ("quarter", 90),
    ("year", 365),
)

# Engines where a generator in the select list (EXPLODE) fans a row out without a join.
GENERATOR_DIALECTS = frozenset({"spark", "databricks"})

MSG_UNKNOWN_PROPERTY = (
    "constant property {name!r} of conversion metric {metric!r} is not a dimension or entity "
    "of {model!r}"
)


def conversion_select(
    leaf: Leaf,
    items: list[GroupByItem],
    manifest: Manifest,
    query: MetricQuery,
    base_leaf: Leaf | None = None,
) -> exp.Select:
    """Conversions, MetricFlow's semantics: each conversion event (day grain) is credited to
    the latest base event of the same entity on or before it and inside the window; the
    conversion measure is then aggregated under that base event's group-by values.

    One ROW_NUMBER picks the base event per conversion row, where MetricFlow joins, tags rows
    with random UUIDs and deduplicates with FIRST_VALUE over every column. Base groups in
    which nothing converted (0 for a count) come from a second read of the base events
    (with_base_groups); on ClickHouse and Spark from the join itself, a LEFT JOIN of the base
    events. ``base_leaf`` (where ``conversion_base.fuses_base`` allows it): the base measure
    is aggregated over those base events too, as a column of its own.
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
        copy=False,
    )
    if base_leaf is not None:
        value = definition_expr(spec.base_measure.expr, base.alias)
        base_rows = base_rows.select(value.as_(BASE_VALUE, copy=False), copy=False)
    bucket = window_bucket(spec.window)
    if bucket:
        base_rows = base_rows.select(
            trunc(day(base, spec.base_measure), bucket).as_("window_bucket", copy=False),
            copy=False,
        )
    conditions = filter_conditions(
        tuple(query.where), base, spec.base_measure, "where"
    ) + filter_conditions(spec.base_filters, base, spec.base_measure, "filter")
    conditions += time_range(query, base, spec.base_measure, items)
    base_rows = base.from_clause(base_rows)
    for condition in conditions:
        base_rows = base_rows.where(condition, copy=False)

    conv_columns = [
        day(conv, leaf.measure).as_("conversion_day", copy=False),
        definition_expr(conv_model.entities[spec.entity].expr, conv.alias).as_(
            "entity_key", copy=False
        ),
        definition_expr(leaf.measure.expr, conv.alias).as_("conversion_value", copy=False),
        *[value.as_(f"property_{n}", copy=False) for n, (_, value) in enumerate(properties)],
    ]
    # Filters first: resolving their items registers the joins that from_clause then emits.
    conv_conditions = filter_conditions(leaf.filters, conv, leaf.measure, "filter")
    conv_rows = conv.from_clause(exp.select(*conv_columns, copy=False))
    for condition in conv_conditions:
        conv_rows = conv_rows.where(condition, copy=False)
    # Every base event is a conversion row of its own, so every base group is matched: rows
    # with a NULL value need not be read at all, and the groups come from the base events.
    self_matched = matches_itself(leaf)
    assert base_leaf is None or (self_matched and items), "conversion_base.fuses_base"
    if self_matched:
        # The expression, not its alias: PostgreSQL and MySQL resolve no alias in WHERE.
        value = definition_expr(leaf.measure.expr, conv.alias)
        conv_rows = conv_rows.where(is_not_null(value), copy=False)
    conv_rows = reduced_conversions(conv_rows, leaf.measure, len(properties))
    if bucket:
        conv_rows = bucketed_conversions(
            conv_rows, leaf.measure, len(properties), bucket, query.dialect
        )
    base_day = exp.column("base_day", table="base_events")
    conversion_day = exp.column("conversion_day", table="conversions")
    on = exp.and_(
        exp.EQ(
            this=exp.column("entity_key", table="base_events"),
            expression=exp.column("entity_key", table="conversions"),
        ),
        exp.LTE(this=base_day, expression=conversion_day),
        *(
            [
                exp.EQ(
                    this=exp.column("window_bucket", table="base_events"),
                    expression=exp.column("window_bucket", table="conversions"),
                )
            ]
            if bucket
            else []
        ),
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
        partition_by=[
            exp.column(k, table="conversions")
            for k in conversion_identity(leaf.measure, len(properties))
        ],
        order=exp.Order(expressions=[exp.Ordered(this=base_day.copy(), desc=True)]),
    )
    matched = exp.select(
        *[exp.column(item.column, table="base_events") for item in items],
        exp.column("conversion_value", table="conversions"),
        latest_first.as_("base_rank", copy=False),
        copy=False,
    )
    # ClickHouse and Spark: the base groups nothing converted in come from the join itself,
    # base events LEFT JOIN conversions (NULL values, which the aggregate skips), not from a
    # second scan of the base events joined back (with_base_groups): that scan was about half
    # of the gap to hand-written SQL in chdb (1M events, one thread: 1.34x -> 1.18x CPU), and
    # a tenth of Spark's CPU (activation_rate_7d_by_month, 1M events: 1.16x -> 1.05x).
    groups_by_join = bool(self_matched and items and query.dialect in GROUPS_BY_JOIN_DIALECTS)
    if groups_by_join:
        matched = matched.from_(base_rows.subquery("base_events", copy=False), copy=False)
        matched = append_join(
            matched, conv_rows.subquery("conversions", copy=False), on=on, side="LEFT"
        )
        if base_leaf is not None:
            matched = matched.select(exp.column(BASE_VALUE, table="base_events"), copy=False)
    else:
        matched = matched.from_(conv_rows.subquery("conversions", copy=False), copy=False)
        matched = append_join(
            matched, base_rows.subquery("base_events", copy=False), on=on, kind="INNER"
        )
    first: exp.Expr = exp.EQ(
        this=exp.column("base_rank", table="matched"), expression=exp.Literal.number(1)
    )
    converted: exp.Expr = exp.column("conversion_value", table="matched")
    if groups_by_join:
        # Every row of the LEFT JOIN stays: each base event is at least one of them, so
        # every base group is a group here, with the conversions it was the latest base
        # event for (a month whose base events were only ever an earlier base event of a
        # conversion counts 0, as MetricFlow and with_base_groups count it). Self-matched
        # conversion values are never NULL: NULL is a base event left unmatched.
        converted = exp.Case(ifs=[exp.If(this=first, true=converted)])
    select = exp.select(
        *[exp.column(item.column, table="matched") for item in items],
        aggregate(leaf.measure, converted).as_(leaf.alias, copy=False),
        copy=False,
    ).from_(matched.subquery("matched", copy=False), copy=False)
    if groups_by_join and base_leaf is not None:
        # A base event is a row once per conversion it matched: DISTINCT_SAFE measures only.
        value = aggregate(base_leaf.measure, exp.column(BASE_VALUE, table="matched"))
        select = select.select(value.as_(base_leaf.alias, copy=False), copy=False)
    if not groups_by_join:
        select = select.where(first, copy=False)
    if items:
        select = select.group_by(
            *[exp.Literal.number(i + 1) for i in range(len(items))], copy=False
        )
    if self_matched and items and not groups_by_join:
        select = with_base_groups(select, base_rows, items, leaf, base_leaf)
    return select


def is_not_null(value: exp.Expr) -> exp.Expr:
    """``value IS NOT NULL``, with a measure's ``CASE WHEN cond THEN x END`` written as
    ``cond AND x IS NOT NULL``: the same rows, but a condition on a plain column the warehouse
    applies while it scans (``event_type = 'report_created'`` skips most of an events table;
    a CASE around it is evaluated on every row).

    Example:
        >>> import sqlglot
        >>> is_not_null(sqlglot.parse_one("CASE WHEN t = 'a' THEN id END")).sql()
        "(t = 'a') AND NOT id IS NULL"
        >>> is_not_null(sqlglot.parse_one("CASE WHEN t = 'a' THEN 1 END")).sql()
        "(t = 'a')"
    """
    inner = value.unnest()
    ifs = inner.args.get("ifs") or []
    default = inner.args.get("default")
    if (
        isinstance(inner, exp.Case)
        and inner.this is None
        and len(ifs) == 1
        and (default is None or isinstance(default, exp.Null))
    ):
        # A NULL condition (cond unknown) gives NULL in the CASE and fails the WHERE: same.
        condition, then = ifs[0].this, ifs[0].args["true"]
        if isinstance(then, exp.Literal):
            return exp.paren(condition.copy(), copy=False)
        return exp.and_(
            exp.paren(condition.copy(), copy=False),
            exp.Not(this=exp.Is(this=then.copy(), expression=exp.Null())),
            copy=False,
        )
    return exp.Not(this=exp.Is(this=value, expression=exp.Null()))


def window_bucket(window: tuple[int, str] | None) -> str | None:
    """The grain whose periods bucket the join of conversions to base events, or None.

    The join matches on the entity and a range of days; where an entity has many events
    (an account's signups over years), the warehouse compares every pair of them and keeps
    the few inside the window. A window no longer than the shortest period of a grain (plus
    a day) puts a base event in the conversion's period or the one before it, so matching on
    either period as well makes it an equality join that compares only nearby events (the
    join took a third of the time on the demo warehouse). No window, or one longer than a
    year: None, the join on the entity alone.
    """
    if window is None:
        return None
    count, unit = window
    span = count * WINDOW_DAYS.get(unit, 366)
    # Two periods back, a base event is at least (shortest period + 1) days before the
    # conversion; inside the window it is at most span - 1 days before.
    return next((grain for grain, days in BUCKET_GRAINS if span <= days + 1), None)


def bucketed_conversions(
    rows: exp.Select, measure: Measure, properties: int, grain: str, dialect: str
) -> exp.Select:
    """Each reduced conversion row twice, with the period of ``grain`` containing its day and
    the period before (``window_bucket``): a base event inside the window is in exactly one
    of the two (see ``window_bucket``), so each pair still matches once.

    A CROSS JOIN to the two shifts, or on Spark ``EXPLODE`` of the two periods: Spark runs a
    cross join as a broadcast nested-loop join, a job of its own (bench sql_speed --engine
    spark: the conversion case ran 15 Spark jobs with it, 12 with the explode).
    """
    day = exp.column("conversion_day", table="conversion_keys")
    period = trunc(day, grain)
    before = trunc(
        exp.Sub(
            this=period.copy(),
            expression=exp.Interval(this=exp.Literal.string("1"), unit=exp.Var(this="DAY")),
        ),
        grain,
    )
    keys = [exp.column(k, table="conversion_keys") for k in conversion_keys(measure, properties)]
    source = rows.subquery("conversion_keys", copy=False)
    if dialect in GENERATOR_DIALECTS:
        both = exp.Explode(this=exp.Array(expressions=[period, before]))
        return exp.select(*keys, both.as_("window_bucket", copy=False), copy=False).from_(
            source, copy=False
        )
    shift = exp.column("shift", table="shifts")
    bucket = exp.Case(
        ifs=[exp.If(this=exp.EQ(this=shift, expression=exp.Literal.number(0)), true=period)],
        default=before,
    )
    shifts = exp.union(
        exp.select(exp.Literal.number(0).as_("shift", copy=False), copy=False),
        exp.select(exp.Literal.number(1).as_("shift", copy=False), copy=False),
        distinct=False,
        copy=False,
    )
    out = exp.select(*keys, bucket.as_("window_bucket", copy=False), copy=False).from_(
        source, copy=False
    )
    return out.join(shifts.subquery("shifts", copy=False), join_type="CROSS", copy=False)


def reduced_conversions(rows: exp.Select, measure: Measure, properties: int) -> exp.Select:
    """The conversion rows the match needs, fewer than read, each told apart by
    ``conversion_keys``.

    A conversion row whose value is NULL adds nothing to any aggregation; it only makes the
    group of the base event it matches appear (a count of 0 rather than no row). Rows that
    share entity, day and properties match the same base events, so one NULL row per
    (entity, day, properties) gives the same groups; for count_distinct, min and max every
    row can be kept once per distinct value as well. On event tables where most rows are not
    conversions (a CASE WHEN measure), this shrinks the window and join below by an order of
    magnitude, with the same rows out.
    """
    keys = conversion_keys(measure, properties)
    value = exp.column("conversion_value")
    if measure.agg in DISTINCT_SAFE:
        # Distinct rows are their own identity: no numbering (a ROW_NUMBER() OVER () is one
        # single-threaded pass over every row on DuckDB).
        distinct = exp.select(*[exp.column(k) for k in keys], copy=False).distinct(copy=False)
        return distinct.from_(rows.subquery("conversion_rows", copy=False), copy=False)
    keys = keys[:-1]  # conversion_id is numbered below
    found = exp.select(*[exp.column(k) for k in keys], copy=False).from_(
        rows.subquery("conversion_rows", copy=False), copy=False
    )
    found = found.where(exp.Not(this=exp.Is(this=value, expression=exp.Null())), copy=False)
    empty = exp.select(*[exp.column(k) for k in keys], copy=False).distinct(copy=False)
    empty = empty.from_(rows.copy().subquery("conversion_rows", copy=False), copy=False)
    empty = empty.where(exp.Is(this=value.copy(), expression=exp.Null()), copy=False)
    reduced = exp.union(found, empty, distinct=False, copy=False)
    return exp.select(
        exp.Window(this=exp.RowNumber()).as_("conversion_id", copy=False),
        *[exp.column(k) for k in keys],
        copy=False,
    ).from_(reduced.subquery("conversion_keys", copy=False), copy=False)


def conversion_keys(measure: Measure, properties: int) -> list[str]:
    """The columns of a reduced conversion row (see ``reduced_conversions``), ending with
    ``conversion_id`` when rows are not distinct."""
    keys = ["conversion_day", "entity_key", "conversion_value"]
    keys += [f"property_{n}" for n in range(properties)]
    return keys if measure.agg in DISTINCT_SAFE else [*keys, "conversion_id"]


def conversion_identity(measure: Measure, properties: int) -> list[str]:
    """The columns that tell one reduced conversion row from another."""
    if measure.agg in DISTINCT_SAFE:
        return conversion_keys(measure, properties)
    return ["conversion_id"]


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
