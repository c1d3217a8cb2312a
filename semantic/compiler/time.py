"""Time: grain truncation, period bounds, the query's day range, and the time spine.

``trunc`` is the one date-truncation helper of the compiler (definitions' time dimensions,
metric_time, the spine); ``period_bounds`` is what lineage and drill-down share with the
compiler to say which days a period covers. The spine is the generated day series that
cumulative and offset metrics and ``join_to_timespine`` measures join onto.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from semantic.compiler.grains import GRAINS, SUB_DAILY, period_floor, period_next
from semantic.compiler.manifest import Manifest
from semantic.compiler.nodes import TIMESTAMP, append_join, relation_table
from semantic.compiler.plan import Leaf
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, query_date, query_error
from semantic.compiler.spec import MetricQuery


def trunc(expression: exp.Expr, grain: str) -> exp.Expr:
    return exp.TimestampTrunc(this=expression, unit=exp.Var(this=grain.upper()))


def period_bounds(start: dt.date, end: dt.date, grain: str) -> tuple[dt.date, dt.date]:
    """Widens [start, end] to whole periods of ``grain``, as MetricFlow does: a query for
    2026-01-01..2026-06-30 by week reads 2025-12-29..2026-07-05.

    Example:
        >>> period_bounds(dt.date(2026, 1, 1), dt.date(2026, 6, 30), "week")
        (datetime.date(2025, 12, 29), datetime.date(2026, 7, 5))
    """

    # A finer or custom grain widens nothing here: its periods are whole days.
    def floor(day: dt.date) -> dt.date:
        return period_floor(day, grain) if grain in GRAINS else day

    def next_period(day: dt.date) -> dt.date:
        return period_next(day, grain if grain in GRAINS else "day")

    try:
        return floor(start), next_period(floor(end)) - dt.timedelta(days=1)
    except (ValueError, OverflowError):
        # An open end (9999-12-31) has no next period: the range runs to the last date.
        return floor(start), dt.date.max


def day_range(column: exp.Expr, first: dt.date | None, last: dt.date | None) -> list[exp.Expr]:
    """``first <= DATE_TRUNC('day', column) <= last``, written on the bare column
    (``column >= first AND column < last + 1 day``) so the warehouse can prune storage by
    the column's min/max statistics, which a truncated column defeats."""
    bounds: list[exp.Expr] = []
    if first is not None:
        bounds.append(exp.GTE(this=column, expression=timestamp_literal(first)))
    if last is not None:
        bounds.append(
            exp.LT(this=column.copy(), expression=timestamp_literal(last + dt.timedelta(days=1)))
        )
    return bounds


def timestamp_literal(day: dt.date) -> exp.Expr:
    return exp.cast(exp.Literal.string(f"{day.isoformat()} 00:00:00"), TIMESTAMP.copy())


def instant_literal(at: dt.datetime) -> exp.Expr:
    return exp.cast(exp.Literal.string(at.isoformat(sep=" ")), TIMESTAMP.copy())


# One period of each grain finer than a day.
SUB_DAILY_STEP = {
    "millisecond": dt.timedelta(milliseconds=1),
    "second": dt.timedelta(seconds=1),
    "minute": dt.timedelta(minutes=1),
    "hour": dt.timedelta(hours=1),
}


