"""compile(query, manifest) → SQL: resolve names, plan per-source aggregations, build sqlglot.

Pipeline (each stage a function, timed in ``CompiledQuery.timings``):

1. ``resolve``: metric and group-by names → typed items, with did-you-mean errors.
2. ``plan``: metrics expand to leaf measures (ratio/derived recurse); leaves that read the
   same semantic model under the same filters share one aggregation (one scan each).
3. ``to_sql``: each aggregation is a CTE (FROM the model's table LEFT JOINed along entity
   paths to one-row-per-entity models only, so a measure never fans out); CTEs combine by
   FULL OUTER JOIN on the group-by keys, as MetricFlow does; metrics are computed on top.
4. ``render``: sqlglot renders for the dialect; a header names the release and versions.

User text enters only as parsed, checked sqlglot expressions (see semantic.compiler.where).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from registry.definitions.issues import did_you_mean
from semantic.compiler.definition_guard import parse_definition
from semantic.compiler.dialects import render
from semantic.compiler.manifest import GRAINS, Manifest, Measure, Metric, SemanticModel
from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MAX_LIMIT, MetricQuery
from semantic.compiler.sql_passes import optimize
from tally.errors import QueryError

METRIC_TIME = "metric_time"

MSG_UNKNOWN_METRIC = "unknown metric {name!r}"
MSG_UNKNOWN_ITEM = "unknown group-by item {name!r} for metric {metric!r}"
MSG_UNREACHABLE = "{name!r} cannot be reached from metric {metric!r}"
MSG_FAN_OUT = (
    "joining {model!r} on entity {entity!r} would fan out the measure: {entity!r} is not "
    "unique in {model!r}"
)
MSG_BAD_GRAIN = "grain {grain!r} is finer than {name!r} allows ({allowed})"
MSG_UNSUPPORTED = "{what} is not supported yet"
MSG_WINDOW_WITHOUT_TIME = (
    "a cumulative metric over a window or to date (measure {name!r}) needs metric_time in "
    "group_by: its value is defined per day"
)
MSG_FILTER_METRIC_GROUP_BY = "{item} in a filter needs exactly one group_by entity, not {count}"
HINT_FILTER_METRIC_GROUP_BY = "e.g. {{{{ Metric('{name}', group_by=['account']) }}}} > 100"
MSG_FILTER_METRIC_NOT_ENTITY = "group_by {group_by!r} of {item} is not an entity"
MSG_FILTER_METRIC_UNJOINABLE = "{item} cannot filter {model!r}: it has no entity {entity!r}"
HINT_FILTER_METRIC_UNJOINABLE = (
    "a Metric() filter joins on an entity of the filtered model; {model!r} has: {entities}"
)
MSG_FILTER_METRIC_CYCLE = "Metric() filters depend on themselves: {path}"
MSG_BAD_CONSTANT_PROPERTY = (
    "constant_properties[{index}] of conversion metric {metric!r} needs a base_property and a "
    "conversion_property"
)
MSG_UNKNOWN_PROPERTY = (
    "constant property {name!r} of conversion metric {metric!r} is not a dimension or entity "
    "of {model!r}"
)


@dataclass(frozen=True)
class GroupByItem:
    """One requested output column: a dimension, time dimension or entity along a path."""

    text: str
    kind: str  # "time" | "dimension" | "entity"
    element: str
    entity_path: tuple[str, ...]
    grain: str | None = None

    @property
    def column(self) -> str:
        return self.text


@dataclass(frozen=True)
class Leaf:
    """A measure aggregation feeding a metric: measure + filters, named by a stable alias."""

    alias: str
    measure: Measure
    filters: tuple[str, ...]
    join_to_timespine: bool = False
    cumulative: Cumulative | None = None
    fill_nulls_with: Any = None
    offset: tuple[str, str] | None = None  # ("window", "1 month") | ("to_grain", "month")
    conversion: Conversion | None = None


@dataclass(frozen=True)
class Conversion:
    """A conversion leaf: conversions of ``entity`` within ``window`` after a base event."""

    entity: str
    window: tuple[int, str] | None
    base_measure: Measure
    base_filters: tuple[str, ...]
    # (base_property, conversion_property) pairs the two events must share besides the entity.
    constant_properties: tuple[tuple[str, str], ...] = ()
    metric: str = field(default="", compare=False)  # for error messages only

    @property
    def tag(self) -> str:
        window = f"{self.window[0]}{self.window[1]}" if self.window else "ever"
        tag = f"conv_{self.entity}_{window}_{self.base_measure.name}"
        for base_property, conversion_property in self.constant_properties:
            tag += f"_{base_property}" + (
                f"_{conversion_property}" if conversion_property != base_property else ""
            )
        return tag


@dataclass(frozen=True)
class Cumulative:
    """How a cumulative metric accumulates: a trailing window, to-date, or all time."""

    window: tuple[int, str] | None  # (28, "day")
    grain_to_date: str | None
    period_agg: str  # "first" | "last" | "average"

    @property
    def tag(self) -> str:
        if self.window:
            return f"w{self.window[0]}{self.window[1]}_{self.period_agg}"
        if self.grain_to_date:
            return f"td{self.grain_to_date}_{self.period_agg}"
        return f"all_{self.period_agg}"


@dataclass
class CompiledQuery:
    sql: str
    dialect: str
    columns: tuple[str, ...]
    release: str
    versions: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    # Session variables / parameters the SQL reads and execution must set (by name, never
    # a value): "tally_pii_salt" when PII is shown as salted pseudonyms.
    parameters: tuple[str, ...] = ()


def _error(message: str, *, code: str, location: str, hint: str | None = None) -> QueryError:
    return QueryError(message, code=code, location=location, hint=hint)


# --------------------------------------------------------------------------- resolve


def _check_query(query: MetricQuery, manifest: Manifest) -> None:
    if query.dialect not in DIALECTS:
        raise _error(
            f"unsupported dialect {query.dialect!r}",
            code="unsupported_dialect",
            location="dialect",
            hint=did_you_mean(query.dialect, DIALECTS) or "use one of " + ", ".join(DIALECTS),
        )
    if not query.metrics:
        raise _error(
            "no metrics requested", code="no_metrics", location="metrics", hint="pass --metrics a,b"
        )
    for index, name in enumerate(query.metrics):
        if name not in manifest.metrics:
            raise _error(
                MSG_UNKNOWN_METRIC.format(name=name),
                code="unknown_metric",
                location=f"metrics[{index}]",
                hint=did_you_mean(name, manifest.metrics),
            )
    if query.limit is not None and not 0 <= query.limit <= MAX_LIMIT:
        raise _error(
            f"limit {query.limit} is out of range",
            code="bad_limit",
            location="limit",
            hint=f"use 0 to {MAX_LIMIT:,}",
        )
    if (
        query.start_time
        and query.end_time
        and _date(query.start_time, "start_time") > _date(query.end_time, "end_time")
    ):
        raise _error(
            f"start_time {query.start_time} is after end_time {query.end_time}",
            code="bad_time_range",
            location="start_time",
            hint="swap them",
        )


def _output_order(item: GroupByItem) -> tuple[int, int, str]:
    """MetricFlow's column order: metric_time first, then by join depth, then by name."""
    return (0 if item.element == METRIC_TIME else 1, len(item.entity_path), item.text)


def parse_group_by(text: str, location: str) -> GroupByItem:
    """``metric_time__month`` / ``account__plan`` / ``user__account__region`` / ``account``.

    Example:
        >>> parse_group_by("user__account__created_at__month", "group_by[0]")
        GroupByItem(text='user__account__created_at__month', kind='time', element='created_at', entity_path=('user', 'account'), grain='month')
    """
    parts = text.strip().lower().split("__")
    if not all(parts):
        raise _error(
            f"malformed group-by item {text!r}", code="unknown_dimension", location=location
        )
    grain = parts[-1] if parts[-1] in GRAINS and len(parts) > 1 else None
    if grain:
        parts = parts[:-1]
    if parts == [METRIC_TIME]:
        return GroupByItem(text.strip().lower(), "time", METRIC_TIME, (), grain)
    if len(parts) == 1:
        return GroupByItem(text.strip().lower(), "entity", parts[0], (), None)
    return GroupByItem(
        text.strip().lower(), "time" if grain else "dimension", parts[-1], tuple(parts[:-1]), grain
    )


# --------------------------------------------------------------------------- plan


