"""Cumulative metrics: running totals over a trailing window, to date, or all time.

Aggregates per day, joins the day spine to every earlier day in the window, then rolls the
days up to the requested grains with the metric's period aggregation (first, last, average).

As in MetricFlow, every group-by item of the metric's own time (metric_time at any grain, and
the measure's agg_time_dimension through its model's entity, e.g. ``revenue_instance__ds__
month``) is read from the spine day, and a filter on them keeps spine days (after the window
join), not source rows: a filter on metric_time must not shrink the windows of the days kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace

from sqlglot import exp

from semantic.compiler.date_parts import DATE_PART_GRAIN
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.grains import ALL_GRAINS, SUB_DAILY
from semantic.compiler.joins import Source
from semantic.compiler.kinds.cumulative_time import (
    DAY_TABLE,
    base_grain_of,
    item_grain,
    on_daily,
    time_items,
)
from semantic.compiler.kinds.simple import PARTIAL_AGGREGATIONS, aggregate
from semantic.compiler.manifest import Manifest, Measure
from semantic.compiler.nodes import DATE, TIMESTAMP, append_join, relation_table
from semantic.compiler.plan import Leaf
from semantic.compiler.resolve import GroupByItem, query_date, query_error
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import (
    day_range,
    period_bounds,
    spine_at,
    spine_day_range,
    spine_period,
    trunc,
)

# The most days one unit of a cumulative window spans (for reading only the rows it can reach).
WINDOW_DAYS = {
    **{unit: 1 for unit in SUB_DAILY},
    "day": 1,
    "week": 7,
    "month": 31,
    "quarter": 92,
    "year": 366,
}
MSG_WINDOW_WITHOUT_TIME = (
    "a cumulative metric over a window or to date (measure {name!r}) needs metric_time in "
    "group_by: its value is defined per day"
)


def framed_daily(
    rows: exp.Select,
    leaves: list[Leaf],
    manifest: Manifest,
    query: MetricQuery,
    range_grain: str,
    customs: list[str],
    window: tuple[int, str] | None,
    grain_to_date: str | None,
) -> exp.Select:
    """The daily values of a window or to-date metric without groups, as a running window
    over the day spine (one row per day) LEFT JOINed to the daily partial aggregates: the
    same days and values as the range join (a day appears when its window has rows), with
    one pass over the days instead of a join of every day to every row of its window. A
    trailing window of N days is the N rows ending at the day; to date, the rows of the
    day's period so far."""
    spine = manifest.time_spine
    day = exp.column(spine.column, table="spine")
    order = exp.Order(expressions=[exp.Ordered(this=day.copy())])
    if window is not None:
        count, unit = window
        days = count * (7 if unit == "week" else 1)
        frame = exp.WindowSpec(
            kind="ROWS",
            start=exp.Literal.number(days - 1),
            start_side="PRECEDING",
            end="CURRENT ROW",
        )
        partition: list[exp.Expr] = []
    else:
        assert grain_to_date is not None
        frame = exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
        )
        partition = [spine_period(manifest, day.copy(), grain_to_date, "spine")]

    def framed(value: exp.Expr) -> exp.Expr:
        return exp.Window(
            this=value,
            partition_by=[p.copy() for p in partition],
            order=order.copy(),
            spec=frame.copy(),
        )

    row_day = exp.column("row_day", table="source_rows")
    windowed = exp.select(
        day.copy().as_("spine_day", copy=False),
        *[
            exp.column(c, table="spine").as_(f"spine_period_{k}", copy=False)
            for k, c in enumerate(customs)
        ],
        *[
            framed(
                PARTIAL_AGGREGATIONS[leaf.measure.agg](
                    exp.column(f"value_{n}", table="source_rows")
                )
            ).as_(leaf.alias, copy=False)
            for n, leaf in enumerate(leaves)
        ],
        framed(exp.Count(this=row_day.copy())).as_("rows_in_window", copy=False),
        copy=False,
    ).from_(relation_table(spine.relation, "spine"), copy=False)
    # The day spine's column is a DATE in most projects, as row_day is: an equi-join on
    # equal types keeps the hash join on plain values.
    windowed = append_join(
        windowed,
        rows.subquery("source_rows", copy=False),
        on=exp.EQ(this=row_day, expression=exp.Cast(this=day.copy(), to=DATE.copy())),
        side="LEFT",
    )
    daily = exp.select(
        exp.column("spine_day"),
        *[exp.column(f"spine_period_{k}") for k in range(len(customs))],
        *[exp.column(leaf.alias) for leaf in leaves],
        copy=False,
    ).from_(windowed.subquery("windowed", copy=False), copy=False)
    daily = daily.where(
        exp.GT(this=exp.column("rows_in_window"), expression=exp.Literal.number(0)), copy=False
    )
    for bound in spine_day_range(exp.column("spine_day"), query, range_grain):
        daily = daily.where(bound, copy=False)
    return daily


