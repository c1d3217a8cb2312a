"""Drill-down reads: the source rows behind one stored metric value, as sqlglot SELECTs.

A stored value is one (metric, grain, period start, slice). For every measure aggregation
the metric reads (ratio: numerator and denominator; derived: each input metric; conversion:
base and conversion events), :func:`drilldown_selects` builds the fact rows of the
measure's semantic model restricted exactly as the compiler restricts them:

* the period: the measure's ``agg_time_dimension`` between the period's first and last day
  (the compiler's own ``day_range``, on the bare column), widened for cumulative windows
  and to-date metrics to every day the value accumulates, and shifted for offset inputs;
* the slice: each group-by item equal to the value's slice value, through the same entity
  joins the compiler makes (``Source.walk``: LEFT JOINs to one-row-per-entity models only,
  so the fact rows never fan out);
* the measure filter, the metric filter, the input filter and the query's own where, through
  the compiler's filter rendering (``filter_conditions``), Metric() filters included.

Each read returns ``measure_value`` (the measure's expression, not aggregated),
``metric_time`` (the raw agg time column), the slice columns, then every column of the fact
table. For sum, count, count_distinct and sum_boolean, aggregating ``measure_value`` of the
rows as ``reaggregate`` says gives the input's value; for other kinds the part carries a
note saying how the value relates to its rows.

Django-free, like the rest of the compiler.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.dialects import render
from semantic.compiler.filters import FILTER_CTES, FilterCtes, filter_conditions
from semantic.compiler.grains import GRAINS
from semantic.compiler.joins import Source
from semantic.compiler.kinds.offset import joins_after_aggregation, offset_grain
from semantic.compiler.manifest import Manifest, SemanticModel
from semantic.compiler.nodes import TIMESTAMP
from semantic.compiler.plan import Leaf, metric_parts

# Re-exported: the compute job and lineage read a metric's measures from here.
from semantic.compiler.plan import metric_measures as metric_measures
from semantic.compiler.policies import SecuredSelect, secure_select
from semantic.compiler.principal import Principal
from semantic.compiler.query import query_select
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, parse_group_by, query_error
from semantic.compiler.spec import MAX_LIMIT
from semantic.compiler.time import day_range, period_bounds
from tally.errors import QueryError

MEASURE_COLUMN = "measure_value"
TIME_COLUMN = "metric_time"

# How the rows' measure_value re-aggregates to the input's value (SQL over the drill-down).
REAGGREGATE = {
    "sum": "SUM(measure_value)",
    "count": "COUNT(measure_value)",
    "count_distinct": "COUNT(DISTINCT measure_value)",
    "sum_boolean": "SUM(CAST(measure_value AS INT))",
    "average": "AVG(measure_value)",
    "min": "MIN(measure_value)",
    "max": "MAX(measure_value)",
    "median": "MEDIAN(measure_value)",
}
ADDITIVE_AGGS = frozenset({"sum", "count", "count_distinct", "sum_boolean"})

NOTE_NOT_A_SUM = "the value is the {agg} of measure_value over these rows, not their sum or count"
NOTE_NON_ADDITIVE = (
    "semi-additive measure: the value aggregates only the rows at the {window_choice} "
    "{dimension} of the period (per {groups}), not all of these rows"
)
NOTE_CUMULATIVE = (
    "cumulative ({how}): the rows cover every day the value accumulates, {first} to {last}"
)
NOTE_CUMULATIVE_COARSE = (
    "; at {grain} grain the value is the {period_agg} daily value of the period, so the "
    "rows of the whole window are a superset of any one day's"
)
NOTE_CONVERSION_BASE = (
    "conversion metric: these are the base events; the value counts those followed by a "
    "conversion of the same {entity} within {window}, it is not a sum of these rows"
)
NOTE_CONVERSION_EVENTS = (
    "conversion metric: candidate conversion events from the period start to {last} "
    "(period end + window); only those following a base event count"
)
NOTE_OFFSET = "offset input ({offset}): rows of the period {first} to {last}"
NOTE_FILL = "no rows means the value is {fill} (fill_nulls_with)"

MSG_BAD_GRAIN = "grain {grain!r} is not one of " + ", ".join(GRAINS)


@dataclass(frozen=True)
class DrillDownPart:
    """The source rows of one measure aggregation behind a stored value."""

    role: str  # "value", "numerator", "denominator", "input <name>", "base events", …
    metric: str  # the (input) metric this aggregation computes
    measure: str
    agg: str
    semantic_model: str
    table: str  # schema.table (database first when there is one)
    first_day: dt.date | None  # None: from the first row (all-time cumulative)
    last_day: dt.date
    filters: tuple[str, ...]
    reaggregate: str
    # True when re-aggregating measure_value over the rows (as ``reaggregate``) gives exactly
    # this input's value for the period: sums and counts over the period's own rows.
    exact: bool
    notes: tuple[str, ...]
    # "model.dimension" of every slice item the rows are restricted by (for lineage).
    slice_dimensions: tuple[str, ...]
    select: exp.Select = field(compare=False, repr=False)
    # Who reads the rows (None: a trusted caller) and the release they are read under: the
    # principal's row policies and masks are applied when the read is rendered.
    principal: Principal | None = field(default=None, compare=False, repr=False)
    manifest: Manifest | None = field(default=None, compare=False, repr=False)

    def secured(self, dialect: str) -> SecuredSelect:
        """The read with the principal's row policies and PII masks, and the session
        variables it needs (the salt) when run."""
        if self.principal is None or self.manifest is None:
            return SecuredSelect(self.select, ())
        return secure_select(self.select, self.manifest, self.principal, dialect=dialect)

    def sql(self, dialect: str, *, pretty: bool = True) -> str:
        """The read as SQL text for ``dialect`` (the tree is copied, never rewritten)."""
        return render(self.secured(dialect).tree.copy(), dialect, pretty=pretty)


def drilldown_selects(
    manifest: Manifest,
    *,
    metric: str,
    grain: str,
    period_start: dt.date,
    slice_values: Mapping[str, Any] | None = None,
    where: Sequence[str] = (),
    limit: int | None = None,
    principal: Principal | None = None,
) -> tuple[DrillDownPart, ...]:
    """The source-row reads behind one value of ``metric`` at ``grain`` and ``period_start``.

    Args:
        manifest: the release the value was computed with.
        metric: the metric's name.
        grain: the value's grain (day … year).
        period_start: the first day of the value's period.
        slice_values: the value's slice: group-by item → value (``{"account__plan": "pro"}``).
        where: the query filters the value was computed under (a replay's load filter).
        limit: at most this many rows per read (ordered by metric_time); None: all.
        principal: who reads the rows; None is a trusted caller. Row-level security applies
            its row policies and PII masks to these reads (``DrillDownPart.secured``); a
            principal who may not see PII gets the model's named columns, not ``t.*``.

    Returns:
        One part per measure aggregation, in the order the metric names its inputs.

    Raises:
        QueryError: an unknown metric or grain, an unreachable slice item, a bad filter.

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> model = {"name": "orders", "model": "ref('orders')", "defaults":
        ...     {"agg_time_dimension": "ordered_at"}, "entities": [{"name": "order",
        ...     "type": "primary", "expr": "id"}], "dimensions": [{"name": "ordered_at",
        ...     "type": "time", "type_params": {"time_granularity": "day"}}], "measures":
        ...     [{"name": "amount", "agg": "sum"}]}
        >>> metric = {"name": "sales", "type": "simple", "type_params": {"measure": "amount"}}
        >>> manifest = build_manifest([("semantic_model", "orders", model, "1.0"),
        ...     ("metric", "sales", metric, "1.0")])
        >>> part, = drilldown_selects(manifest, metric="sales", grain="month",
        ...     period_start=dt.date(2026, 1, 1))
        >>> part.first_day, part.last_day, part.reaggregate
        (datetime.date(2026, 1, 1), datetime.date(2026, 1, 31), 'SUM(measure_value)')
    """
    if metric not in manifest.metrics:
        raise query_error(f"unknown metric {metric!r}", code="unknown_metric", location="metric")
    if grain not in GRAINS:
        raise query_error(MSG_BAD_GRAIN.format(grain=grain), code="bad_grain", location="grain")
    if limit is not None and not 0 <= limit <= MAX_LIMIT:
        raise query_error(f"limit {limit} is out of range", code="bad_limit", location="limit",
                     hint=f"use 0 to {MAX_LIMIT:,}")  # fmt: skip
    parts = []
    for role, input_metric, leaf in metric_parts(manifest.metrics[metric], manifest):
        parts.append(
            _part(
                manifest,
                role=role,
                input_metric=input_metric,
                leaf=leaf,
                grain=grain,
                period_start=period_start,
                slice_values=dict(slice_values or {}),
                where=tuple(where),
                limit=limit,
                principal=principal,
            )
        )
    return tuple(parts)


def _row_columns(model: SemanticModel, alias: str, principal: Principal | None) -> list[exp.Expr]:
    """``alias.*``, or the model's own columns by name when ``principal`` may not see its PII
    columns (masks replace columns by name, so a ``*`` read of such a model is refused)."""
    if principal is None or principal.view_pii or not model.pii_columns:
        return [exp.Column(this=exp.Star(), table=exp.to_identifier(alias))]
    names: dict[str, None] = {}
    exprs = [
        *(e.expr for e in model.entities.values()),
        *(d.expr for d in model.dimensions.values()),
        *(m.expr for m in model.measures.values()),
    ]
    for text in exprs:
        try:
            parsed = sqlglot.parse_one(text) if text else None
        except ParseError:  # an expression, not a column: the read names plain columns only
            continue
        if isinstance(parsed, exp.Column) and not parsed.table:
            names.setdefault(parsed.name)
    names.update(dict.fromkeys(sorted(model.pii_columns)))
    return [exp.column(name, table=alias) for name in names]


def _part(
    manifest: Manifest,
    *,
    role: str,
    input_metric: str,
    leaf: Leaf,
    grain: str,
    period_start: dt.date,
    slice_values: dict[str, Any],
    where: tuple[str, ...],
    limit: int | None,
    principal: Principal | None = None,
) -> DrillDownPart:
    measure = leaf.measure
    model = manifest.semantic_models[measure.semantic_model]
    source = Source(model, manifest, measure.name, measure.agg_time_dimension)
    notes: list[str] = []
    exact = measure.agg in ADDITIVE_AGGS and not measure.non_additive

    first, last = period_bounds(period_start, period_start, grain)
    if leaf.offset is not None:
        first, last = _offset_period(first, grain, leaf.offset)
        notes.append(NOTE_OFFSET.format(offset=" ".join(leaf.offset), first=first, last=last))
    first_day: dt.date | None = first
    if leaf.cumulative is not None:
        first_day, last, note = _cumulative_days(leaf, first, last, grain)
        if grain != "day":
            exact = False
        notes.append(note)
    if leaf.conversion is not None:
        window = leaf.conversion.window
        last = _shift(last, window[0], window[1]) if window else dt.date(9999, 12, 31)
        notes.append(NOTE_CONVERSION_EVENTS.format(last=last))
        exact = False
    elif role == "base events":
        conversion = _conversion_of(manifest, input_metric)
        notes.append(NOTE_CONVERSION_BASE.format(**conversion))
        exact = False
    if measure.non_additive:
        spec = measure.non_additive
        notes.append(
            NOTE_NON_ADDITIVE.format(
                window_choice=str(spec.get("window_choice") or "max").lower(),
                dimension=spec.get("name"),
                groups=", ".join(spec.get("window_groupings") or ()) or "the whole slice",
            )
        )
    elif measure.agg not in ADDITIVE_AGGS:
        notes.append(NOTE_NOT_A_SUM.format(agg=measure.agg))
    if leaf.fill_nulls_with is not None:
        notes.append(NOTE_FILL.format(fill=leaf.fill_nulls_with))

    dim = model.dimensions.get(measure.agg_time_dimension)
    if dim is None:
        raise query_error(
            f"measure {measure.name!r} has no agg_time_dimension",
            code="unreachable_dimension",
            location="metric",
        )
    time_column = definition_expr(dim.expr, source.alias)
    columns: list[exp.Expr] = [
        definition_expr(measure.expr, source.alias).as_(MEASURE_COLUMN, copy=False),
        time_column.copy().as_(TIME_COLUMN, copy=False),
    ]
    conditions: list[exp.Expr] = []
    slice_dimensions: list[str] = []
    # Conversion events are reported under the base events' dimensions and need not reach
    # them (the compiler's semantics): the slice and the query's where apply to the base.
    own_filters = leaf.filters
    query_where = where if leaf.conversion is None else ()
    slice_items = slice_values if leaf.conversion is None else {}
    for key, value in sorted(slice_items.items()):
        item = parse_group_by(key, f"slice.{key}")
        column = source.item_expr(item, measure)
        if item.kind != "entity" and item.element != METRIC_TIME:
            reached = (
                source.walk(item.entity_path, item.text, item.element)[0]
                if item.entity_path
                else model
            )
            slice_dimensions.append(f"{reached.name}.{item.element}")
        columns.append(column.copy().as_(item.column, copy=False))
        conditions.append(_equals(column, value, item))
    if leaf.conversion is not None and slice_values:
        notes.append("the slice applies to the base events, not to these conversion events")

    filter_ctes = FilterCtes(query_select)
    token = FILTER_CTES.set(filter_ctes)
    try:
        conditions += filter_conditions(query_where, source, measure, "where")
        conditions += filter_conditions(own_filters, source, measure, "filter")
    finally:
        FILTER_CTES.reset(token)
    conditions += day_range(time_column.copy(), first_day, last)

    select = exp.select(*columns, *_row_columns(model, source.alias, principal), copy=False)
    select = source.from_clause(select)
    for condition in conditions:
        select = select.where(condition, copy=False)
    select = select.order_by(exp.column(TIME_COLUMN), copy=False)
    if limit is not None:
        select = select.limit(exp.Literal.number(limit), copy=False)
    filter_ctes.prepend_to(select)
    return DrillDownPart(
        role=role,
        metric=input_metric,
        measure=measure.name,
        agg=measure.agg,
        semantic_model=model.name,
        table=".".join(p for p in model.relation if p),
        first_day=first_day,
        last_day=last,
        filters=tuple(dict.fromkeys((*query_where, *own_filters))),
        reaggregate=REAGGREGATE.get(measure.agg)
        or _percentile(measure.percentile, measure.use_discrete_percentile),
        exact=exact,
        notes=tuple(notes),
        slice_dimensions=tuple(slice_dimensions),
        select=select,
        principal=principal,
        manifest=manifest,
    )


def _percentile(quantile: float | None, discrete: bool) -> str:
    kind = "DISC" if discrete else "CONT"
    return f"PERCENTILE_{kind}({quantile or 0.5}) WITHIN GROUP (ORDER BY measure_value)"


def _equals(column: exp.Expr, value: Any, item: GroupByItem) -> exp.Expr:
    """``column = <value>`` for a slice value as stored (canonical JSON), NULL-safe."""
    if value is None:
        return exp.Is(this=column, expression=exp.Null())
    literal: exp.Expr
    if isinstance(value, bool):
        literal = exp.Boolean(this=value)
    elif isinstance(value, int | float):
        literal = exp.Literal.number(value)
    elif item.kind == "time" or (item.element == METRIC_TIME):
        literal = exp.cast(exp.Literal.string(str(value).replace("T", " ")), TIMESTAMP.copy())
    else:
        literal = exp.Literal.string(str(value))
    return exp.EQ(this=column, expression=literal)


def _shift(day: dt.date, count: int, unit: str, *, back: bool = False) -> dt.date:
    """``day ± count unit`` as the warehouses compute it (a month from Jan 31 is Feb 28)."""
    sign = -1 if back else 1
    if unit in ("day", "week"):
        return day + dt.timedelta(days=sign * count * (7 if unit == "week" else 1))
    months = {"month": 1, "quarter": 3, "year": 12}.get(unit)
    if months is None:
        raise QueryError(f"unknown window unit {unit!r}", code="bad_metric", location="metric")
    total = day.year * 12 + day.month - 1 + sign * count * months
    year, month = total // 12, total % 12 + 1
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    return dt.date(year, month, min(day.day, (following - dt.timedelta(days=1)).day))


def _offset_period(first: dt.date, grain: str, offset: tuple[str, str]) -> tuple[dt.date, dt.date]:
    """The days an offset input is read at, as the compiler joins them (``kinds/offset``):
    by a grain no coarser than the offset's, the period minus ``offset_window`` or the
    period of the start of the ``offset_to_grain`` period; by a coarser grain, the days
    that the window moves into the period, or the first day's ``offset_to_grain`` start alone.

    Example:
        >>> _offset_period(dt.date(2026, 3, 1), "month", ("window", "7 days"))
        (datetime.date(2026, 2, 22), datetime.date(2026, 3, 24))
    """
    count = int(offset[1].split()[0]) if offset[0] == "window" else 0
    unit = offset_grain(offset)
    item = GroupByItem(f"{METRIC_TIME}__{grain}", "time", METRIC_TIME, (), grain)
    if joins_after_aggregation([item], offset):
        if offset[0] == "window":
            shifted = _shift(first, count, unit, back=True)
        else:
            shifted = period_bounds(first, first, offset[1])[0]
        return period_bounds(shifted, shifted, grain)
    if offset[0] == "window":
        # The days whose day + window falls in the period, each read once (by a month window,
        # May 31 belongs to June 30): the next period's first day moved back, less a day.
        following = period_bounds(first, first, grain)[1] + dt.timedelta(days=1)
        last = _shift(following, count, unit, back=True) - dt.timedelta(days=1)
        return _shift(first, count, unit, back=True), last
    day = period_bounds(first, first, offset[1])[0]
    return day, day


def _cumulative_days(
    leaf: Leaf, first: dt.date, last: dt.date, grain: str
) -> tuple[dt.date | None, dt.date, str]:
    """The first and last row day a cumulative value accumulates over, and the note.

    A spine day ``d`` aggregates rows with ``d - window < row_day <= d`` (window), or
    ``trunc(d, grain_to_date) <= row_day <= d`` (to date), or every row up to ``d``.
    At a coarser grain the period keeps its first, last or average daily value.
    """
    spec = leaf.cumulative
    assert spec is not None
    days = {"first": (first, first), "last": (last, last)}.get(spec.period_agg, (first, last))
    if grain == "day":
        days = (first, first)
    low: dt.date | None
    if spec.window:
        count, unit = spec.window
        low = _shift(days[0], count, unit, back=True) + dt.timedelta(days=1)
        how = f"trailing {count} {unit}"
    elif spec.grain_to_date:
        low = period_bounds(days[0], days[0], spec.grain_to_date)[0]
        how = f"{spec.grain_to_date} to date"
    else:
        low = None
        how = "all time"
    note = NOTE_CUMULATIVE.format(how=how, first=low or "the first row", last=days[1])
    if grain != "day":
        note += NOTE_CUMULATIVE_COARSE.format(grain=grain, period_agg=spec.period_agg)
    return low, days[1], note


def _conversion_of(manifest: Manifest, metric: str) -> dict[str, str]:
    params = manifest.metrics[metric].params.get("conversion_type_params") or {}
    return {"entity": str(params.get("entity")), "window": str(params.get("window") or "ever")}