def _measure_leaf(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    offset: tuple[str, str] | None = None,
) -> Leaf:
    """The one aggregation a simple or cumulative metric reads (its alias is its identity)."""
    params = metric.params
    measure_ref = params.get("measure") or {}
    ref = measure_ref if isinstance(measure_ref, Mapping) else {"name": str(measure_ref)}
    filters = filters + _as_tuple(ref.get("filter"))
    measure = manifest.measures[str(ref["name"])]
    spine = bool(ref.get("join_to_timespine"))
    cumulative = None
    if metric.type == "cumulative":
        cparams = params.get("cumulative_type_params") or {}
        window = cparams.get("window") or params.get("window")
        grain_to_date = cparams.get("grain_to_date") or params.get("grain_to_date")
        parsed_window = None
        if window:
            count, unit = str(window).split()
            parsed_window = (int(count), unit.rstrip("s").lower())
        cumulative = Cumulative(
            parsed_window,
            str(grain_to_date).lower() if grain_to_date else None,
            str(cparams.get("period_agg") or "first").lower(),
        )
    alias = _leaf_alias(measure.name, filters) + ("__spine" if spine else "")
    if cumulative is not None:
        alias += "__" + cumulative.tag
    if offset is not None:
        alias += "__offset_" + "_".join(offset[1].split())
    return Leaf(alias, measure, filters, spine, cumulative, ref.get("fill_nulls_with"), offset)


def _offset_of(ref: Mapping[str, Any]) -> tuple[str, str] | None:
    if ref.get("offset_window"):
        return ("window", str(ref["offset_window"]).lower())
    if ref.get("offset_to_grain"):
        return ("to_grain", str(ref["offset_to_grain"]).lower())
    return None


def _conversion_params(metric: Metric) -> Mapping[str, Any]:
    return metric.params.get("conversion_type_params") or {}


def _conversion_leaves(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    offset: tuple[str, str] | None,
) -> tuple[Leaf, Leaf]:
    """The base aggregation and the conversions aggregation of a conversion metric."""
    params = _conversion_params(metric)
    base_ref = _ref(params["base_measure"])
    conv_ref = _ref(params["conversion_measure"])
    base_filters = filters + _as_tuple(base_ref.get("filter"))
    base_measure = manifest.measures[str(base_ref["name"])]
    conv_measure = manifest.measures[str(conv_ref["name"])]
    base_alias = _leaf_alias(base_measure.name, base_filters)
    window = params.get("window")
    parsed = None
    if window:
        count, unit = str(window).split()
        parsed = (int(count), unit.rstrip("s").lower())
    spec = Conversion(
        str(params["entity"]),
        parsed,
        base_measure,
        base_filters,
        _constant_properties(metric),
        metric.name,
    )
    # The conversion measure's own filter applies to conversion events (MetricFlow drops it;
    # see the conformance suite). Query filters apply to the base events, whose dimensions
    # the conversions are reported under.
    conv_filters = _as_tuple(conv_ref.get("filter"))
    conv_alias = _leaf_alias(conv_measure.name, conv_filters) + "__" + spec.tag
    if base_alias == base_measure.name and filters:
        base_alias = _leaf_alias(base_measure.name, base_filters)
    suffix = ("__offset_" + "_".join(offset[1].split())) if offset else ""
    base = Leaf(base_alias + suffix, base_measure, base_filters, offset=offset)
    converted = Leaf(
        conv_alias + suffix, conv_measure, conv_filters, offset=offset, conversion=spec
    )
    return base, converted


def _constant_properties(metric: Metric) -> tuple[tuple[str, str], ...]:
    """``constant_properties`` of a conversion metric as (base, conversion) element names."""
    pairs = []
    for index, raw in enumerate(_conversion_params(metric).get("constant_properties") or ()):
        base = raw.get("base_property") if isinstance(raw, Mapping) else None
        conversion = raw.get("conversion_property") if isinstance(raw, Mapping) else None
        if not (isinstance(base, str) and isinstance(conversion, str)):
            raise _error(
                MSG_BAD_CONSTANT_PROPERTY.format(metric=metric.name, index=index),
                code="bad_metric",
                location=f"metric {metric.name}",
                hint="write {base_property: <name>, conversion_property: <name>}",
            )
        pairs.append((base.strip().lower(), conversion.strip().lower()))
    return tuple(pairs)


def _leaves(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    seen: tuple[str, ...],
    offset: tuple[str, str] | None = None,
) -> list[Leaf]:
    """Expands a metric to the measure aggregations it needs."""
    filters = filters + metric.filters
    if metric.type in ("simple", "cumulative"):
        return [_measure_leaf(metric, manifest, filters, offset)]
    if metric.type == "conversion":
        return list(_conversion_leaves(metric, manifest, filters, offset))
    if metric.type in ("ratio", "derived"):
        out: list[Leaf] = []
        for ref in _metric_inputs(metric):
            child_offset = _offset_of(ref) or offset
            if _offset_of(ref) and offset:
                raise _error(
                    MSG_UNSUPPORTED.format(what="an offset metric inside another offset"),
                    code="unsupported_metric",
                    location=f"metric {metric.name}",
                )
            child = manifest.metrics[ref["name"]]
            child_filters = filters + _as_tuple(ref.get("filter"))
            out.extend(_leaves(child, manifest, child_filters, (*seen, metric.name), child_offset))
        return out
    raise _error(
        MSG_UNSUPPORTED.format(what=f"{metric.type} metric {metric.name!r}"),
        code="unsupported_metric",
        location=f"metric {metric.name}",
        hint="conversion metrics arrive with the next compiler release",
    )


def _as_tuple(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _metric_inputs(metric: Metric) -> list[Mapping[str, Any]]:
    params = metric.params
    if metric.type == "ratio":
        return [_ref(params["numerator"]), _ref(params["denominator"])]
    return [_ref(m) for m in params.get("metrics") or []]


def _ref(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {"name": str(value)}


def _leaf_alias(measure: str, filters: tuple[str, ...]) -> str:
    if not filters:
        return measure
    # Stable, readable, distinct per filter set: goldens must not change run to run.
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(filters)).encode()).hexdigest()[:8]
    return f"{measure}__f{digest}"


# --------------------------------------------------------------------------- SQL


# Built once: DataType.build and string arguments to sqlglot's builders run the parser, which
# is most of the cost of a compile when done per node.
DOUBLE = exp.DataType.build("DOUBLE")
TIMESTAMP = exp.DataType.build("TIMESTAMP")
INT = exp.DataType.build("INT")


def _cte_ref(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name))


def _join(
    select: exp.Select,
    source: exp.Expr,
    *,
    on: exp.Expr | None = None,
    side: str | None = None,
    kind: str | None = None,
) -> exp.Select:
    """Appends a JOIN node (Select.join would parse its join_type string on every call)."""
    join = exp.Join(this=source, on=on)
    if side:
        join.set("side", side)
    if kind:
        join.set("kind", kind)
    select.append("joins", join)
    return select


def _table(relation: tuple[str | None, str, str], alias: str) -> exp.Expr:
    database, schema, name = relation
    table = exp.table_(name, db=schema, catalog=database)
    return table.as_(alias, copy=False) if alias else table


@functools.lru_cache(maxsize=8192)
def _parsed_definition(sql: str, alias: str) -> exp.Expr:
    # Security hook (issue 18): definitions are data; the guard refuses anything but columns,
    # literals, operators and allowed functions (fail closed, whatever validation said).
    tree = parse_definition(sql, location=f"{alias}.expr", own=alias)
    for node in tree.walk():
        # The parser's token positions are of no use here, and copying them (a deepcopy of
        # a dict per identifier) was the largest single cost of compiling.
        node._meta = None
        if isinstance(node, exp.Column) and not node.table:
            node.set("table", exp.to_identifier(alias))
    return tree


def _definition_expr(sql: str, alias: str) -> exp.Expr:
    """A trusted expression from a reviewed definition, columns qualified with ``alias``.

    Parsing is the costliest step of compiling, and definitions are immutable per release,
    so each (expression, alias) is parsed once per process; callers get a private copy.
    """
    # Expression.__deepcopy__ copies the tree itself; going through copy.deepcopy() only adds
    # its memo bookkeeping, a tenth of the compile time.
    return _parsed_definition(sql, alias).__deepcopy__(None)


def _trunc(expression: exp.Expr, grain: str) -> exp.Expr:
    return exp.TimestampTrunc(this=expression, unit=exp.Var(this=grain.upper()))


