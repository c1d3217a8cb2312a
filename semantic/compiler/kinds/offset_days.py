"""Offset inputs joined to the time spine before aggregation, at the day grain.

What MetricFlow does when the offset join cannot follow aggregation (see ``offset``): each
spine day (the *report* day) reads the input's rows of its *source* day — the day
``offset_window`` before it, the first day of its ``offset_to_grain`` period, or for a
custom-grain window (``1 fiscal_quarter``) the day at the same position in the custom period
before — and the rows are then aggregated by the requested periods of the report day:
truncations, date parts, custom grains. Aggregating rows (not pre-aggregated values) keeps
every aggregation right, count distinct and percentiles included.

Except for a window of months, quarters or years, where MetricFlow's mapping is not one to
one (by year, 29, 30 and 31 March 2020 all read 29 February; 30 and 31 January are read by
no day): there each input day moves forward to its report day instead (``forward_pairs``),
so every day is counted once. Day and week windows give the same pairs either way.

With ``offset_to_grain`` each requested period reads its first day only (MetricFlow: "one
row per granularity period requested"), so by week, ``bookings_at_start_of_month`` is the
bookings of the first day of the month of the week's Monday.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from semantic.compiler.date_parts import date_part_expr
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.filters import filter_conditions
from semantic.compiler.grains import GRAINS, SUB_DAILY
from semantic.compiler.joins import Source
from semantic.compiler.kinds.offset import offset_grain
from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.manifest import Manifest, Measure
from semantic.compiler.nodes import INT, append_join, relation_table
from semantic.compiler.plan import MSG_UNSUPPORTED, Leaf
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, query_error
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import spine_day_range, trunc

# Columns of the day mapping (report day, source day) and of the input's rows.
PERIOD = "period"
SOURCE_DAY = "source_day"
ROW_DAY = "metric_time__day"
# What a daily input is grouped by in place of the query's time items.
DAY_ITEM = GroupByItem(ROW_DAY, "time", METRIC_TIME, (), "day")
# Windows of these grains move input days forward (``forward_pairs``), not report days back.
FORWARD_GRAINS = ("month", "quarter", "year")


def offset_days_select(
    source: Source,
    items: list[GroupByItem],
    time_items: list[GroupByItem],
    leaves: list[Leaf],
    filters: tuple[str, ...],
    manifest: Manifest,
    query: MetricQuery,
    daily: exp.Select | None = None,
) -> exp.Select:
    """The input's rows joined to (report day, source day) pairs on the source day, and
    aggregated by the report day's periods and the other group-by items. The query's where
    and the input's filters select rows; its time range selects report days.

    ``daily``: the input already computed per day (a cumulative metric's daily values, by
    the other items and ``ROW_DAY``), for an ``offset_to_grain``, where each group reads one
    day: the group's first day, a start of one of its periods."""
    offset = leaves[0].offset
    assert offset is not None
    anchor = leaves[0].measure
    check_shape(time_items, offset, anchor)
    if daily is not None and offset[0] != "to_grain":
        raise query_error(
            MSG_UNSUPPORTED.format(
                what="an offset_window of a cumulative metric by "
                + ", ".join(repr(i.text) for i in time_items)
            ),
            code="unsupported_metric",
            location="group_by",
            hint=f"group by one metric_time grain no coarser than {offset_grain(offset)}",
        )
    others = [item for item in items if not any(item is t for t in time_items)]
    on_rows, on_days = split_time_filters(query, manifest)
    rows = daily
    if rows is None:
        rows = input_rows(source, others, leaves, filters, replace(query, where=on_rows))

    customs = sorted({i.grain for i in time_items if i.grain and i.grain not in GRAINS})
    days = day_pairs(manifest, offset, customs)
    period = exp.column(PERIOD, table="time_spine")
    outputs: list[exp.Expr] = []
    for item in items:
        if any(item is t for t in time_items):
            outputs.append(report_period(item, period).as_(item.column, copy=False))
        else:
            outputs.append(exp.column(item.column, table="agg").as_(item.column, copy=False))
    for leaf in leaves:
        column = exp.column(leaf.alias, table="agg")
        # One daily value per group (see above): MAX reads it whatever the aggregation.
        value = aggregate(leaf.measure, column) if daily is None else exp.Max(this=column)
        outputs.append(value.as_(leaf.alias, copy=False))
    select = append_join(
        exp.select(*outputs, copy=False).from_(days.subquery("time_spine", copy=False), copy=False),
        rows.subquery("agg", copy=False),
        on=exp.EQ(
            this=exp.column(SOURCE_DAY, table="time_spine"),
            expression=exp.column(ROW_DAY, table="agg"),
        ),
        kind="INNER",
    )
    grain = next((i.grain for i in time_items if i.grain in GRAINS), "day")
    for bound in spine_day_range(period, query, grain or "day"):
        select = select.where(bound, copy=False)
    for condition in on_days:
        select = select.where(condition, copy=False)
    if offset[0] == "to_grain" and not any(i.grain == "day" for i in time_items):
        starts = [exp.EQ(this=trunc(period.copy(), str(i.grain)), expression=period.copy())
                  for i in time_items]  # fmt: skip
        select = select.where(exp.or_(*starts, copy=False), copy=False)
    if items:
        select = select.group_by(
            *[exp.Literal.number(i + 1) for i in range(len(items))], copy=False
        )
    return select