def cumulative_select(
    source: Source,
    items: list[GroupByItem],
    leaves: list[Leaf],
    conditions: list[exp.Expr],
    manifest: Manifest,
    query: MetricQuery,
    anchor: Measure,
    day_conditions: Sequence[exp.Expr] = (),
) -> exp.Select:
    """A cumulative aggregation, MetricFlow's semantics: for every time-spine day, aggregate
    the rows of the trailing window (or of the period to date, or of all time) up to that
    day; ``day_conditions`` (split_day_conditions) then keep spine days; when no group-by
    item is at the computed grain, keep the first/last/average daily value of each period
    (of every requested time item together, e.g. each week within a quarter)."""
    spec = leaves[0].cumulative
    assert spec is not None
    timed = time_items(items, source, anchor)
    if not timed:
        raise query_error(
            MSG_WINDOW_WITHOUT_TIME.format(name=leaves[0].measure.name),
            code="missing_metric_time",
            location="group_by",
            hint="group by metric_time (at any grain); only all-time cumulative metrics can "
            "be queried without it",
        )
    for item in timed:
        if item.date_part:
            raise query_error(
                f"{item.text!r} cannot group a metric read against the time spine "
                "(cumulative, offset or join_to_timespine)",
                code="unsupported_date_part",
                location="group_by",
                hint=f"group by it at a grain instead, e.g. "
                f"{item.text.rsplit('__extract_', 1)[0]}__{DATE_PART_GRAIN[item.date_part]}",
            )
    # Checked as any group-by item is (grain known, not finer than the data), on a scan of
    # its own: read from the rows they would add joins (a custom grain's spine) the spine
    # days make needless.
    probe = Source(source.model, manifest, source.metric_name, anchor.agg_time_dimension)
    for item in timed:
        probe.item_expr(item, anchor)
    grains = [item_grain(i, source, anchor) for i in timed]
    base_grain = base_grain_of(grains)
    # The time range widens to whole periods of the finest grain asked for (a single time
    # item: its own grain, as for any metric).
    range_grain = min(
        grains, key=lambda g: ALL_GRAINS.index(g) if g in ALL_GRAINS else ALL_GRAINS.index("day")
    )
    reaggregate = base_grain not in grains
    if spec.window and spec.window[1] not in WINDOW_DAYS:
        raise query_error(
            f"a cumulative window of {spec.window[0]} {spec.window[1]} is not supported "
            f"(measure {leaves[0].measure.name!r})",
            code="unsupported_metric",
            location="metric",
            hint="write the window in day, week, month, quarter or year; group by a custom "
            "grain (metric_time__<custom>) to report it per custom period, or use "
            "grain_to_date: <custom grain>",
        )
    gtd = spec.grain_to_date
    if gtd and gtd not in WINDOW_DAYS and manifest.time_spine.custom_column(gtd) is None:
        raise query_error(
            f"grain_to_date {gtd!r} of measure {leaves[0].measure.name!r} is neither a "
            "standard grain nor a custom grain of the time spine",
            code="unknown_grain",
            location="metric",
            hint="custom grains: "
            + (", ".join(manifest.time_spine.custom_grain_names) or "none")
            + "; add it to the time spine model's custom_granularities",
        )
    others = [i for i in items if i not in timed]
    dim = source.model.dimensions.get(anchor.agg_time_dimension)
    if dim is None:
        raise query_error(
            f"measure {anchor.name!r} has no agg_time_dimension for metric_time",
            code="unreachable_dimension",
            location="group_by",
        )
    # Reduce the rows before the window fan-out, as a careful analyst would: decomposable
    # aggregations (sum, count, min, max) pre-aggregate per (day, group); count-distinct
    # keeps distinct (day, group, value) tuples only. Both preserve which days have rows,
    # so the spine join below keeps MetricFlow's row set.
    aggs = {leaf.measure.agg for leaf in leaves}
    partial = aggs <= set(PARTIAL_AGGREGATIONS)
    distinct = not partial and aggs <= {"count_distinct", "min", "max"}
    values: list[exp.Expr] = []
    for n, leaf in enumerate(leaves):
        value = definition_expr(leaf.measure.expr, source.alias)
        if partial:
            value = aggregate(leaf.measure, value)
        values.append(value.as_(f"value_{n}", copy=False))
    # A row's day as a DATE (a timestamp at a sub-daily grain): grouping and joining on a
    # DATE is markedly faster than on a truncated TIMESTAMP (DuckDB: a perfect-hash group by
    # instead of a hash group by, measured 1.6x on the 7-day window sum; bench sql_speed).
    time_value = definition_expr(dim.expr, source.alias)
    day_value = (
        exp.Cast(this=time_value, to=DATE.copy())
        if base_grain == "day"
        else trunc(time_value, base_grain)
    )
    day_type = DATE if base_grain == "day" else TIMESTAMP
    rows = exp.select(
        day_value.as_("row_day", copy=False),
        *[source.item_expr(i, anchor).as_(i.column, copy=False) for i in others],
        *values,
        copy=False,
    )
    rows = source.from_clause(rows)
    for condition in conditions:
        rows = rows.where(condition, copy=False)
    if partial:
        rows = rows.group_by(
            *[exp.Literal.number(i + 1) for i in range(1 + len(others))], copy=False
        )
    elif distinct:
        rows = rows.distinct(copy=False)
    # Only rows that can reach an output day: up to the range's end, and (for a window or
    # to-date metric) from the window before its start. The warehouse can then skip the rest
    # of the table instead of feeding all of it into the range join.
    if query.start_time or query.end_time:
        first = query_date(query.start_time, "start_time") if query.start_time else dt.date(1, 1, 1)
        last = query_date(query.end_time, "end_time") if query.end_time else dt.date(9999, 12, 31)
        low, high = period_bounds(first, last, range_grain)
        earliest = None
        if query.start_time and (spec.window or spec.grain_to_date):
            earliest = low
            if spec.window:
                count, unit = spec.window
                days = WINDOW_DAYS[unit] * count
                earliest = low - dt.timedelta(days=days)
            elif spec.grain_to_date in WINDOW_DAYS:
                earliest = period_bounds(low, low, spec.grain_to_date)[0]
            elif spec.grain_to_date:
                # A custom period (a fiscal year at most, by dbt's convention) starts within
                # a year before the range does; the window join keeps only its own days.
                earliest = low - dt.timedelta(days=WINDOW_DAYS["year"])
        for bound in day_range(
            definition_expr(dim.expr, source.alias),
            earliest,
            high if query.end_time else None,
        ):
            rows = rows.where(bound, copy=False)

    spine = manifest.time_spine
    if base_grain != "day":
        relation, column = spine_at(manifest, base_grain)
        spine = replace(spine, relation=relation, column=column, custom_granularities=())
    spine_day = exp.column(spine.column, table="spine")
    # Custom grains are columns of the day spine; each rides along the derived spines below
    # as the period of its day: those asked for, and those the day filters read.
    customs = [c for c in (spine.custom_column(g) for g in grains) if c is not None]
    for condition in day_conditions:
        for ref in condition.find_all(exp.Column):
            if ref.table == DAY_TABLE and ref.name != "spine_day" and ref.name not in customs:
                customs.append(ref.name)

    def custom_columns(table: str) -> list[exp.Expr]:
        return [exp.column(c, table=table) for c in customs]

    def spine_key(table: str) -> exp.Expr:
        # The spine's day as row_day's type: a no-op on a DATE spine.
        return exp.Cast(this=exp.column(spine.column, table=table), to=day_type.copy())

    row_day = exp.column("row_day", table="source_rows")
    on: exp.Expr = exp.LTE(this=row_day, expression=spine_key("spine"))
    all_time = not spec.window and not spec.grain_to_date
    if all_time and partial:
        # All time: a running total per group over its days, then each spine day takes the
        # total of the latest day with rows (a day joins the run [row_day, next_day)). The
        # spine join then touches one row per (day, group) instead of every earlier row.
        partition: list[exp.Expr] = [exp.column(i.column) for i in others]
        order = exp.Order(expressions=[exp.Ordered(this=exp.column("row_day"))])
        running = exp.WindowSpec(
            kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW"
        )
        runs = exp.select(
            exp.column("row_day"),
            *[exp.column(i.column) for i in others],
            exp.Window(
                this=exp.Lead(this=exp.column("row_day")),
                partition_by=[p.copy() for p in partition],
                order=order.copy(),
            ).as_("next_day", copy=False),
            *[
                exp.Window(
                    this=PARTIAL_AGGREGATIONS[leaf.measure.agg](exp.column(f"value_{n}")),
                    partition_by=[p.copy() for p in partition],
                    order=order.copy(),
                    spec=running.copy(),
                ).as_(f"value_{n}", copy=False)
                for n, leaf in enumerate(leaves)
            ],
            copy=False,
        ).from_(rows.subquery("daily_rows", copy=False), copy=False)
        # A row without a time never reaches a spine day, and must not enter the running
        # totals (MySQL sorts NULLs first); dropped here, on the daily rows, not per row.
        runs = runs.where(
            exp.Not(this=exp.Is(this=exp.column("row_day"), expression=exp.Null())), copy=False
        )
        next_day = exp.column("next_day", table="source_rows")
        on = exp.and_(
            on,
            exp.or_(
                exp.Is(this=next_day, expression=exp.Null()),
                exp.GT(this=next_day.copy(), expression=spine_key("spine")),
                copy=False,
            ),
            copy=False,
        )
        rows = runs
    spine_source: exp.Expr = relation_table(spine.relation, "spine")
    # All time, the last value of each coarser period: a running total never drops a group
    # once it has rows, so each period's last spine day carries every group's last value.
    # Joining only that day per period spares the join and the window over every day. Not
    # with a filter on the days: the last day kept need not be the period's last.
    last_day_only = (
        all_time and partial and reaggregate and spec.period_agg == "last" and not day_conditions
    )
    if last_day_only:
        spine_days = exp.column(spine.column, table="spine_days")
        last_days = (
            exp.select(
                exp.Max(this=spine_days.copy()).as_(spine.column, copy=False),
                *custom_columns("spine_days"),
                copy=False,
            )
            .from_(relation_table(spine.relation, "spine_days"), copy=False)
            .group_by(
                *[spine_period(manifest, spine_days.copy(), g, "spine_days") for g in grains],
                copy=False,
            )
        )
        for bound in spine_day_range(spine_days, query, range_grain):
            last_days = last_days.where(bound, copy=False)
        spine_source = last_days.subquery("spine", copy=False)
    if spec.window or spec.grain_to_date:
        # Each spine day's window bounds are computed once per day, in a derived spine, in
        # row_day's type: bounds computed inside the join condition are evaluated per (day,
        # row) pair and cost a third of the query on DuckDB (measured).
        day = exp.column(spine.column, table="spine_days")
        if spec.window:
            count, unit = spec.window
            lower: exp.Expr = exp.Sub(
                this=day.copy(),
                expression=exp.Interval(
                    this=exp.Literal.string(str(count)), unit=exp.Var(this=unit.upper())
                ),
            )
        elif spine.custom_column(str(spec.grain_to_date)) is not None:
            # To date in a custom grain: from the first spine day of the day's period.
            lower = exp.Window(
                this=exp.Min(this=day.copy()),
                partition_by=[
                    spine_period(manifest, day.copy(), str(spec.grain_to_date), "spine_days")
                ],
            )
        else:
            lower = trunc(day.copy(), str(spec.grain_to_date))
        spine_source = (
            exp.select(
                day,
                spine_key("spine_days").as_("day_end", copy=False),
                exp.Cast(this=lower, to=day_type.copy()).as_("window_start", copy=False),
                *custom_columns("spine_days"),
                copy=False,
            )
            .from_(relation_table(spine.relation, "spine_days"), copy=False)
            .subquery("spine", copy=False)
        )
        on = exp.and_(
            exp.LTE(this=row_day.copy(), expression=exp.column("day_end", table="spine")),
            (exp.GT if spec.window else exp.GTE)(
                this=row_day.copy(), expression=exp.column("window_start", table="spine")
            ),
            copy=False,
        )

    def combine(leaf: Leaf, value: exp.Expr) -> exp.Expr:
        if not partial:
            return aggregate(leaf.measure, value)
        # All time: one run per spine day and group, so MAX() just picks its value.
        return PARTIAL_AGGREGATIONS["max" if all_time else leaf.measure.agg](value)

    daily = exp.select(
        spine_day.copy().as_("spine_day", copy=False),
        *[
            exp.column(c, table="spine").as_(f"spine_period_{k}", copy=False)
            for k, c in enumerate(customs)
        ],
        *[exp.column(i.column, table="source_rows") for i in others],
        *[
            combine(leaf, exp.column(f"value_{n}", table="source_rows")).as_(leaf.alias, copy=False)
            for n, leaf in enumerate(leaves)
        ],
        copy=False,
    )
    daily = append_join(
        daily.from_(spine_source, copy=False),
        rows.subquery("source_rows", copy=False),
        on=on,
        kind="INNER",
    )
    for bound in spine_day_range(spine_day, query, range_grain):
        daily = daily.where(bound, copy=False)
    keys = 1 + len(others) + len(customs)
    daily = daily.group_by(*[exp.Literal.number(i + 1) for i in range(keys)], copy=False)
    # Without groups, a window of days or weeks (a fixed number of spine rows) or a to-date
    # metric is a running window over the spine: the range join above is not needed.
    fixed_rows = (
        base_grain == "day" and spec.window is not None and spec.window[1] in ("day", "week")
    )
    if partial and not others and (fixed_rows or (spec.grain_to_date and base_grain == "day")):
        daily = framed_daily(
            rows, leaves, manifest, query, range_grain, customs, spec.window, spec.grain_to_date
        )

    def period(item: GroupByItem, grain: str) -> exp.Expr:
        column = spine.custom_column(grain)
        if column is not None:
            return exp.column(f"spine_period_{customs.index(column)}", table="daily")
        day = exp.column("spine_day", table="daily")
        return day if grain == base_grain else trunc(day, grain)

    periods = [period(item, grain) for item, grain in zip(timed, grains, strict=True)]
    partition = [
        *[p.copy() for p in periods],
        *[exp.column(i.column, table="daily") for i in others],
    ]
    outputs: list[exp.Expr] = []
    for item in items:
        if item in timed:
            outputs.append(periods[timed.index(item)].copy().as_(item.column, copy=False))
        else:
            outputs.append(exp.column(item.column, table="daily").as_(item.column, copy=False))
    windowed = reaggregate and not last_day_only
    for leaf in leaves:
        value = exp.column(leaf.alias, table="daily")
        if not windowed:
            outputs.append(value.as_(leaf.alias, copy=False))
            continue
        frame = exp.WindowSpec(
            kind="ROWS",
            start="UNBOUNDED",
            start_side="PRECEDING",
            end="UNBOUNDED",
            end_side="FOLLOWING",
        )
        order = exp.Order(expressions=[exp.Ordered(this=exp.column("spine_day", table="daily"))])
        if spec.period_agg == "average":
            window_value: exp.Expr = exp.Window(
                this=exp.Avg(this=value), partition_by=[p.copy() for p in partition]
            )
        else:
            fn = exp.LastValue if spec.period_agg == "last" else exp.FirstValue
            window_value = exp.Window(
                this=fn(this=value),
                partition_by=[p.copy() for p in partition],
                order=order,
                spec=frame,
            )
        outputs.append(window_value.as_(leaf.alias, copy=False))
    final = exp.select(*outputs, copy=False).from_(daily.subquery("daily", copy=False), copy=False)
    for condition in day_conditions:
        final = final.where(on_daily(condition, customs), copy=False)
    return final.distinct(copy=False) if windowed else final
