"""Filters: a scan's conditions from the query's where, definition filters and time range.

``filter_conditions`` binds parsed filters (see ``semantic.compiler.where``) to the scan's
columns; ``{{ Metric(…) }}`` items compile the referenced metric as a subquery (through the
compiler held by the current ``FilterCtes``) and join it on its entity. ``time_range`` turns
start/end times into conditions on the scan's metric_time column.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from registry.definitions.issues import did_you_mean
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.grains import SUB_DAILY
from semantic.compiler.joins import MSG_NOT_AN_ENTITY, MSG_UNREACHABLE, Source, queryable_items
from semantic.compiler.manifest import Manifest, Measure
from semantic.compiler.plan import leaves_of
from semantic.compiler.policies import check_unmasked
from semantic.compiler.resolve import (
    METRIC_TIME,
    MSG_UNKNOWN_METRIC,
    GroupByItem,
    query_date,
    query_error,
)
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import day_range, instant_range, period_bounds
from tally.errors import QueryError

MSG_FILTER_METRIC_GROUP_BY = "{item} in a filter needs exactly one group_by entity, not {count}"
HINT_FILTER_METRIC_GROUP_BY = "e.g. {{{{ Metric('{name}', group_by=['account']) }}}} > 100"
MSG_FILTER_METRIC_NOT_ENTITY = "group_by {group_by!r} of {item} is not an entity"
MSG_FILTER_METRIC_UNJOINABLE = "{item} cannot filter {model!r}: it has no entity {entity!r}"
HINT_FILTER_METRIC_UNJOINABLE = (
    "a Metric() filter joins on an entity of the filtered model; {model!r} has: {entities}"
)
MSG_FILTER_METRIC_CYCLE = "Metric() filters depend on themselves: {path}"


def filter_conditions(
    filters: tuple[str, ...],
    source: Source,
    measure: Measure,
    location: str,
    day_column: Callable[[GroupByItem], exp.Expr | None] | None = None,
) -> list[exp.Expr]:
    """The conditions of ``filters`` on the scan's columns; ``day_column``, when given, binds
    the items it knows (a cumulative metric's time, see kinds.cumulative) instead."""
    if not filters:
        return []
    from semantic.compiler.where import parse_where, substitute

    conditions = []
    for index, template in enumerate(filters):
        parsed = parse_where(
            template,
            location=f"{location}[{index}]",
            custom_granularity_names=source.manifest.time_spine.custom_grain_names,
        )
        columns: dict[str, exp.Expr] = {}
        for ref in parsed.refs:
            if ref.kind == "metric":
                columns[ref.placeholder] = metric_filter_column(ref, source, f"{location}[{index}]")
                continue
            path = tuple(ref.entity_path)
            if ref.kind == "entity":
                item = (
                    GroupByItem(ref.text, "entity", ref.name, (), None)
                    if not path
                    else GroupByItem(ref.text, "dimension", ref.name, path, None)
                )
                if path:
                    model, alias = source.walk(path, ref.text, ref.name)
                    if ref.name not in model.entities:
                        raise query_error(
                            MSG_NOT_AN_ENTITY.format(name=ref.text, model=model.name),
                            code="unknown_entity",
                            location=f"{location}[{index}]",
                            hint=did_you_mean(ref.name, model.entities)
                            or "entities: " + ", ".join(sorted(model.entities)),
                        )
                    columns[ref.placeholder] = definition_expr(model.entities[ref.name].expr, alias)
                    continue
            elif ref.name == METRIC_TIME:
                grain = None if ref.date_part else ref.grain or "day"
                item = GroupByItem(ref.text, "time", METRIC_TIME, (), grain, ref.date_part)
            else:
                kind = "time" if ref.kind == "time_dimension" or ref.grain else "dimension"
                if ref.date_part:
                    kind = "time"
                item = GroupByItem(ref.text, kind, ref.name, path, ref.grain, ref.date_part)
            bound = day_column(item) if day_column is not None else None
            columns[ref.placeholder] = (
                bound if bound is not None else source.item_expr(item, measure)
            )
        condition = substitute(parsed, columns)
        access = ACCESS.get(None)
        if access is not None and access.masks:
            check_unmasked(condition, source, access, f"{location}[{index}]")
        conditions.append(condition)
    return conditions


# (query, manifest, timings) → (SELECT, group-by columns): semantic.compiler.query.query_select.
SubqueryCompiler = Callable[[MetricQuery, Manifest, dict[str, float]], tuple[exp.Select, list[str]]]


@dataclass
class FilterCtes:
    """The Metric() filter subqueries of one compile, flattened into CTEs in dependency order.

    ``compile_subquery`` is the compiler's own query stage (semantic.compiler.query), handed
    in by whoever starts a compile: a Metric() filter compiles a whole query, which may hold
    filters again, and passing the stage in keeps the imports one way (query → filters).
    ``stack`` lists the metrics whose subqueries are being built (outermost first), so that a
    metric whose filter needs itself is refused instead of recursing forever.
    """

    compile_subquery: SubqueryCompiler
    stack: tuple[str, ...] = ()
    ctes: dict[str, exp.Expr] = field(default_factory=dict)

    def add(self, name: str, select: exp.Select, nested: FilterCtes) -> None:
        """Registers a subquery (compiled under ``nested``) as CTE ``name``, hoisting its own
        CTEs: its aggregations get ``name`` as a prefix; nested filter CTEs keep their names,
        which depend only on (metric, group_by), so equal subqueries are built once."""
        for inner_name, inner in nested.ctes.items():
            self.ctes.setdefault(inner_name, inner)
        with_ = select.args.get("with_")
        select.set("with_", None)
        own = {
            cte.alias: bounded_name(f"{name}__{cte.alias}")
            for cte in (with_.expressions if with_ else [])
        }
        for cte in with_.expressions if with_ else []:
            self.ctes.setdefault(own[cte.alias], renamed_tables(cte.this, own))
        self.ctes.setdefault(name, renamed_tables(select, own))

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


FILTER_CTES: contextvars.ContextVar[FilterCtes] = contextvars.ContextVar("_FILTER_CTES")


# Row policies and masking of the compile in progress (None: a trusted caller, nothing to do).
ACCESS: contextvars.ContextVar[Any] = contextvars.ContextVar("_ACCESS", default=None)


# Metric() filters may nest (a metric whose own filter has a Metric()); beyond this depth the
# definitions are almost certainly a mistake, and each level compiles a whole query.
MAX_FILTER_METRIC_DEPTH = 4


# PostgreSQL truncates identifiers to 63 characters (two CTEs could then share a name) and
# MySQL refuses names over 64: filter CTE names stay below both, with room for a suffix.
MAX_FILTER_NAME = 40
MAX_IDENTIFIER = 60


def bounded_name(name: str, limit: int = MAX_IDENTIFIER) -> str:
    """``name``, or its start plus a stable digest of all of it when longer than ``limit``.

    Example:
        >>> bounded_name("filter_revenue_by_account")
        'filter_revenue_by_account'
        >>> len(bounded_name("filter_" + "x" * 80, 40))
        40
    """
    if len(name) <= limit:
        return name
    import hashlib

    return name[: limit - 9] + "_" + hashlib.sha256(name.encode()).hexdigest()[:8]


def renamed_tables(tree: exp.Expr, names: Mapping[str, str]) -> exp.Expr:
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


def metric_filter_column(ref: Any, source: Source, location: str) -> exp.Expr:
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
    shown = shown_metric_ref(ref)
    group_by, entity = metric_ref_entity(ref, manifest, location)
    model = source.model
    if entity not in model.entities:
        raise query_error(
            MSG_FILTER_METRIC_UNJOINABLE.format(item=shown, model=model.name, entity=entity),
            code="unreachable_dimension",
            location=location,
            hint=HINT_FILTER_METRIC_UNJOINABLE.format(
                model=model.name, entities=", ".join(sorted(model.entities))
            ),
        )
    # Set by compile_query and drill-down around every use of filter_conditions.
    state = FILTER_CTES.get()
    if ref.name in state.stack or len(state.stack) >= MAX_FILTER_METRIC_DEPTH:
        raise query_error(
            MSG_FILTER_METRIC_CYCLE.format(path=" → ".join([*state.stack, ref.name])),
            code="bad_where",
            location=location,
        )
    name = bounded_name(f"filter_{ref.name}_by_{group_by}", MAX_FILTER_NAME)
    if name not in state.ctes:
        nested = FilterCtes(state.compile_subquery, stack=(*state.stack, ref.name))
        token = FILTER_CTES.set(nested)
        try:
            inner, _ = state.compile_subquery(
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
            FILTER_CTES.reset(token)
        state.add(name, inner, nested)
    source.metric_joins[name] = exp.EQ(
        this=definition_expr(model.entities[entity].expr, source.alias),
        expression=exp.column(group_by, table=name),
    )
    return exp.column(ref.name, table=name)


def shown_metric_ref(ref: Any) -> str:
    return f"Metric({ref.name!r}, group_by={list(ref.group_by)!r})"


def metric_ref_entity(ref: Any, manifest: Manifest, location: str) -> tuple[str, str]:
    """A Metric() item's one group_by name and the entity it ends with (what the subquery
    joins on), as MetricFlow requires: a known metric and exactly one entity."""
    shown = shown_metric_ref(ref)
    if ref.name not in manifest.metrics:
        raise query_error(
            MSG_UNKNOWN_METRIC.format(name=ref.name),
            code="unknown_metric",
            location=location,
            hint=did_you_mean(ref.name, manifest.metrics),
        )
    if len(ref.group_by) != 1:
        raise query_error(
            MSG_FILTER_METRIC_GROUP_BY.format(item=shown, count=len(ref.group_by)),
            code="bad_where",
            location=location,
            hint=HINT_FILTER_METRIC_GROUP_BY.format(name=ref.name),
        )
    group_by = ref.group_by[0]
    entity = group_by.split("__")[-1]
    entities = sorted({e for m in manifest.semantic_models.values() for e in m.entities})
    if entity not in entities:
        raise query_error(
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
    group_by, entity = metric_ref_entity(ref, manifest, location)
    shown = shown_metric_ref(ref)
    try:
        leaves = leaves_of(manifest.metrics[metric_name], manifest, (), ())
        groupable = queryable_items(manifest, ref.name)
    except QueryError:
        return  # a metric the compiler refuses is reported where it is queried, not here
    for leaf in leaves:
        model = manifest.semantic_models[leaf.measure.semantic_model]
        if entity not in model.entities and not leaf.conversion:
            raise query_error(
                MSG_FILTER_METRIC_UNJOINABLE.format(item=shown, model=model.name, entity=entity),
                code="unreachable_dimension",
                location=location,
                hint=HINT_FILTER_METRIC_UNJOINABLE.format(
                    model=model.name, entities=", ".join(sorted(model.entities))
                ),
            )
    if group_by not in groupable:
        raise query_error(
            f"{shown}: " + MSG_UNREACHABLE.format(name=group_by, metric=ref.name),
            code="unreachable_dimension",
            location=location,
        )


def time_range(
    query: MetricQuery,
    source: Source,
    measure: Measure,
    items: list[GroupByItem],
    default: str = "day",
) -> list[exp.Expr]:
    """The query's start/end time on the measure's time, widened to whole periods of
    metric_time's grain (``default`` when metric_time is not grouped by: MetricFlow widens
    to the coarsest grain of the query's metrics, so a monthly metric's month is whole)."""
    if not (query.start_time or query.end_time):
        return []
    dim = source.model.dimensions.get(measure.agg_time_dimension)
    if dim is None:
        return []
    grain = next(
        (i.grain or "day" for i in items if i.kind == "time" and i.element == METRIC_TIME),
        default,
    )
    if grain in SUB_DAILY:
        return instant_range(definition_expr(dim.expr, source.alias), query, grain)
    start = query_date(query.start_time, "start_time") if query.start_time else dt.date(1, 1, 1)
    end = query_date(query.end_time, "end_time") if query.end_time else dt.date(9999, 12, 31)
    low, high = period_bounds(start, end, grain)
    column = definition_expr(dim.expr, source.alias)
    return day_range(column, low if query.start_time else None, high if query.end_time else None)