@dataclass
class _Source:
    """FROM one semantic model with the joins its group-by and filter items need."""

    model: SemanticModel
    manifest: Manifest
    metric_name: str
    joins: dict[tuple[str, ...], tuple[SemanticModel, exp.Expr]] = field(default_factory=dict)
    # Metric() filter subqueries (CTE name → join condition), LEFT JOINed after the entities.
    metric_joins: dict[str, exp.Expr] = field(default_factory=dict)

    @property
    def alias(self) -> str:
        return self.model.name

    def walk(self, path: tuple[str, ...], item: str) -> tuple[SemanticModel, str]:
        """Follows an entity path from this model; returns (model, table alias) at its end."""
        current, alias = self.model, self.alias
        for depth, entity in enumerate(path):
            if depth == 0 and entity == current.primary_entity and len(path) == 1:
                return current, alias
            if entity not in current.entities:
                raise _error(
                    MSG_UNREACHABLE.format(name=item, metric=self.metric_name),
                    code="unreachable_dimension",
                    location="group_by",
                    hint=f"{current.name!r} has no entity {entity!r}; it links "
                    + ", ".join(sorted(current.entities)),
                )
            targets = [
                m for m in self.manifest.models_with_unique_entity(entity) if m.name != current.name
            ]
            if not targets:
                raise _error(
                    MSG_FAN_OUT.format(model=current.name, entity=entity),
                    code="fan_out",
                    location="group_by",
                    hint=f"no semantic model has {entity!r} as a primary or unique entity",
                )
            if len(targets) > 1:
                names = ", ".join(sorted(t.name for t in targets))
                raise _error(
                    f"ambiguous join path for {item!r}: {entity!r} is unique in {names}",
                    code="ambiguous_join",
                    location="group_by",
                )
            target = targets[0]
            key = path[: depth + 1]
            target_alias = "__".join(key) + "__" + target.name
            if key not in self.joins:
                left = _definition_expr(current.entities[entity].expr, alias)
                right = _definition_expr(target.entities[entity].expr, target_alias)
                self.joins[key] = (target, exp.EQ(this=left, expression=right))
            current, alias = target, target_alias
        return current, alias

    def item_expr(self, item: GroupByItem, measure: Measure) -> exp.Expr:
        if item.kind == "time" and item.element == METRIC_TIME:
            dim = self.model.dimensions.get(measure.agg_time_dimension)
            if dim is None:
                raise _error(
                    f"measure {measure.name!r} has no agg_time_dimension for metric_time",
                    code="unreachable_dimension",
                    location="group_by",
                )
            return self._time(dim, self.alias, item)
        if item.kind == "entity":
            if item.element in self.model.entities:
                return _definition_expr(self.model.entities[item.element].expr, self.alias)
            model, alias = self.walk((item.element,), item.text)
            return _definition_expr(model.entities[item.element].expr, alias)
        model, alias = self.walk(item.entity_path, item.text)
        dim = model.dimensions.get(item.element)
        if dim is None and item.element in model.entities and not item.grain:
            # An entity reached along a path (account__parent_account): its key column.
            return _definition_expr(model.entities[item.element].expr, alias)
        if dim is None:
            raise _error(
                MSG_UNKNOWN_ITEM.format(name=item.text, metric=self.metric_name),
                code="unknown_dimension",
                location="group_by",
                hint=did_you_mean(item.element, model.dimensions),
            )
        if dim.type == "time":
            return self._time(dim, alias, item)
        if item.grain:
            raise _error(
                f"{item.text!r} is not a time dimension", code="bad_grain", location="group_by"
            )
        return _definition_expr(dim.expr, alias)

    def _time(self, dim: Any, alias: str, item: GroupByItem) -> exp.Expr:
        grain = item.grain or dim.grain or "day"
        allowed = GRAINS[GRAINS.index(dim.grain or "day") :]
        if grain not in allowed:
            raise _error(
                MSG_BAD_GRAIN.format(grain=grain, name=item.text, allowed=", ".join(allowed)),
                code="bad_grain",
                location="group_by",
            )
        return _trunc(_definition_expr(dim.expr, alias), grain)

    def from_clause(self, select: exp.Select, base: exp.Expr | None = None) -> exp.Select:
        """FROM the model's table (or ``base``, a derived table under the model's alias) and
        LEFT JOINs to every model the items reached."""
        select = select.from_(
            base if base is not None else _table(self.model.relation, self.alias), copy=False
        )
        for key, (target, condition) in self.joins.items():
            target_alias = "__".join(key) + "__" + target.name
            select = _join(select, _table(target.relation, target_alias), on=condition, side="LEFT")
        for name, condition in self.metric_joins.items():
            select = _join(select, _cte_ref(name), on=condition.copy(), side="LEFT")
        return select


_AGGS = {
    "sum": lambda e: exp.Sum(this=e),
    "max": lambda e: exp.Max(this=e),
    "min": lambda e: exp.Min(this=e),
    "average": lambda e: exp.Avg(this=e),
    "count": lambda e: exp.Count(this=e),
    "count_distinct": lambda e: exp.Count(this=exp.Distinct(expressions=[e])),
    "sum_boolean": lambda e: exp.Sum(this=exp.Cast(this=e, to=INT.copy())),
}


# How partial aggregates of a decomposable aggregation combine: daily sums and counts add
# up, minima and maxima take the min/max again.
_PARTIAL_AGGS = {
    "sum": lambda e: exp.Sum(this=e),
    "count": lambda e: exp.Sum(this=e),
    "sum_boolean": lambda e: exp.Sum(this=e),
    "min": lambda e: exp.Min(this=e),
    "max": lambda e: exp.Max(this=e),
}


def _aggregate(measure: Measure, value: exp.Expr) -> exp.Expr:
    if measure.agg in _AGGS:
        return _AGGS[measure.agg](value)
    if measure.agg in ("median", "percentile"):
        quantile = 0.5 if measure.agg == "median" else float(measure.percentile or 0.5)
        cls = exp.PercentileDisc if measure.use_discrete_percentile else exp.PercentileCont
        return exp.WithinGroup(
            this=cls(this=exp.Literal.number(quantile)),
            expression=exp.Order(expressions=[exp.Ordered(this=value)]),
        )
    raise _error(
        MSG_UNSUPPORTED.format(what=f"aggregation {measure.agg!r}"),
        code="unsupported_metric",
        location=measure.name,
    )


def _where(
    filters: tuple[str, ...], source: _Source, measure: Measure, location: str
) -> list[exp.Expr]:
    if not filters:
        return []
    from semantic.compiler.where import parse_where, substitute

    conditions = []
    for index, template in enumerate(filters):
        parsed = parse_where(template, location=f"{location}[{index}]")
        columns: dict[str, exp.Expr] = {}
        for ref in parsed.refs:
            if ref.kind == "metric":
                columns[ref.placeholder] = _metric_filter_column(
                    ref, source, f"{location}[{index}]"
                )
                continue
            path = tuple(ref.entity_path)
            if ref.kind == "entity":
                item = (
                    GroupByItem(ref.text, "entity", ref.name, (), None)
                    if not path
                    else GroupByItem(ref.text, "dimension", ref.name, path, None)
                )
                if path:
                    model, alias = source.walk(path, ref.text)
                    columns[ref.placeholder] = _definition_expr(
                        model.entities[ref.name].expr, alias
                    )
                    continue
            elif ref.name == METRIC_TIME:
                item = GroupByItem(ref.text, "time", METRIC_TIME, (), ref.grain or "day")
            else:
                kind = "time" if ref.kind == "time_dimension" or ref.grain else "dimension"
                item = GroupByItem(ref.text, kind, ref.name, path, ref.grain)
            columns[ref.placeholder] = source.item_expr(item, measure)
        condition = substitute(parsed, columns)
        access = _ACCESS.get(None)
        if access is not None and access.masks:
            from semantic.compiler.policies import check_unmasked

            check_unmasked(condition, source, access, f"{location}[{index}]")
        conditions.append(condition)
    return conditions


@dataclass
class _FilterCtes:
    """The Metric() filter subqueries of one compile, flattened into CTEs in dependency order.

    ``stack`` lists the metrics whose subqueries are being built (outermost first), so that a
    metric whose filter needs itself is refused instead of recursing forever.
    """

    stack: tuple[str, ...] = ()
    ctes: dict[str, exp.Expr] = field(default_factory=dict)

    def add(self, name: str, select: exp.Select, nested: _FilterCtes) -> None:
        """Registers a subquery (compiled under ``nested``) as CTE ``name``, hoisting its own
        CTEs: its aggregations get ``name`` as a prefix; nested filter CTEs keep their names,
        which depend only on (metric, group_by), so equal subqueries are built once."""
        for inner_name, inner in nested.ctes.items():
            self.ctes.setdefault(inner_name, inner)
        with_ = select.args.get("with_")
        select.set("with_", None)
        own = {
            cte.alias: _bounded_name(f"{name}__{cte.alias}")
            for cte in (with_.expressions if with_ else [])
        }
        for cte in with_.expressions if with_ else []:
            self.ctes.setdefault(own[cte.alias], _renamed_tables(cte.this, own))
        self.ctes.setdefault(name, _renamed_tables(select, own))

    def prepend_to(self, select: exp.Select) -> None:
        """Puts the filter CTEs first in ``select``'s WITH (the aggregations read them)."""
        if not self.ctes:
            return
        with_ = select.args.get("with_")
        ctes = [
            exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(name)))
            for name, body in self.ctes.items()
        ]
        select.set("with_", exp.With(expressions=[*ctes, *(with_.expressions if with_ else [])]))