def split_time_filters(
    query: MetricQuery, manifest: Manifest
) -> tuple[tuple[str, ...], list[exp.Expr]]:
    """The query's where filters on rows, and those that read metric_time alone (at a
    standard grain or a date part) as conditions on the report day: a where on metric_time
    selects the periods shown, as MetricFlow applies it to the time spine."""
    from semantic.compiler.where import parse_where, substitute

    on_rows: list[str] = []
    on_days: list[exp.Expr] = []
    period = exp.column(PERIOD, table="time_spine")
    for index, template in enumerate(query.where):
        parsed = parse_where(
            template,
            location=f"where[{index}]",
            custom_granularity_names=manifest.time_spine.custom_grain_names,
        )
        if not parsed.refs or not all(
            ref.name == METRIC_TIME
            and not ref.entity_path
            and ref.kind in ("dimension", "time_dimension")
            and (ref.date_part or (ref.grain or "day") in GRAINS)
            for ref in parsed.refs
        ):
            on_rows.append(template)
            continue
        columns = {
            ref.placeholder: report_period(
                GroupByItem(ref.text, "time", METRIC_TIME, (), ref.grain, ref.date_part), period
            )
            for ref in parsed.refs
        }
        on_days.append(substitute(parsed, columns))
    return tuple(on_rows), on_days


def has_time_filter(query: MetricQuery, manifest: Manifest) -> bool:
    return bool(split_time_filters(query, manifest)[1])


def input_rows(
    source: Source,
    others: list[GroupByItem],
    leaves: list[Leaf],
    filters: tuple[str, ...],
    query: MetricQuery,
) -> exp.Select:
    """The input's rows (not aggregated): the other items, the day, each measure's value."""
    anchor = leaves[0].measure
    dim = source.model.dimensions[anchor.agg_time_dimension]
    rows = exp.select(
        *[source.item_expr(item, anchor).as_(item.column, copy=False) for item in others],
        trunc(definition_expr(dim.expr, source.alias), "day").as_(ROW_DAY, copy=False),
        copy=False,
    )
    for leaf in leaves:
        value = definition_expr(leaf.measure.expr, source.alias)
        rows = rows.select(value.as_(leaf.alias, copy=False), copy=False)
    conditions = filter_conditions(tuple(query.where), source, anchor, "where")
    conditions += filter_conditions(filters, source, anchor, "filter")
    rows = source.from_clause(rows)
    for condition in conditions:
        rows = rows.where(condition, copy=False)
    return rows