def instant_floor(at: dt.datetime, grain: str) -> dt.datetime:
    """The start of the ``grain`` period (finer than a day) containing ``at``."""
    at = at.replace(microsecond=at.microsecond // 1000 * 1000)
    if grain == "millisecond":
        return at
    at = at.replace(microsecond=0)
    if grain == "second":
        return at
    at = at.replace(second=0)
    return at if grain == "minute" else at.replace(minute=0)


def instant_bounds(query: MetricQuery, grain: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[first, after) of the query's time range at a grain finer than a day, as MetricFlow
    adjusts it: from the start of the period containing start_time to the end of the period
    containing end_time. A date without a time keeps its whole day (an end_time of 2020-01-03
    runs to midnight after it), as at every other grain.

    Example:
        >>> q = MetricQuery(metrics=("m",), start_time="2020-01-01 02:00:25",
        ...                 end_time="2020-01-03 05:00:53")
        >>> [t.isoformat() for t in instant_bounds(q, "hour")]
        ['2020-01-01T02:00:00', '2020-01-03T06:00:00']
        >>> instant_bounds(MetricQuery(metrics=("m",), end_time="2020-01-03"), "hour")[1]
        datetime.datetime(2020, 1, 4, 0, 0)
    """

    def instant(value: str, location: str) -> dt.datetime:
        query_date(value, location)  # refuses a value that is no ISO date, with its location
        return dt.datetime.fromisoformat(value.strip()).replace(tzinfo=None)

    first = (
        instant_floor(instant(query.start_time, "start_time"), grain) if query.start_time else None
    )
    after = None
    if query.end_time:
        end = instant(query.end_time, "end_time")
        if _date_only(query.end_time):
            after = end + dt.timedelta(days=1)
        else:
            after = instant_floor(end, grain) + SUB_DAILY_STEP[grain]
    return first, after


def _date_only(value: str) -> bool:
    return len(value.strip()) <= len("2020-01-03")


def instant_range(column: exp.Expr, query: MetricQuery, grain: str) -> list[exp.Expr]:
    """``first <= column < after`` for the query's time range at a sub-daily ``grain``."""
    first, after = instant_bounds(query, grain)
    bounds: list[exp.Expr] = []
    if first is not None:
        bounds.append(exp.GTE(this=column, expression=instant_literal(first)))
    if after is not None:
        bounds.append(exp.LT(this=column.copy(), expression=instant_literal(after)))
    return bounds


def spine_day_range(day: exp.Expr, query: MetricQuery, grain: str) -> list[exp.Expr]:
    """Bounds of spine days to the query's time range, widened to whole ``grain`` periods."""
    if not (query.start_time or query.end_time):
        return []
    first = query_date(query.start_time, "start_time") if query.start_time else dt.date(1, 1, 1)
    last = query_date(query.end_time, "end_time") if query.end_time else dt.date(9999, 12, 31)
    low, high = period_bounds(first, last, grain)
    bounds: list[exp.Expr] = []
    if query.start_time:
        bounds.append(exp.GTE(this=day.copy(), expression=timestamp_literal(low)))
    if query.end_time:
        bounds.append(exp.LTE(this=day.copy(), expression=timestamp_literal(high)))
    return bounds


def unbounded(query: MetricQuery) -> MetricQuery:
    return MetricQuery(**{**query.__dict__, "start_time": None, "end_time": None})


def spine_periods(
    manifest: Manifest, grain: str, query: MetricQuery, where: tuple[exp.Expr, ...] = ()
) -> exp.Select:
    """Distinct time-spine periods at ``grain``, within the query's (widened) time range and
    ``where`` (conditions on the spine row, alias ``spine``)."""
    relation, column = spine_at(manifest, grain)
    period = spine_period(manifest, exp.column(column, table="spine"), grain, "spine")
    periods = (
        exp.select(period.as_("period", copy=False), copy=False)
        .from_(relation_table(relation, "spine"), copy=False)
        .distinct(copy=False)
    )
    if grain in SUB_DAILY:
        # Periods finer than a day: bounded by the instants of the query's range.
        bounds = instant_range(period.copy(), query, grain)
    else:
        bounds = spine_day_range(trunc(exp.column(column, table="spine"), "day"), query, grain)
    for bound in [*bounds, *where]:
        periods = periods.where(bound, copy=False)
    return periods


def spine_at(manifest: Manifest, grain: str) -> tuple[tuple[str | None, str, str], str]:
    """(relation, column) of a time spine fine enough for ``grain``: the day spine, or for
    hour, minute or second a spine model at that grain or finer (dbt allows one per grain).

    Raises:
        QueryError: ``missing_time_spine`` when a sub-daily grain has no spine that fine.
    """
    spine = manifest.time_spine
    if grain not in SUB_DAILY:
        return spine.relation, spine.column
    finest = SUB_DAILY.index(grain)
    # The coarsest spine that is fine enough: an hourly spine for hours, not a per-second one.
    by_grain = sorted(spine.finer, key=lambda f: SUB_DAILY.index(f[0]), reverse=True)
    for spine_grain, relation, column in by_grain:
        if SUB_DAILY.index(spine_grain) <= finest:
            return relation, column
    raise query_error(
        f"metric_time__{grain} needs a time spine at {grain} grain or finer; the project's "
        f"time spine is at {spine.grain} grain",
        code="missing_time_spine",
        location="group_by",
        hint=f"add a dbt time spine model whose standard_granularity_column has granularity "
        f"{grain}, or group by metric_time__day",
    )


def spine_period(manifest: Manifest, day: exp.Expr, grain: str, spine_alias: str) -> exp.Expr:
    """The period of ``grain`` containing a spine row's ``day``: a truncation, or for a
    custom grain (dbt's ``custom_granularities``) the spine row's own column for it.

    Example:
        >>> from semantic.compiler.manifest import Manifest, TimeSpine
        >>> spine = TimeSpine((None, "main", "spine"), "d", "day", (("fiscal_year", "fy"),))
        >>> m = Manifest("", {}, {}, {}, {}, spine)
        >>> spine_period(m, exp.column("d", table="s"), "fiscal_year", "s").sql()
        's.fy'
    """
    column = manifest.time_spine.custom_column(grain)
    if column is not None:
        return exp.column(column, table=spine_alias)
    if grain == "day":
        # The spine's own day, as MetricFlow gives it: a DATE (not a truncated timestamp).
        return day
    return trunc(day, grain)


def spine_join(
    select: exp.Select,
    items: list[GroupByItem],
    leaves: list[Leaf],
    manifest: Manifest,
    query: MetricQuery,
    *,
    time_item: GroupByItem,
    target: exp.Expr,
    join_type: str,
    spine_where: tuple[exp.Expr, ...] = (),
) -> exp.Select:
    """Time-spine periods at the query grain joined to an aggregation on ``target`` (an
    expression over ``time_spine.period``); metric_time comes from the spine."""
    outputs = []
    for item in items:
        if item is time_item:
            outputs.append(exp.column("period", table="time_spine").as_(item.column, copy=False))
        else:
            outputs.append(exp.column(item.column, table="agg").as_(item.column, copy=False))
    outputs += [exp.column(leaf.alias, table="agg") for leaf in leaves]
    periods = spine_periods(manifest, time_item.grain or "day", query, spine_where)
    return append_join(
        exp.select(*outputs, copy=False).from_(
            periods.subquery("time_spine", copy=False), copy=False
        ),
        select.subquery("agg", copy=False),
        on=exp.EQ(this=target, expression=exp.column(time_item.column, table="agg")),
        side="LEFT" if join_type == "left" else None,
        kind="INNER" if join_type == "inner" else None,
    )


def metric_time_item(items: list[GroupByItem]) -> GroupByItem | None:
    return next((i for i in items if i.kind == "time" and i.element == METRIC_TIME), None)