_FILTER_CTES: contextvars.ContextVar[_FilterCtes] = contextvars.ContextVar("_FILTER_CTES")
# Row policies and masking of the compile in progress (None: a trusted caller, nothing to do).
_ACCESS: contextvars.ContextVar[Any] = contextvars.ContextVar("_ACCESS", default=None)
# Metric() filters may nest (a metric whose own filter has a Metric()); beyond this depth the
# definitions are almost certainly a mistake, and each level compiles a whole query.
MAX_FILTER_METRIC_DEPTH = 4


# PostgreSQL truncates identifiers to 63 characters (two CTEs could then share a name) and
# MySQL refuses names over 64: filter CTE names stay below both, with room for a suffix.
MAX_FILTER_NAME = 40
MAX_IDENTIFIER = 60


def _bounded_name(name: str, limit: int = MAX_IDENTIFIER) -> str:
    """``name``, or its start plus a stable digest of all of it when longer than ``limit``.

    Example:
        >>> _bounded_name("filter_revenue_by_account")
        'filter_revenue_by_account'
        >>> len(_bounded_name("filter_" + "x" * 80, 40))
        40
    """
    if len(name) <= limit:
        return name
    import hashlib

    return name[: limit - 9] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _renamed_tables(tree: exp.Expr, names: Mapping[str, str]) -> exp.Expr:
    """``tree`` with references to the CTEs ``names`` (unqualified tables) renamed; each keeps
    its old name as alias, so the columns qualified with it still resolve."""
    if not names:
        return tree
    for table in list(tree.find_all(exp.Table)):
        if not table.db and table.name in names:
            old = table.name
            table.set("this", exp.to_identifier(names[old]))
            if not table.alias:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(old)))
    return tree


def _metric_filter_column(ref: Any, source: _Source, location: str) -> exp.Expr:
    """``{{ Metric('revenue', group_by=['account']) }}`` in a filter, MetricFlow's semantics:
    the metric is computed per ``account`` by the same compiler (with its own filters, but no
    query where or time range), LEFT JOINed to the filtered rows on their own ``account``
    entity, and the filter reads its value: rows without a match see NULL.

    Args:
        ref: The filter item (a ``QueryItemRef`` of kind ``metric``).
        source: The scan being filtered; the join is registered on it.
        location: Where the filter came from (``where[0]``, ``filter[1]``).

    Returns:
        The joined metric column.

    Raises:
        QueryError: unknown metric, a group_by that is not one entity of the filtered model,
            a metric that filters on itself, or any error compiling the inner query.
    """
    manifest = source.manifest
    shown = _shown_metric_ref(ref)
    group_by, entity = _metric_ref_entity(ref, manifest, location)
    model = source.model
    if entity not in model.entities:
        raise _error(
            MSG_FILTER_METRIC_UNJOINABLE.format(item=shown, model=model.name, entity=entity),
            code="unreachable_dimension",
            location=location,
            hint=HINT_FILTER_METRIC_UNJOINABLE.format(
                model=model.name, entities=", ".join(sorted(model.entities))
            ),
        )
    state = _FILTER_CTES.get(None) or _FilterCtes()
    if ref.name in state.stack or len(state.stack) >= MAX_FILTER_METRIC_DEPTH:
        raise _error(
            MSG_FILTER_METRIC_CYCLE.format(path=" → ".join([*state.stack, ref.name])),
            code="bad_where",
            location=location,
        )
    name = _bounded_name(f"filter_{ref.name}_by_{group_by}", MAX_FILTER_NAME)
    if name not in state.ctes:
        nested = _FilterCtes(stack=(*state.stack, ref.name))
        token = _FILTER_CTES.set(nested)
        try:
            inner, _ = _query_select(
                MetricQuery(metrics=(ref.name,), group_by=(group_by,)), manifest, {}
            )
        except QueryError as error:
            # The inner query's own error, said about the filter item that caused it.
            raise QueryError(
                f"{shown}: {error.message}",
                code=error.code,
                hint=error.hint,
                location=location,
                details=error.details,
            ) from None
        finally:
            _FILTER_CTES.reset(token)
        state.add(name, inner, nested)
    source.metric_joins[name] = exp.EQ(
        this=_definition_expr(model.entities[entity].expr, source.alias),
        expression=exp.column(group_by, table=name),
    )
    return exp.column(ref.name, table=name)


def _shown_metric_ref(ref: Any) -> str:
    return f"Metric({ref.name!r}, group_by={list(ref.group_by)!r})"


def _metric_ref_entity(ref: Any, manifest: Manifest, location: str) -> tuple[str, str]:
    """A Metric() item's one group_by name and the entity it ends with (what the subquery
    joins on), as MetricFlow requires: a known metric and exactly one entity."""
    shown = _shown_metric_ref(ref)
    if ref.name not in manifest.metrics:
        raise _error(
            MSG_UNKNOWN_METRIC.format(name=ref.name),
            code="unknown_metric",
            location=location,
            hint=did_you_mean(ref.name, manifest.metrics),
        )
    if len(ref.group_by) != 1:
        raise _error(
            MSG_FILTER_METRIC_GROUP_BY.format(item=shown, count=len(ref.group_by)),
            code="bad_where",
            location=location,
            hint=HINT_FILTER_METRIC_GROUP_BY.format(name=ref.name),
        )
    group_by = ref.group_by[0]
    entity = group_by.split("__")[-1]
    entities = sorted({e for m in manifest.semantic_models.values() for e in m.entities})
    if entity not in entities:
        raise _error(
            MSG_FILTER_METRIC_NOT_ENTITY.format(group_by=group_by, item=shown),
            code="unknown_dimension",
            location=location,
            hint=did_you_mean(entity, entities) or "entities: " + ", ".join(entities),
        )
    return group_by, entity


def check_filter_metric(manifest: Manifest, ref: Any, metric_name: str, location: str) -> None:
    """Validate-time check of a ``Metric()`` item in a filter of ``metric_name`` without
    compiling the subquery: the referenced metric exists, its one group_by entity is a local
    entity of every semantic model ``metric_name`` reads, and the referenced metric can be
    grouped by it.

    Args:
        manifest: The definitions.
        ref: The filter item (a ``QueryItemRef`` of kind ``metric``).
        metric_name: The metric whose filter holds the item.
        location: Where the filter is, for the error.

    Raises:
        QueryError: the first problem, with the compiler's code, message and hint.

    Example:
        >>> from semantic.compiler.where import parse_where
        >>> ref = parse_where("{{ Metric('revnue', group_by=['account']) }} > 1").refs[0]
        >>> check_filter_metric(Manifest("", {}, {}, {}, {}, None), ref, "arpa", "filter")
        Traceback (most recent call last):
        tally.errors.QueryError: unknown metric 'revnue'
    """
    group_by, entity = _metric_ref_entity(ref, manifest, location)
    shown = _shown_metric_ref(ref)
    try:
        leaves = _leaves(manifest.metrics[metric_name], manifest, (), ())
        groupable = queryable_items(manifest, ref.name)
    except QueryError:
        return  # a metric the compiler refuses is reported where it is queried, not here
    for leaf in leaves:
        model = manifest.semantic_models[leaf.measure.semantic_model]
        if entity not in model.entities and not leaf.conversion:
            raise _error(
                MSG_FILTER_METRIC_UNJOINABLE.format(item=shown, model=model.name, entity=entity),
                code="unreachable_dimension",
                location=location,
                hint=HINT_FILTER_METRIC_UNJOINABLE.format(
                    model=model.name, entities=", ".join(sorted(model.entities))
                ),
            )
    if group_by not in groupable:
        raise _error(
            f"{shown}: " + MSG_UNREACHABLE.format(name=group_by, metric=ref.name),
            code="unreachable_dimension",
            location=location,
        )