def check_shape(time_items: list[GroupByItem], offset: tuple[str, str], anchor: Measure) -> None:
    """Refuses what this join would not get right (a refusal, never a wrong number)."""
    if anchor.non_additive:
        raise query_error(
            MSG_UNSUPPORTED.format(
                what=f"an offset of the semi-additive measure {anchor.name!r} at a grain "
                "coarser than the offset"
            ),
            code="unsupported_metric",
            location="group_by",
            hint=f"group by metric_time__{offset_grain(offset)} or finer",
        )
    if offset_grain(offset) in SUB_DAILY:
        raise query_error(
            MSG_UNSUPPORTED.format(
                what=f"an offset of {offset[1]!r} by " + ", ".join(repr(i.text) for i in time_items)
            ),
            code="unsupported_metric",
            location="group_by",
            hint=f"group by one metric_time grain no coarser than {offset_grain(offset)}",
        )
    for item in time_items:
        if item.grain in SUB_DAILY:
            raise query_error(
                MSG_UNSUPPORTED.format(what=f"an offset metric by {item.text!r}"),
                code="unsupported_metric",
                location="group_by",
                hint="offsets read days: group by metric_time__day or coarser",
            )
        if offset[0] == "to_grain" and (item.date_part or item.grain not in GRAINS):
            raise query_error(
                MSG_UNSUPPORTED.format(
                    what=f"offset_to_grain with {item.text!r} (a date part or custom grain)"
                ),
                code="unsupported_metric",
                location="group_by",
                hint="group an offset_to_grain metric by metric_time at day … year",
            )


def report_period(item: GroupByItem, day: exp.Expr) -> exp.Expr:
    """The requested period (or date part) of the report day."""
    if item.date_part:
        return date_part_expr(day.copy(), item.date_part)
    if item.grain and item.grain not in GRAINS:
        return exp.column(custom_alias(item.grain), table="time_spine")
    if item.grain in (None, "day"):
        return day.copy()
    return trunc(day.copy(), item.grain)


def custom_alias(grain: str) -> str:
    return f"grain__{grain}"


def day_pairs(manifest: Manifest, offset: tuple[str, str], customs: list[str]) -> exp.Select:
    """(period = report day, source_day, the report day's custom-grain columns): one row per
    spine day that has a source day."""
    spine = manifest.time_spine
    grain = offset_grain(offset)
    if offset[0] == "window" and grain in FORWARD_GRAINS:
        pairs = forward_pairs(manifest, offset)
    elif spine.custom_column(grain) is None or offset[0] != "window":
        day = exp.column(spine.column, table="spine")
        if offset[0] == "window":
            count = offset[1].split()[0]
            interval = exp.Interval(
                this=exp.Literal.string(count), unit=exp.Var(this=grain.upper())
            )
            source_day: exp.Expr = exp.Sub(this=day.copy(), expression=interval)
        else:
            source_day = trunc(day.copy(), grain)
        return exp.select(
            day.as_(PERIOD, copy=False),
            source_day.as_(SOURCE_DAY, copy=False),
            *custom_columns(manifest, customs, "spine"),
            copy=False,
        ).from_(relation_table(spine.relation, "spine"), copy=False)
    else:
        pairs = custom_window_pairs(manifest, grain, int(offset[1].split()[0]))
    select = exp.select(
        exp.column(PERIOD, table="pairs"),
        exp.column(SOURCE_DAY, table="pairs"),
        *custom_columns(manifest, customs, "report"),
        copy=False,
    ).from_(pairs.subquery("pairs", copy=False), copy=False)
    if customs:
        select = append_join(
            select,
            relation_table(spine.relation, "report"),
            on=exp.EQ(
                this=exp.column(spine.column, table="report"),
                expression=exp.column(PERIOD, table="pairs"),
            ),
            side="LEFT",
        )
    return select


