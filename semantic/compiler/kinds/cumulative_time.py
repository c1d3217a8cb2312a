"""A cumulative metric's own time: the group-by and filter items read from the spine day.

MetricFlow joins a cumulative metric's rows over a time range per spine day, and every item of
the metric's time (metric_time at any grain, and the measure's agg_time_dimension through its
model's own entity) is then the spine day's, at the item's grain. Filters are applied after
that join, so a filter on those items keeps spine days, not source rows.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from semantic.compiler.date_parts import date_part_expr
from semantic.compiler.entity_graph import local_entities
from semantic.compiler.grains import ALL_GRAINS, SUB_DAILY
from semantic.compiler.joins import Source
from semantic.compiler.manifest import Manifest, Measure
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, query_error
from semantic.compiler.time import trunc

# The table name a filter's metric_time columns are bound to until they are applied to the
# spine days (see day_filter_column and split_day_conditions).
DAY_TABLE = "tally_spine_days"
MSG_MIXED_FILTER = (
    "a filter of cumulative metric {metric!r} mixes metric_time with other items in one "
    "condition: {condition}"
)
HINT_MIXED_FILTER = (
    "a filter on metric_time keeps days of the running values, the others keep source rows; "
    "write them as separate conditions joined by AND"
)


def is_time_item(item: GroupByItem, source: Source, anchor: Measure) -> bool:
    """Whether ``item`` is the cumulative metric's own time, read from the spine day:
    metric_time, or the measure's agg_time_dimension through an entity of its own model
    (MetricFlow's ``revenue_instance__ds__month`` is ``metric_time__month`` there): its
    primary or unique entity, which reads the model's own dimensions without a join."""
    if item.element == METRIC_TIME:
        return item.kind == "time"
    return (
        item.kind in ("time", "dimension")
        and len(item.entity_path) == 1
        and item.entity_path[0] in local_entities(source.model)
        and item.element == anchor.agg_time_dimension
        and item.element in source.model.dimensions
    )


def time_items(items: list[GroupByItem], source: Source, anchor: Measure) -> list[GroupByItem]:
    """The group-by items a cumulative metric reads from its spine day (``is_time_item``)."""
    return [i for i in items if is_time_item(i, source, anchor)]


def item_grain(item: GroupByItem, source: Source, anchor: Measure) -> str:
    """The grain of a time item: its own, or its dimension's data grain when it names none."""
    if item.grain:
        return item.grain
    dim = source.model.dimensions.get(anchor.agg_time_dimension)
    return dim.grain if dim is not None and dim.grain else "day"


def base_grain_of(grains: list[str]) -> str:
    """The grain the metric is computed at: a day, or the finest sub-daily grain asked for
    (read against a spine at that grain; see time.spine_at)."""
    finer = [g for g in grains if g in SUB_DAILY]
    return min(finer, key=SUB_DAILY.index) if finer else "day"


def day_filter_column(
    items: list[GroupByItem], source: Source, anchor: Measure, manifest: Manifest
) -> Callable[[GroupByItem], exp.Expr | None]:
    """Binds a filter's time items to the spine day (table ``DAY_TABLE``) instead of the
    source rows: MetricFlow applies a cumulative metric's filters after the window join, so
    ``metric_time__day = '2020-01-04'`` keeps that day with its whole window."""
    base = base_grain_of([item_grain(i, source, anchor) for i in time_items(items, source, anchor)])

    def bind(item: GroupByItem) -> exp.Expr | None:
        if not is_time_item(item, source, anchor):
            return None
        day = exp.column("spine_day", table=DAY_TABLE)
        if item.date_part:
            return date_part_expr(day, item.date_part)
        grain = item_grain(item, source, anchor)
        custom = manifest.time_spine.custom_column(grain) if grain not in ALL_GRAINS else None
        if custom is not None and base == "day":
            # The day spine's own column for the period; cumulative_select carries it along.
            return exp.column(custom, table=DAY_TABLE)
        if grain not in ALL_GRAINS:
            raise query_error(
                f"a filter on {item.text!r} of a cumulative metric computed at {base} grain "
                "is not supported: custom grains are columns of the day spine",
                code="unsupported_filter",
                location="where",
                hint="filter on a standard grain (day, week, month, quarter, year) or use "
                "start_time/end_time",
            )
        return day if grain == base else trunc(day, grain)

    return bind


def split_day_conditions(
    conditions: list[exp.Expr], metric: str
) -> tuple[list[exp.Expr], list[exp.Expr]]:
    """(source-row conditions, spine-day conditions) of a cumulative metric's filters, each
    top-level AND term on one side.

    Args:
        conditions: The bound filters (``filter_conditions`` with ``day_filter_column``).
        metric: The metric named in errors.

    Returns:
        The terms on source columns only, and the terms on ``DAY_TABLE`` only.

    Raises:
        QueryError: ``unsupported_filter`` for a term on both the spine day and source rows.

    Example:
        >>> day = exp.column("spine_day", table=DAY_TABLE)
        >>> on_day = exp.EQ(this=day, expression=exp.Literal.string("2020-01-04"))
        >>> rows, days = split_day_conditions([exp.and_(on_day, "t.paid")], "m")
        >>> [r.sql() for r in rows], [d.sql() for d in days]
        (['t.paid'], ["tally_spine_days.spine_day = '2020-01-04'"])
    """
    rows: list[exp.Expr] = []
    days: list[exp.Expr] = []
    for condition in conditions:
        for term in condition.flatten() if isinstance(condition, exp.And) else [condition]:
            term = term.unnest()
            tables = {c.table for c in term.find_all(exp.Column)}
            if DAY_TABLE not in tables:
                rows.append(term)
                continue
            if tables - {DAY_TABLE}:
                raise query_error(
                    MSG_MIXED_FILTER.format(metric=metric, condition=term.sql()),
                    code="unsupported_filter",
                    location="where",
                    hint=HINT_MIXED_FILTER,
                )
            days.append(term)
    return rows, days


def on_daily(condition: exp.Expr, customs: list[str]) -> exp.Expr:
    """A spine-day condition (bound to ``DAY_TABLE``) read from the ``daily`` subquery, where
    the spine's custom-grain columns are named ``spine_period_<k>``."""

    def rename(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table == DAY_TABLE:
            name = node.name
            if name != "spine_day":
                name = f"spine_period_{customs.index(name)}"
            return exp.column(name, table="daily")
        return node

    return condition.copy().transform(rename, copy=False)