def _query_select(
    query: MetricQuery, manifest: Manifest, timings: dict[str, float]
) -> tuple[exp.Select, list[str]]:
    """The query as one SELECT with its CTEs, and its group-by output columns; Metric()
    filter subqueries are left in the current ``_FILTER_CTES`` for the caller to place."""
    started = time.perf_counter()
    _check_query(query, manifest)
    items = sorted(
        (parse_group_by(g, f"group_by[{i}]") for i, g in enumerate(query.group_by)),
        key=_output_order,
    )
    timings["resolve"] = time.perf_counter() - started

    started = time.perf_counter()
    metric_leaves: dict[str, list[Leaf]] = {}
    # One aggregation per (model, agg time dimension, filters): measures that share all three
    # share a scan; a different agg_time_dimension means a different metric_time column.
    groups: dict[tuple[str, str, tuple[str, ...], bool, str, str, str, str], list[Leaf]] = {}
    for name in query.metrics:
        leaves = _leaves(manifest.metrics[name], manifest, (), ())
        metric_leaves[name] = leaves
        for leaf in leaves:
            key = (
                leaf.measure.semantic_model,
                leaf.measure.agg_time_dimension,
                tuple(sorted(set(leaf.filters))),
                leaf.join_to_timespine,
                leaf.cumulative.tag if leaf.cumulative else "",
                " ".join(leaf.offset) if leaf.offset else "",
                _non_additive_tag(leaf.measure),
                leaf.conversion.tag if leaf.conversion else "",
            )
            bucket = groups.setdefault(key, [])
            if leaf.alias not in {other.alias for other in bucket}:
                bucket.append(leaf)
    timings["plan"] = time.perf_counter() - started

    started = time.perf_counter()
    keys = [item.column for item in items]
    ctes: list[tuple[str, exp.Select]] = []
    for index, (
        (model_name, _, filters, spine, cumulative, offset, _na, conv),
        leaves,
    ) in enumerate(sorted(groups.items())):
        model = manifest.semantic_models[model_name]
        source = _Source(model, manifest, leaves[0].measure.name)
        anchor = leaves[0].measure
        if conv:
            # Conversions read base and conversion events themselves; the group-by items and
            # the query's where belong to the base events, which the conversion events' model
            # need not reach (MetricFlow's semantics).
            select = _conversion_select(leaves[0], items, manifest, query)
            if offset:
                select = _offset_select(select, items, leaves, manifest, query)
            ctes.append((f"agg_{index}_{model_name}", select))
            continue
        select = exp.select(
            *[source.item_expr(item, anchor).as_(item.column, copy=False) for item in items]
        )
        for leaf in leaves:
            value = _definition_expr(leaf.measure.expr, source.alias)
            select = select.select(
                _aggregate(leaf.measure, value).as_(leaf.alias, copy=False), copy=False
            )
        conditions = _where(tuple(query.where), source, anchor, "where") + _where(
            filters, source, anchor, "filter"
        )
        spec = leaves[0].cumulative
        if spec and not spec.window and not spec.grain_to_date and not _metric_time_item(items):
            # All-time without metric_time is the total over every row, as in MetricFlow: a
            # plain aggregation (also what a Metric() filter on it groups by entity).
            cumulative = ""
        if cumulative:
            select = _cumulative_select(
                source,
                items,
                leaves,
                conditions,
                manifest,
                query if not offset else _unbounded(query),
                anchor,
            )
            if offset:
                select = _offset_select(select, items, leaves, manifest, query)
            ctes.append((f"agg_{index}_{model_name}", select))
            continue
        if not offset:
            # An offset input reads periods before the range; the range applies after shifting.
            conditions += _time_range(query, source, anchor, items)
        if anchor.non_additive:
            select = _non_additive_select(source, items, leaves, conditions, anchor)
        else:
            select = source.from_clause(select)
            for condition in conditions:
                select = select.where(condition, copy=False)
        if keys:
            select = select.group_by(
                *[exp.Literal.number(i + 1) for i in range(len(keys))], copy=False
            )
        if spine:
            select = _join_to_time_spine(select, items, leaves, manifest, query)
        if offset:
            select = _offset_select(select, items, leaves, manifest, query)
        ctes.append((f"agg_{index}_{model_name}", select))

    final = _combine(ctes, keys)
    outputs: list[exp.Expr] = [exp.column(k, table="combined") for k in keys]
    for name in query.metrics:
        outputs.append(
            _metric_value(manifest.metrics[name], manifest, metric_leaves).as_(name, copy=False)
        )
    result = exp.select(*outputs).from_(final, copy=False)
    if ctes:
        result.set(
            "with_",
            exp.With(
                expressions=[
                    exp.CTE(this=cte, alias=exp.TableAlias(this=exp.to_identifier(name)))
                    for name, cte in ctes
                ]
            ),
        )
    result = _order_limit(result, query, keys)
    timings["to_sql"] = time.perf_counter() - started
    return result, keys


def compile_query(
    query: MetricQuery,
    manifest: Manifest,
    *,
    level: int | None = None,
    principal: Principal | None = None,
    mask_default: str = "hash",
) -> CompiledQuery:
    """Compiles a metric query to SQL for its dialect.

    ``level`` runs that many of ``SQL_PASSES`` (0: none; default: all); every level gives
    the same rows. ``principal`` (None: a trusted caller) injects the row policies into
    every read of a semantic model and masks PII columns (``mask_default``: "hash" or
    "null" for columns whose contract does not choose); see semantic.compiler.policies.

    Raises:
        QueryError: unknown names (with suggestions), unreachable dimensions, bad filters,
            unsupported options, a filter on a masked column, a malformed row policy; never
            an exception of another type for user input.
    """
    timings: dict[str, float] = {}
    filter_ctes = _FilterCtes()
    token = _FILTER_CTES.set(filter_ctes)
    access = None
    if principal is not None:
        from semantic.compiler.policies import Access

        access = Access(manifest, principal, query.dialect, mask_default)
    access_token = _ACCESS.set(access)
    try:
        result, keys = _query_select(query, manifest, timings)
    finally:
        _FILTER_CTES.reset(token)
        _ACCESS.reset(access_token)
    filter_ctes.prepend_to(result)

    if access is not None:
        from semantic.compiler.policies import mask_columns

        started = time.perf_counter()
        mask_columns(result, access)  # in place: the root is a SELECT, never replaced
        timings["mask"] = time.perf_counter() - started

    started = time.perf_counter()
    tree = optimize(result, level)
    timings["sql_passes"] = time.perf_counter() - started

    if access is not None:
        from semantic.compiler.policies import secure_tables

        started = time.perf_counter()
        tree = secure_tables(tree, access)
        timings["row_policies"] = time.perf_counter() - started

    started = time.perf_counter()
    header = f"-- tally release {manifest.release or 'unreleased'}: " + ", ".join(
        f"{m}@{manifest.metrics[m].version}" for m in query.metrics
    )
    sql = header + "\n" + render(tree, query.dialect)
    timings["render"] = time.perf_counter() - started
    return CompiledQuery(
        sql=sql,
        dialect=query.dialect,
        columns=(*keys, *query.metrics),
        release=manifest.release,
        versions={m: manifest.metrics[m].version for m in query.metrics},
        timings=timings,
        parameters=access.parameters if access is not None else (),
    )


