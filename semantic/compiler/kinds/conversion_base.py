"""The base events' side of a conversion aggregation: the groups nothing converted in, and
the base measure, which the aggregation can output itself (``fuses_base``).

A conversion rate divides the conversions by the base measure over the same base events
(same model, filters and query where). Aggregating that measure separately reads the base
events once more and merges one more aggregation on the group-by keys; where the conversion
aggregation reads every base group anyway (``matches_itself``), it outputs the base measure
next to the conversions instead.
"""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.kinds.non_additive import non_additive_tag
from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.nodes import append_join
from semantic.compiler.plan import Leaf
from semantic.compiler.resolve import GroupByItem

# Engines whose base groups with no conversion come from the join itself (conversion_select).
GROUPS_BY_JOIN_DIALECTS = frozenset({"clickhouse", "spark", "databricks"})

# Aggregations that give the same value over distinct values as over all of them.
DISTINCT_SAFE = frozenset({"count_distinct", "min", "max"})

# The base measure's expression, a column of the base events when the base is fused.
BASE_VALUE = "base_value"


def matches_itself(converted: Leaf) -> bool:
    """Whether every base event is a conversion row of its own: same model, conversion rows
    unfiltered, no property that could be NULL, a window of at least one unit. Every base
    group is then matched (MetricFlow's count of 0 where nothing converted), so the groups
    come from the base events."""
    spec = converted.conversion
    assert spec is not None
    return (
        spec.base_measure.semantic_model == converted.measure.semantic_model
        and not converted.filters
        and not spec.constant_properties
        and (spec.window is None or spec.window[0] >= 1)
    )


def fuses_base(converted: Leaf, base: Leaf, items: list[GroupByItem], dialect: str) -> bool:
    """Whether the conversion aggregation of ``converted`` outputs its base measure ``base``
    as well, the same rows as a separate aggregation of it.

    It must read every base group (``matches_itself``, and group-by items: without them
    the base is one row either way), unshifted (an offset shifts the aggregation after the
    fact). The base rows join the conversions: on ``GROUPS_BY_JOIN_DIALECTS`` a base event
    is a row once per conversion it matched, so its measure must not count repeats
    (``DISTINCT_SAFE``); elsewhere the base groups are a read of the base events of their
    own (``with_base_groups``), which aggregates the measure as its own aggregation would
    (a semi-additive measure excepted: it reads the rows of its own period end).

    Example:
        >>> from semantic.compiler.manifest import Measure
        >>> from semantic.compiler.plan import Conversion, base_leaf
        >>> signups = Measure("signups", "count_distinct", "user_id", "events", "at")
        >>> spec = Conversion("user", (7, "day"), signups, ("signed_up",))
        >>> converted = Leaf("reports__conv", Measure("reports", "count_distinct",
        ...     "CASE WHEN t = 'r' THEN user_id END", "events", "at"), (), conversion=spec)
        >>> month = GroupByItem("metric_time__month", "time", "metric_time", (), "month")
        >>> fuses_base(converted, base_leaf(converted), [month], "spark")
        True
        >>> fuses_base(converted, base_leaf(converted), [], "duckdb")
        False
    """
    if not items or converted.offset is not None or not matches_itself(converted):
        return False
    if non_additive_tag(base.measure):
        return False  # a semi-additive measure reads its own rows (kinds.non_additive)
    return dialect not in GROUPS_BY_JOIN_DIALECTS or base.measure.agg in DISTINCT_SAFE


def with_base_groups(
    select: exp.Select,
    base_rows: exp.Select,
    items: list[GroupByItem],
    leaf: Leaf,
    base: Leaf | None = None,
) -> exp.Select:
    """Every group of the base events, with its conversions (0 for a count where none
    converted, NULL for other aggregations, as over NULL values only) and, for a fused
    ``base``, its base measure aggregated over the same read."""
    groups = exp.select(*[exp.column(item.column) for item in items], copy=False)
    if base is None:
        groups = groups.distinct(copy=False)
    else:
        groups = groups.select(
            aggregate(base.measure, exp.column(BASE_VALUE)).as_(base.alias, copy=False),
            copy=False,
        ).group_by(*[exp.Literal.number(i + 1) for i in range(len(items))], copy=False)
    groups = groups.from_(base_rows.copy().subquery("base_groups", copy=False), copy=False)
    value: exp.Expr = exp.column(leaf.alias, table="converted")
    if leaf.measure.agg in ("count", "count_distinct"):
        value = exp.Coalesce(this=value, expressions=[exp.Literal.number(0)])
    out = exp.select(
        *[exp.column(item.column, table="present") for item in items],
        value.as_(leaf.alias, copy=False),
        *([exp.column(base.alias, table="present")] if base is not None else []),
        copy=False,
    ).from_(groups.subquery("present", copy=False), copy=False)
    on = exp.and_(
        *[
            exp.NullSafeEQ(
                this=exp.column(item.column, table="present"),
                expression=exp.column(item.column, table="converted"),
            )
            for item in items
        ],
        copy=False,
    )
    return append_join(out, select.subquery("converted", copy=False), on=on, side="LEFT")
