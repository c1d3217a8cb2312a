"""Offset inputs of derived metrics (``offset_window``, ``offset_to_grain``).

An offset input reads another period's value: the time spine is joined to the input on the
period shifted by the offset, so each period reads the value of an earlier one; the query's
time range applies after shifting. Two shapes, chosen as MetricFlow chooses them:

- **after aggregation** (``offset_select``): when the query's one time item is a standard
  grain no coarser than the offset's (by month, ``1 month`` ago), the input is aggregated at
  the query grain and each spine period joins the period ``offset`` before it;
- **before aggregation** (``offset_days_select``, in ``offset_days``): otherwise (by month
  with a ``5 day`` lag, several grains, date parts, custom grains, a custom-grain window),
  the input's rows are joined to spine *days* shifted by the offset and aggregated to the
  requested periods of the shifted day — by month, the sum over the month's days of each
  day's lagged value.

The time items an offset shifts are ``metric_time`` and the measure's own
``agg_time_dimension`` asked by name (``booking__ds__day``), as in MetricFlow.
"""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.grains import ALL_GRAINS
from semantic.compiler.joins import Source
from semantic.compiler.manifest import Manifest, Measure
from semantic.compiler.plan import MSG_UNSUPPORTED, Leaf
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, query_error
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import spine_join, trunc


def offset_grain(offset: tuple[str, str]) -> str:
    """The grain an offset moves by: ``1 month`` → month, ``to_grain week`` → week.

    Example:
        >>> offset_grain(("window", "5 days")), offset_grain(("to_grain", "month"))
        ('day', 'month')
    """
    if offset[0] == "window":
        unit = offset[1].split()[-1]
        return unit[:-1] if unit.endswith("s") and unit[:-1] in ALL_GRAINS else unit
    return offset[1]


def offset_time_items(
    items: list[GroupByItem], source: Source, measure: Measure
) -> list[GroupByItem]:
    """The time items an offset shifts: metric_time, and the measure's agg_time_dimension
    reached on its own model (``booking__ds__week`` for bookings by ``ds``)."""
    found = []
    for item in items:
        if item.kind != "time":
            continue
        if item.element == METRIC_TIME:
            found.append(item)
        elif item.element == measure.agg_time_dimension and item.entity_path:
            model, alias = source.walk(item.entity_path, item.text, item.element)
            if model is source.model and alias == source.alias:
                found.append(item)
    return found


def joins_after_aggregation(time_items: list[GroupByItem], offset: tuple[str, str]) -> bool:
    """MetricFlow's rule: the offset join follows aggregation when the query has one time
    item, at a standard grain no coarser than the offset grain (and not a week with an
    ``offset_to_grain``: weeks do not roll up into months)."""
    if len(time_items) != 1:
        return False
    item = time_items[0]
    grain = offset_grain(offset)
    if item.date_part or item.grain not in ALL_GRAINS or grain not in ALL_GRAINS:
        return False
    if item.grain == "week" and offset[0] == "to_grain":
        return False
    return ALL_GRAINS.index(item.grain) <= ALL_GRAINS.index(grain)


def require_time_item(time_items: list[GroupByItem]) -> None:
    if not time_items:
        raise query_error(
            MSG_UNSUPPORTED.format(
                what="an offset metric without metric_time (or its agg_time_dimension) in group_by"
            ),
            code="unsupported_metric",
            location="group_by",
            hint="group by metric_time (at any grain or date part), or by the measure's "
            "agg_time_dimension",
        )


def offset_select(
    select: exp.Select,
    items: list[GroupByItem],
    leaves: list[Leaf],
    manifest: Manifest,
    query: MetricQuery,
    time_item: GroupByItem,
) -> exp.Select:
    """An input aggregated at the query grain, read at another period: spine periods INNER
    JOIN the aggregation on ``period - offset_window`` (or on the start of the period's
    ``offset_to_grain``). Only where ``joins_after_aggregation`` holds."""
    offset = leaves[0].offset
    assert offset is not None
    period = exp.column("period", table="time_spine")
    if offset[0] == "window":
        count, _ = offset[1].split()
        target: exp.Expr = exp.Sub(
            this=period,
            expression=exp.Interval(
                this=exp.Literal.string(count), unit=exp.Var(this=offset_grain(offset).upper())
            ),
        )
    else:
        target = trunc(period, offset[1])
    return spine_join(
        select,
        items,
        leaves,
        manifest,
        query,
        time_item=time_item,
        target=target,
        join_type="inner",
    )