def forward_pairs(manifest: Manifest, offset: tuple[str, str]) -> exp.Select:
    """A window of months, quarters or years moves each input day forward to its report day
    (``day + window``, the month's last day when that month is shorter, as every engine adds
    months), so each day is counted once. MetricFlow moves each report day back instead:
    by year, 29, 30 and 31 March 2020 all read 29 February, and 30 and 31 January are read
    by no day. (Day and week windows map days one to one either way.)"""
    spine = manifest.time_spine
    day = exp.column(spine.column, table="spine")
    count, unit = offset[1].split()[0], offset_grain(offset).upper()
    later = exp.Add(
        this=day.copy(),
        expression=exp.Interval(this=exp.Literal.string(count), unit=exp.Var(this=unit)),
    )
    return exp.select(
        exp.cast(later, "DATE").as_(PERIOD, copy=False), day.as_(SOURCE_DAY, copy=False), copy=False
    ).from_(relation_table(spine.relation, "spine"), copy=False)


def custom_columns(manifest: Manifest, customs: list[str], table: str) -> list[exp.Expr]:
    spine = manifest.time_spine
    return [
        exp.column(str(spine.custom_column(grain)), table=table).as_(custom_alias(grain))
        for grain in customs
    ]


def custom_window_pairs(manifest: Manifest, grain: str, count: int) -> exp.Select:
    """A window of ``count`` custom periods, as MetricFlow moves it: the day at position k
    of its custom period is reported at position k of the period ``count`` later (at that
    period's last day when it is shorter); days of the last periods have nowhere to go.
    Periods are ordered by their first day (MetricFlow orders by the column's value, the
    same order wherever the values sort as the calendar does)."""
    spine = manifest.time_spine
    column = str(spine.custom_column(grain))
    day = exp.column(spine.column, table="spine")
    label = exp.column(column, table="spine")
    positioned = exp.select(
        day.as_("spine_day", copy=False),
        label.as_("period_label", copy=False),
        exp.Window(
            this=exp.RowNumber(),
            partition_by=[label.copy()],
            order=exp.Order(expressions=[exp.Ordered(this=day.copy())]),
        ).as_("day_number", copy=False),
        copy=False,
    ).from_(relation_table(spine.relation, "spine"), copy=False)
    bounds = (
        exp.select(
            label.copy().as_("period_label", copy=False),
            exp.Min(this=day.copy()).as_("first_day", copy=False),
            exp.Max(this=day.copy()).as_("last_day", copy=False),
            copy=False,
        )
        .from_(relation_table(spine.relation, "spine"), copy=False)
        .group_by(label.copy(), copy=False)
    )
    chronological = exp.Order(expressions=[exp.Ordered(this=exp.column("first_day"))])

    def lead(name: str) -> exp.Expr:
        return exp.Window(
            this=exp.Lead(this=exp.column(name), offset=exp.Literal.number(count)),
            order=chronological.copy(),
        )

    shifted = exp.select(
        exp.column("period_label"),
        # Not named first_day: MariaDB would read ORDER BY first_day as this window itself.
        lead("first_day").as_("later_first", copy=False),
        lead("last_day").as_("later_last", copy=False),
        copy=False,
    ).from_(bounds.subquery("bounds", copy=False), copy=False)
    same_position = exp.DateAdd(
        this=exp.column("later_first", table="later"),
        expression=exp.cast(
            exp.Sub(this=exp.column("day_number", table="days"), expression=exp.Literal.number(1)),
            INT.copy(),
        ),
        unit=exp.Var(this="DAY"),
    )
    report = exp.Case(
        ifs=[
            exp.If(
                this=exp.LTE(
                    this=same_position, expression=exp.column("later_last", table="later")
                ),
                true=same_position.copy(),
            )
        ],
        default=exp.column("later_last", table="later"),
    )
    pairs = exp.select(
        report.as_(PERIOD, copy=False),
        exp.column("spine_day", table="days").as_(SOURCE_DAY),
        copy=False,
    ).from_(positioned.subquery("days", copy=False), copy=False)
    pairs = append_join(
        pairs,
        shifted.subquery("later", copy=False),
        on=exp.EQ(
            this=exp.column("period_label", table="days"),
            expression=exp.column("period_label", table="later"),
        ),
        kind="INNER",
    )
    return pairs.where(
        exp.Not(this=exp.Is(this=exp.column("later_first", table="later"), expression=exp.Null())),
        copy=False,
    )