def _period_bounds(start: dt.date, end: dt.date, grain: str) -> tuple[dt.date, dt.date]:
    """Widens [start, end] to whole periods of ``grain``, as MetricFlow does: a query for
    2026-01-01..2026-06-30 by week reads 2025-12-29..2026-07-05.

    Example:
        >>> _period_bounds(dt.date(2026, 1, 1), dt.date(2026, 6, 30), "week")
        (datetime.date(2025, 12, 29), datetime.date(2026, 7, 5))
    """

    def floor(day: dt.date) -> dt.date:
        if grain == "week":
            return day - dt.timedelta(days=day.weekday())
        if grain == "month":
            return day.replace(day=1)
        if grain == "quarter":
            return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
        if grain == "year":
            return day.replace(month=1, day=1)
        return day

    def next_period(day: dt.date) -> dt.date:
        if grain == "week":
            return day + dt.timedelta(days=7)
        months = {"month": 1, "quarter": 3, "year": 12}.get(grain)
        if months is None:
            return day + dt.timedelta(days=1)
        total = day.year * 12 + day.month - 1 + months
        return dt.date(total // 12, total % 12 + 1, 1)

    try:
        return floor(start), next_period(floor(end)) - dt.timedelta(days=1)
    except (ValueError, OverflowError):
        # An open end (9999-12-31) has no next period: the range runs to the last date.
        return floor(start), dt.date.max


def _time_range(
    query: MetricQuery, source: _Source, measure: Measure, items: list[GroupByItem]
) -> list[exp.Expr]:
    if not (query.start_time or query.end_time):
        return []
    dim = source.model.dimensions.get(measure.agg_time_dimension)
    if dim is None:
        return []
    grain = next(
        (i.grain or "day" for i in items if i.kind == "time" and i.element == METRIC_TIME), "day"
    )
    start = _date(query.start_time, "start_time") if query.start_time else dt.date(1, 1, 1)
    end = _date(query.end_time, "end_time") if query.end_time else dt.date(9999, 12, 31)
    low, high = _period_bounds(start, end, grain)
    column = _definition_expr(dim.expr, source.alias)
    return _day_range(column, low if query.start_time else None, high if query.end_time else None)


def _day_range(column: exp.Expr, first: dt.date | None, last: dt.date | None) -> list[exp.Expr]:
    """``first <= DATE_TRUNC('day', column) <= last``, written on the bare column
    (``column >= first AND column < last + 1 day``) so the warehouse can prune storage by
    the column's min/max statistics, which a truncated column defeats."""
    bounds: list[exp.Expr] = []
    if first is not None:
        bounds.append(exp.GTE(this=column, expression=_timestamp_literal(first)))
    if last is not None:
        bounds.append(
            exp.LT(this=column.copy(), expression=_timestamp_literal(last + dt.timedelta(days=1)))
        )
    return bounds


def _date(value: str, location: str) -> dt.date:
    try:
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        raise _error(
            f"{value!r} is not an ISO date or timestamp",
            code="bad_time_range",
            location=location,
            hint="use 2026-01-31 or 2026-01-31T12:00:00",
        ) from None


def _timestamp_literal(day: dt.date) -> exp.Expr:
    return exp.cast(exp.Literal.string(f"{day.isoformat()} 00:00:00"), TIMESTAMP.copy())


def _combine(ctes: list[tuple[str, exp.Select]], keys: list[str]) -> exp.Expr:
    """Merges the aggregations into one row per group-by key, as one subquery.

    MetricFlow FULL OUTER JOINs the aggregations. Here the distinct keys of all of them (a
    UNION, which also merges NULL keys) LEFT JOIN each aggregation null-safely: the same rows,
    and it runs everywhere (MySQL/MariaDB have no FULL JOIN; PostgreSQL refuses a FULL JOIN on
    a null-safe condition). Each aggregation is unique per key, so nothing fans out.
    """
    if len(ctes) == 1:
        return (
            exp.select(exp.Star())
            .from_(_cte_ref(ctes[0][0]), copy=False)
            .subquery("combined", copy=False)
        )
    values = [(name, [c.alias_or_name for c in cte.expressions[len(keys) :]]) for name, cte in ctes]
    if not keys:
        select = exp.select(*[exp.column(v, table=n) for n, names in values for v in names])
        select = select.from_(_cte_ref(ctes[0][0]), copy=False)
        for name, _ in ctes[1:]:
            select = _join(select, _cte_ref(name), kind="CROSS")
        return select.subquery("combined", copy=False)
    union: exp.Query = exp.select(*[exp.column(k) for k in keys]).from_(
        _cte_ref(ctes[0][0]), copy=False
    )
    for name, _ in ctes[1:]:
        branch = exp.select(*[exp.column(k) for k in keys]).from_(_cte_ref(name), copy=False)
        union = exp.union(union, branch, distinct=True, copy=False)
    select = exp.select(
        *[exp.column(k, table="all_keys") for k in keys],
        *[exp.column(v, table=n) for n, names in values for v in names],
    ).from_(union.subquery("all_keys", copy=False), copy=False)
    for name, _ in ctes:
        condition = exp.and_(
            *[
                exp.NullSafeEQ(
                    this=exp.column(k, table="all_keys"), expression=exp.column(k, table=name)
                )
                for k in keys
            ],
            copy=False,
        )
        select = _join(select, _cte_ref(name), on=condition, side="LEFT")
    return select.subquery("combined", copy=False)


def _metric_value(metric: Metric, manifest: Manifest, leaves: Mapping[str, list[Leaf]]) -> exp.Expr:
    return _metric_expr(metric, manifest, ())


def _conversion_select(
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
    base = _Source(base_model, manifest, spec.base_measure.name)
    conv = _Source(conv_model, manifest, leaf.measure.name)
    for model in (base_model, conv_model):
        if spec.entity not in model.entities:
            raise _error(
                f"conversion entity {spec.entity!r} is not an entity of {model.name!r}",
                code="unreachable_dimension",
                location="metrics",
            )

    def day(source: _Source, measure: Measure) -> exp.Expr:
        dim = source.model.dimensions[measure.agg_time_dimension]
        return _trunc(_definition_expr(dim.expr, source.alias), "day")

    # Constant properties (MetricFlow: an extra equality per pair in the join of base and
    # conversion events); each is a local dimension or entity of its own model.
    properties = [
        (
            _property_expr(base, base_property, spec.metric),
            _property_expr(conv, conversion_property, spec.metric),
        )
        for base_property, conversion_property in spec.constant_properties
    ]
    base_rows = exp.select(
        day(base, spec.base_measure).as_("base_day", copy=False),
        _definition_expr(base_model.entities[spec.entity].expr, base.alias).as_(
            "entity_key", copy=False
        ),
        *[base.item_expr(item, spec.base_measure).as_(item.column, copy=False) for item in items],
        *[value.as_(f"property_{n}", copy=False) for n, (value, _) in enumerate(properties)],
    )
    conditions = _where(tuple(query.where), base, spec.base_measure, "where") + _where(
        spec.base_filters, base, spec.base_measure, "filter"
    )
    conditions += _time_range(query, base, spec.base_measure, items)
    base_rows = base.from_clause(base_rows)
    for condition in conditions:
        base_rows = base_rows.where(condition, copy=False)

    conv_rows = exp.select(
        exp.Window(this=exp.RowNumber()).as_("conversion_id", copy=False),
        day(conv, leaf.measure).as_("conversion_day", copy=False),
        _definition_expr(conv_model.entities[spec.entity].expr, conv.alias).as_(
            "entity_key", copy=False
        ),
        _definition_expr(leaf.measure.expr, conv.alias).as_("conversion_value", copy=False),
        *[value.as_(f"property_{n}", copy=False) for n, (_, value) in enumerate(properties)],
    )
    # Filters first: resolving their items registers the joins that from_clause then emits.
    conv_conditions = _where(leaf.filters, conv, leaf.measure, "filter")
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
    matched = _join(matched, base_rows.subquery("base_events", copy=False), on=on, kind="INNER")
    select = exp.select(
        *[exp.column(item.column, table="matched") for item in items],
        _aggregate(leaf.measure, exp.column("conversion_value", table="matched")).as_(
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


def _property_expr(source: _Source, name: str, metric: str) -> exp.Expr:
    """A conversion constant property: a local dimension (a time dimension at its own grain,
    as MetricFlow resolves it) or entity of the source's model."""
    model = source.model
    dim = model.dimensions.get(name)
    if dim is not None:
        value = _definition_expr(dim.expr, source.alias)
        return _trunc(value, dim.grain or "day") if dim.type == "time" else value
    if name in model.entities:
        return _definition_expr(model.entities[name].expr, source.alias)
    raise _error(
        MSG_UNKNOWN_PROPERTY.format(name=name, metric=metric, model=model.name),
        code="unknown_dimension",
        location=f"metric {metric}" if metric else "metrics",
        hint=did_you_mean(name, [*model.dimensions, *model.entities]),
    )


def _non_additive_tag(measure: Measure) -> str:
    spec = measure.non_additive or {}
    if not spec:
        return ""
    groupings = ",".join(spec.get("window_groupings") or ())
    return f"{spec.get('name')}:{spec.get('window_choice', 'min')}:{groupings}"


def _non_additive_select(
    source: _Source,
    items: list[GroupByItem],
    leaves: list[Leaf],
    conditions: list[exp.Expr],
    anchor: Measure,
) -> exp.Select:
    """A semi-additive measure (end-of-period MRR), MetricFlow's semantics: keep only the rows
    whose non-additive time dimension (at day grain) is the max (or min) within each window
    grouping (and each metric_time period when grouped by time), then aggregate. A window
    function does it in one pass instead of MetricFlow's self-join."""
    spec = anchor.non_additive or {}
    dim = source.model.dimensions.get(str(spec.get("name")))
    if dim is None:
        raise _error(
            f"non-additive dimension {spec.get('name')!r} of {anchor.name!r} is not a dimension",
            code="unreachable_dimension",
            location="group_by",
        )
    day = _trunc(_definition_expr(dim.expr, source.alias), "day")
    partition = [
        source.item_expr(GroupByItem(g, "entity", g, (), None), anchor)
        for g in spec.get("window_groupings") or ()
    ]
    partition += [
        source.item_expr(i, anchor) for i in items if i.kind == "time" and i.element == METRIC_TIME
    ]
    choose = exp.Min if str(spec.get("window_choice", "min")).lower() == "min" else exp.Max
    limit = (
        exp.Window(this=choose(this=day.copy()), partition_by=partition)
        if partition
        else exp.Window(this=choose(this=day.copy()))
    )
    reads = {
        column.table
        for expression in (*conditions, *partition)
        for column in expression.find_all(exp.Column)
    }
    if reads <= {source.alias}:
        # The filters and the window read the measure's own table only: pick the rows
        # there, under the table's alias, and join dimension tables to the few rows kept.
        picked = exp.select(
            exp.Column(this=exp.Star(), table=exp.to_identifier(source.alias)),
            day.as_("tally_row_day", copy=False),
            limit.as_("tally_window_day", copy=False),
        ).from_(_table(source.model.relation, source.alias), copy=False)
        for condition in conditions:
            picked = picked.where(condition, copy=False)
        outer = exp.select(
            *[source.item_expr(item, anchor).as_(item.column, copy=False) for item in items],
            *[
                _aggregate(leaf.measure, _definition_expr(leaf.measure.expr, source.alias)).as_(
                    leaf.alias, copy=False
                )
                for leaf in leaves
            ],
        )
        outer = source.from_clause(outer, base=picked.subquery(source.alias, copy=False))
        return outer.where(
            exp.EQ(
                this=exp.column("tally_row_day", table=source.alias),
                expression=exp.column("tally_window_day", table=source.alias),
            ),
            copy=False,
        )
    inner = exp.select(
        *[source.item_expr(item, anchor).as_(item.column, copy=False) for item in items],
        *[
            _definition_expr(leaf.measure.expr, source.alias).as_(f"value_{n}", copy=False)
            for n, leaf in enumerate(leaves)
        ],
        day.as_("row_day", copy=False),
        limit.as_("window_day", copy=False),
    )
    inner = source.from_clause(inner)
    for condition in conditions:
        inner = inner.where(condition, copy=False)
    outer = exp.select(
        *[exp.column(item.column, table="measure_rows") for item in items],
        *[
            _aggregate(leaf.measure, exp.column(f"value_{n}", table="measure_rows")).as_(
                leaf.alias, copy=False
            )
            for n, leaf in enumerate(leaves)
        ],
    ).from_(inner.subquery("measure_rows", copy=False), copy=False)
    return outer.where(
        exp.EQ(
            this=exp.column("row_day", table="measure_rows"),
            expression=exp.column("window_day", table="measure_rows"),
        ),
        copy=False,
    )


def _cumulative_select(
    source: _Source,
    items: list[GroupByItem],
    leaves: list[Leaf],
    conditions: list[exp.Expr],
    manifest: Manifest,
    query: MetricQuery,
    anchor: Measure,
) -> exp.Select:
    """A cumulative aggregation, MetricFlow's semantics: for every time-spine day, aggregate
    the rows of the trailing window (or of the period to date, or of all time) up to that
    day; at a coarser grain keep the first/last/average daily value of each period."""
    spec = leaves[0].cumulative
    assert spec is not None
    time_item = next((i for i in items if i.kind == "time" and i.element == METRIC_TIME), None)
    if time_item is None:
        raise _error(
            MSG_WINDOW_WITHOUT_TIME.format(name=leaves[0].measure.name),
            code="missing_metric_time",
            location="group_by",
            hint="group by metric_time (at any grain); only all-time cumulative metrics can "
            "be queried without it",
        )
    grain = time_item.grain or "day"
    others = [i for i in items if i is not time_item]
    dim = source.model.dimensions.get(anchor.agg_time_dimension)
    if dim is None:
        raise _error(
            f"measure {anchor.name!r} has no agg_time_dimension for metric_time",
            code="unreachable_dimension",
            location="group_by",
        )
    # Reduce the rows before the window fan-out, as a careful analyst would: decomposable
    # aggregations (sum, count, min, max) pre-aggregate per (day, group); count-distinct
    # keeps distinct (day, group, value) tuples only. Both preserve which days have rows,
    # so the spine join below keeps MetricFlow's row set.
    aggs = {leaf.measure.agg for leaf in leaves}
    partial = aggs <= set(_PARTIAL_AGGS)
    distinct = not partial and aggs <= {"count_distinct", "min", "max"}
    values: list[exp.Expr] = []
    for n, leaf in enumerate(leaves):
        value = _definition_expr(leaf.measure.expr, source.alias)
        if partial:
            value = _aggregate(leaf.measure, value)
        values.append(value.as_(f"value_{n}", copy=False))
    rows = exp.select(
        _trunc(_definition_expr(dim.expr, source.alias), "day").as_("row_day", copy=False),
        *[source.item_expr(i, anchor).as_(i.column, copy=False) for i in others],
        *values,
    )
    rows = source.from_clause(rows)
    for condition in conditions:
        rows = rows.where(condition, copy=False)
    # A row without a time never reaches a spine day; dropping it here also keeps it out of
    # the running windows below (MySQL sorts NULLs first).
    rows = rows.where(
        exp.Not(this=exp.Is(this=_definition_expr(dim.expr, source.alias), expression=exp.Null())),
        copy=False,
    )
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
        first = _date(query.start_time, "start_time") if query.start_time else dt.date(1, 1, 1)
        last = _date(query.end_time, "end_time") if query.end_time else dt.date(9999, 12, 31)
        low, high = _period_bounds(first, last, grain)
        earliest = None
        if query.start_time and (spec.window or spec.grain_to_date):
            earliest = low
            if spec.window:
                count, unit = spec.window
                days = {"day": 1, "week": 7, "month": 31, "quarter": 92, "year": 366}[unit] * count
                earliest = low - dt.timedelta(days=days)
            elif spec.grain_to_date:
                earliest = _period_bounds(low, low, spec.grain_to_date)[0]
        for bound in _day_range(
            _definition_expr(dim.expr, source.alias),
            earliest,
            high if query.end_time else None,
        ):
            rows = rows.where(bound, copy=False)

    spine = manifest.time_spine
    spine_day = exp.column(spine.column, table="spine")
    row_day = exp.column("row_day", table="source_rows")
    on: exp.Expr = exp.LTE(this=row_day, expression=spine_day)
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
                    this=_PARTIAL_AGGS[leaf.measure.agg](exp.column(f"value_{n}")),
                    partition_by=[p.copy() for p in partition],
                    order=order.copy(),
                    spec=running.copy(),
                ).as_(f"value_{n}", copy=False)
                for n, leaf in enumerate(leaves)
            ],
        ).from_(rows.subquery("daily_rows", copy=False), copy=False)
        next_day = exp.column("next_day", table="source_rows")
        on = exp.and_(
            on,
            exp.or_(
                exp.Is(this=next_day, expression=exp.Null()),
                exp.GT(this=next_day.copy(), expression=spine_day.copy()),
                copy=False,
            ),
            copy=False,
        )
        rows = runs
    spine_source: exp.Expr = _table(spine.relation, "spine")
    # All time, the last value of each coarser period: a running total never drops a group
    # once it has rows, so each period's last spine day carries every group's last value.
    # Joining only that day per period spares the join and the window over every day.
    last_day_only = all_time and partial and grain != "day" and spec.period_agg == "last"
    if last_day_only:
        spine_days = exp.column(spine.column, table="spine_days")
        last_days = (
            exp.select(exp.Max(this=spine_days.copy()).as_(spine.column, copy=False))
            .from_(_table(spine.relation, "spine_days"), copy=False)
            .group_by(_trunc(spine_days.copy(), grain), copy=False)
        )
        for bound in _spine_day_range(spine_days, query, grain):
            last_days = last_days.where(bound, copy=False)
        spine_source = last_days.subquery("spine", copy=False)
    if spec.window or spec.grain_to_date:
        # Each spine day's window bounds are computed once per day, in a derived spine, as
        # timestamps like row_day: bounds computed inside the join condition are evaluated
        # per (day, row) pair and cost a third of the query on DuckDB (measured).
        day = exp.column(spine.column, table="spine_days")
        if spec.window:
            count, unit = spec.window
            lower: exp.Expr = exp.Sub(
                this=day.copy(),
                expression=exp.Interval(
                    this=exp.Literal.string(str(count)), unit=exp.Var(this=unit.upper())
                ),
            )
        else:
            lower = _trunc(day.copy(), str(spec.grain_to_date))
        spine_source = (
            exp.select(
                day,
                exp.Cast(this=day.copy(), to=TIMESTAMP.copy()).as_("day_end", copy=False),
                lower.as_("window_start", copy=False),
            )
            .from_(_table(spine.relation, "spine_days"), copy=False)
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
            return _aggregate(leaf.measure, value)
        # All time: one run per spine day and group, so MAX() just picks its value.
        return _PARTIAL_AGGS["max" if all_time else leaf.measure.agg](value)

    daily = exp.select(
        spine_day.copy().as_("spine_day", copy=False),
        *[exp.column(i.column, table="source_rows") for i in others],
        *[
            combine(leaf, exp.column(f"value_{n}", table="source_rows")).as_(leaf.alias, copy=False)
            for n, leaf in enumerate(leaves)
        ],
    )
    daily = _join(
        daily.from_(spine_source, copy=False),
        rows.subquery("source_rows", copy=False),
        on=on,
        kind="INNER",
    )
    for bound in _spine_day_range(spine_day, query, grain):
        daily = daily.where(bound, copy=False)
    daily = daily.group_by(*[exp.Literal.number(i + 1) for i in range(1 + len(others))], copy=False)

    period = _trunc(exp.column("spine_day", table="daily"), grain)
    partition = [period.copy(), *[exp.column(i.column, table="daily") for i in others]]
    outputs: list[exp.Expr] = []
    for item in items:
        if item is time_item:
            outputs.append(period.copy().as_(item.column, copy=False))
        else:
            outputs.append(exp.column(item.column, table="daily").as_(item.column, copy=False))
    for leaf in leaves:
        value = exp.column(leaf.alias, table="daily")
        if grain == "day" or last_day_only:
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
    final = exp.select(*outputs).from_(daily.subquery("daily", copy=False), copy=False)
    return final.distinct(copy=False) if grain != "day" and not last_day_only else final


def _spine_day_range(day: exp.Expr, query: MetricQuery, grain: str) -> list[exp.Expr]:
    """Bounds of spine days to the query's time range, widened to whole ``grain`` periods."""
    if not (query.start_time or query.end_time):
        return []
    first = _date(query.start_time, "start_time") if query.start_time else dt.date(1, 1, 1)
    last = _date(query.end_time, "end_time") if query.end_time else dt.date(9999, 12, 31)
    low, high = _period_bounds(first, last, grain)
    bounds: list[exp.Expr] = []
    if query.start_time:
        bounds.append(exp.GTE(this=day.copy(), expression=_timestamp_literal(low)))
    if query.end_time:
        bounds.append(exp.LTE(this=day.copy(), expression=_timestamp_literal(high)))
    return bounds


def _unbounded(query: MetricQuery) -> MetricQuery:
    return MetricQuery(**{**query.__dict__, "start_time": None, "end_time": None})


def _spine_periods(manifest: Manifest, grain: str, query: MetricQuery) -> exp.Select:
    """Distinct time-spine periods at ``grain``, within the query's (widened) time range."""
    spine = manifest.time_spine
    period = _trunc(exp.column(spine.column, table="spine"), grain)
    periods = (
        exp.select(period.as_("period", copy=False))
        .from_(_table(spine.relation, "spine"), copy=False)
        .distinct(copy=False)
    )
    day = _trunc(exp.column(spine.column, table="spine"), "day")
    for bound in _spine_day_range(day, query, grain):
        periods = periods.where(bound, copy=False)
    return periods


def _spine_join(
    select: exp.Select,
    items: list[GroupByItem],
    leaves: list[Leaf],
    manifest: Manifest,
    query: MetricQuery,
    *,
    time_item: GroupByItem,
    target: exp.Expr,
    join_type: str,
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
    periods = _spine_periods(manifest, time_item.grain or "day", query)
    return _join(
        exp.select(*outputs).from_(periods.subquery("time_spine", copy=False), copy=False),
        select.subquery("agg", copy=False),
        on=exp.EQ(this=target, expression=exp.column(time_item.column, table="agg")),
        side="LEFT" if join_type == "left" else None,
        kind="INNER" if join_type == "inner" else None,
    )


def _metric_time_item(items: list[GroupByItem]) -> GroupByItem | None:
    return next((i for i in items if i.kind == "time" and i.element == METRIC_TIME), None)


def _offset_select(
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
    time_item = _metric_time_item(items)
    if time_item is None:
        raise _error(
            MSG_UNSUPPORTED.format(what="an offset metric without metric_time in group_by"),
            code="unsupported_metric",
            location="group_by",
            hint="group by metric_time (at any grain)",
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
        target = _trunc(period, offset[1])
    return _spine_join(
        select,
        items,
        leaves,
        manifest,
        query,
        time_item=time_item,
        target=target,
        join_type="inner",
    )


def _join_to_time_spine(
    select: exp.Select,
    items: list[GroupByItem],
    leaves: list[Leaf],
    manifest: Manifest,
    query: MetricQuery,
) -> exp.Select:
    """Every time-spine period gets a row (join_to_timespine), as in MetricFlow: the spine at
    the query's metric_time grain LEFT JOINs the aggregation on metric_time only."""
    time_item = _metric_time_item(items)
    if time_item is None:
        return select
    return _spine_join(
        select,
        items,
        leaves,
        manifest,
        query,
        time_item=time_item,
        target=exp.column("period", table="time_spine"),
        join_type="left",
    )


def _metric_expr(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    offset: tuple[str, str] | None = None,
) -> exp.Expr:
    filters = filters + metric.filters
    params = metric.params
    if metric.type == "conversion":
        base, converted = _conversion_leaves(metric, manifest, filters, offset)
        conversions: exp.Expr = exp.column(converted.alias, table="combined")
        if str(_conversion_params(metric).get("calculation", "conversion_rate")) == "conversions":
            return conversions
        return exp.Div(
            this=exp.cast(conversions, DOUBLE.copy()),
            expression=exp.Nullif(
                this=exp.column(base.alias, table="combined"), expression=exp.Literal.number(0)
            ),
        )
    if metric.type in ("simple", "cumulative"):
        leaf = _measure_leaf(metric, manifest, filters, offset)
        value: exp.Expr = exp.column(leaf.alias, table="combined")
        if leaf.fill_nulls_with is not None:
            # Filled at the input metric, so ratios and derived metrics see the filled value.
            value = exp.Coalesce(this=value, expressions=[exp.Literal.number(leaf.fill_nulls_with)])
        return value
    inputs = _metric_inputs(metric)
    values = [
        _metric_expr(
            manifest.metrics[ref["name"]],
            manifest,
            filters + _as_tuple(ref.get("filter")),
            _offset_of(ref) or offset,
        )
        for ref in inputs
    ]
    if metric.type == "ratio":
        numerator = exp.cast(values[0], DOUBLE.copy())
        return exp.Div(
            this=numerator, expression=exp.Nullif(this=values[1], expression=exp.Literal.number(0))
        )
    # Derived: the expression names inputs by alias (or name); substitute each reference.
    names = {
        ref.get("alias") or ref["name"]: value for ref, value in zip(inputs, values, strict=True)
    }
    # Security hook (issue 18): only the inputs' names, literals, operators and functions.
    tree = parse_definition(
        params["expr"], location=f"{metric.name}.type_params.expr", inputs=names
    )
    # Division is real division, as on DuckDB (MetricFlow's reference engine): PostgreSQL
    # would truncate integers and MySQL would keep four decimals.
    for division in list(tree.find_all(exp.Div)):
        division.set("this", exp.cast(division.this, DOUBLE.copy()))

    def substitute(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Column) or node.table or node.name not in names:
            return node
        value = names[node.name].copy()
        return value if isinstance(value, exp.Column) else exp.paren(value, copy=False)

    # transform() (not Column.replace) so that an expression that is just one input's name,
    # `expr: mrr_started_to_date`, is replaced too: the root has no parent to replace it in.
    return tree.transform(substitute, copy=False)


def _order_limit(select: exp.Select, query: MetricQuery, keys: list[str]) -> exp.Select:
    outputs = [*keys, *query.metrics]
    for index, raw in enumerate(query.order_by):
        descending = raw.startswith("-")
        name = raw.lstrip("-").strip().lower()
        if name not in outputs:
            raise _error(
                f"cannot order by {name!r}: it is not an output of the query",
                code="bad_order_by",
                location=f"order_by[{index}]",
                hint=did_you_mean(name, outputs) or "order by a requested metric or group-by item",
            )
        select = select.order_by(exp.Ordered(this=exp.column(name), desc=descending), copy=False)
    if query.limit is not None:
        select = select.limit(query.limit, copy=False)
    return select


MAX_HOPS = 3


def queryable_items(manifest: Manifest, metric_name: str) -> list[str]:
    """Every group-by item a metric accepts: metric_time at each grain, entities, and the
    dimensions reachable through unique entities (up to MAX_HOPS joins), as names.

    Raises:
        QueryError: unknown metric.
    """
    if metric_name not in manifest.metrics:
        raise _error(
            MSG_UNKNOWN_METRIC.format(name=metric_name),
            code="unknown_metric",
            location="metric",
            hint=did_you_mean(metric_name, manifest.metrics),
        )
    leaves = _leaves(manifest.metrics[metric_name], manifest, (), ())
    per_model: list[set[str]] = []
    # Conversion events are grouped under their base event's items: their model need not
    # reach the group-by items itself.
    for model_name in {leaf.measure.semantic_model for leaf in leaves if not leaf.conversion}:
        found: set[str] = {f"{METRIC_TIME}__{g}" for g in GRAINS} | {METRIC_TIME}
        frontier: list[tuple[SemanticModel, tuple[str, ...]]] = [
            (manifest.semantic_models[model_name], ())
        ]
        seen_paths: set[tuple[str, ...]] = set()
        while frontier:
            model, path = frontier.pop()
            prefix = path or ((model.primary_entity,) if model.primary_entity else ())
            for dim in model.dimensions.values():
                if not prefix:
                    continue
                base = "__".join([*prefix, dim.name])
                found.add(base)
                if dim.type == "time":
                    start = GRAINS.index(dim.grain or "day")
                    found.update(f"{base}__{g}" for g in GRAINS[start:])
            for entity in model.entities.values():
                found.add("__".join([*path, entity.name]) if path else entity.name)
                if len(path) >= MAX_HOPS:
                    continue
                for target in manifest.models_with_unique_entity(entity.name):
                    next_path = (*path, entity.name)
                    if target.name != model.name and next_path not in seen_paths:
                        seen_paths.add(next_path)
                        frontier.append((target, next_path))
        per_model.append(found)
    # A metric over several models accepts only what every one of them can reach.
    common = set.intersection(*per_model) if per_model else set()
    return sorted(common)
