"""Offset inputs of derived metrics (``offset_window``, ``offset_to_grain``).

An offset aggregation is joined to the time spine shifted by the offset, so each period reads
the value of an earlier period; the query's time range applies after shifting.
"""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.grains import ALL_GRAINS
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import MSG_UNSUPPORTED, Leaf
from semantic.compiler.resolve import GroupByItem, query_error
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import metric_time_item, spine_join, trunc


def offset_select(
    select: exp.Select,
    items: list[GroupByItem],
    leaves: list[Leaf],
    manifest: Manifest,
    query: MetricQuery,
) -> exp.Select:
    """An input read at another period, as MetricFlow does: spine periods INNER JOIN the
    aggregation on ``period - offset_window`` (or on the start of the period's grain)."""
    offset = leaves[0].offset
    assert offset is not None
    time_item = metric_time_item(items)
    if time_item is None:
        raise query_error(
            MSG_UNSUPPORTED.format(what="an offset metric without metric_time in group_by"),
            code="unsupported_metric",
            location="group_by",
            hint="group by metric_time (at any grain)",
        )
    custom = [
        g for g in (time_item.grain, offset[1].split()[-1].rstrip("s")) if g and g not in ALL_GRAINS
    ]
    if custom:
        raise query_error(
            MSG_UNSUPPORTED.format(what=f"an offset with the custom grain {custom[0]!r}"),
            code="unsupported_metric",
            location="group_by",
            hint="offsets work at the standard grains (day … year); custom grains work in "
            "group-by, filters and cumulative metrics",
        )
    period = exp.column("period", table="time_spine")
    if offset[0] == "window":
        count, unit = offset[1].split()
        target: exp.Expr = exp.Sub(
            this=period,
            expression=exp.Interval(
                this=exp.Literal.string(count), unit=exp.Var(this=unit.rstrip("s").upper())
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
