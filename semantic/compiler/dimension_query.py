"""Queries without metrics: the distinct combinations of group-by items, as MetricFlow's
``mf query --group-by a,b`` gives them.

The rows are read the way MetricFlow reads them for a group-by-only query:

* items of semantic models come from one **base model** that reaches them all and the
  filters' items with the fewest joins (MetricFlow's choice, see ``dimension_base``), joined
  to the other models with FULL OUTER JOINs on their entities, so a value of a joined model
  with no match on the base side is still listed (a user without listings keeps their home
  state). A join to a partitioned model is not refused as a fan-out: there is no measure;
* ``metric_time`` comes from the time spine, CROSS JOINed when items of models are asked for
  too (or named by the filters: metric_time filtered on accounts is read from accounts, the
  periods while some account passes), and bounded by the query's time range;
* the filters apply to the joined rows; ``GROUP BY`` every item gives each combination once;
* masks and row policies wrap every model read (``secure_select``), as for dimension values.

A bare time dimension is read at its own grain and named after it (``verification__ds``
gives ``verification__ds__day``), a bare ``metric_time`` at the spine's (``metric_time__day``).
MetricFlow's two options for such queries (``semantic.compiler.resolve.check_options`` checks
their use): ``apply_group_by=False`` drops the ``GROUP BY``, so every joined row is listed,
duplicates kept; ``min_max_only`` gives the least and greatest value of the one item.
MariaDB and MySQL have no FULL OUTER JOIN: one item's values there (dimension values) are
read as a UNION of LEFT JOIN chains (``full_join_union``), any other query that needs a join
is refused.
Django-free.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import time
from collections.abc import Iterator

from sqlglot import exp

from semantic.compiler.combine import order_limit
from semantic.compiler.compile import CompiledQuery
from semantic.compiler.date_parts import date_part_expr
from semantic.compiler.dialects import render
from semantic.compiler.dimension_base import Candidate, base_candidates, item_owner
from semantic.compiler.filters import ACCESS, FILTER_CTES, FilterCtes, filter_conditions
from semantic.compiler.full_join_union import full_join_chain_union
from semantic.compiler.grains import ALL_GRAINS, SUB_DAILY
from semantic.compiler.joins import Source
from semantic.compiler.manifest import Manifest, Measure, SemanticModel
from semantic.compiler.nodes import TIMESTAMP, relation_table
from semantic.compiler.policies import Access, secure_select
from semantic.compiler.principal import Principal
from semantic.compiler.query import query_select
from semantic.compiler.resolve import (
    METRIC_TIME,
    GroupByItem,
    check_request,
    parse_group_by,
    query_date,
)
from semantic.compiler.resolve import query_error as error
from semantic.compiler.spec import MetricQuery
from semantic.compiler.time import spine_at, spine_day_range, spine_period, trunc
from tally.errors import QueryError

SPINE = "time_spine"
MSG_NOTHING = "a query without metrics needs at least one group-by item"
MSG_NO_FULL_JOIN = (
    "{dialect} has no FULL OUTER JOIN, which a query without metrics over several semantic "
    "models needs ({items})"
)
MSG_TIME_RANGE = "start_time/end_time bound metric_time: add metric_time to group_by"
MSG_NO_BASE = "no semantic model reaches all of {items}"
MSG_FILTER_ALONE = (
    "a filter on a query without metrics needs an item of a semantic model, in group_by or in "
    "the filter"
)


def dimension_query_compile(
    query: MetricQuery,
    manifest: Manifest,
    *,
    principal: Principal | None = None,
    mask_default: str = "hash",
) -> CompiledQuery:
    """Compiles a query with group-by items and no metrics.

    Raises:
        QueryError: no group-by item, unknown or unreachable items, a time range without
            metric_time, a join MariaDB cannot express, a filter on a masked column.

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> model = {"name": "accounts", "node_relation": {"alias": "accounts",
        ...     "schema_name": "main"}, "entities": [{"name": "account", "type": "primary",
        ...     "expr": "id"}], "dimensions": [{"name": "plan", "type": "categorical"}]}
        >>> m = build_manifest([("semantic_model", "accounts", model, "1.0")])
        >>> print(dimension_query_compile(MetricQuery(metrics=(), group_by=("account__plan",)), m).sql)
        -- tally release unreleased: group-by items account__plan
        SELECT
          accounts.plan AS account__plan
        FROM main.accounts AS accounts
        GROUP BY
          1
    """
    started = time.perf_counter()
    check_request(query)
    grains = manifest.time_spine.custom_grain_names
    items = [parse_group_by(g, f"group_by[{i}]", grains) for i, g in enumerate(query.group_by)]
    if not items:
        raise error(MSG_NOTHING, code="no_metrics", location="group_by", hint="pass --group-by")
    seen = [i.text for i in items]
    twice = next((t for n, t in enumerate(seen) if t in seen[:n]), None)
    if twice is not None:
        # Columns are found by item (items.index): each may be asked for once.
        raise error(
            f"{twice!r} is in group_by twice", code="bad_group_by", location="group_by",
            hint="name each item once",
        )  # fmt: skip
    times = [i for i in items if i.element == METRIC_TIME]
    others = [i for i in items if i.element != METRIC_TIME]
    if (query.start_time or query.end_time) and not times:
        raise error(MSG_TIME_RANGE, code="bad_time_range", location="start_time")
    # Models are read for their group-by items, or for the filters' alone (metric_time of
    # the periods while some row of the model passes them, as MetricFlow reads it).
    candidates = base_candidates(manifest, others, query.where) if others or query.where else []
    if query.where and not others and not any(c.holds for c in candidates):
        raise error(MSG_FILTER_ALONE, code="unsupported_query", location="where[0]")
    columns: dict[int, tuple[str, exp.Expr]] = {}
    with compiling(manifest, principal, query.dialect, mask_default) as filter_ctes:
        select, conditions = (
            _model_read(manifest, candidates, others, query, columns, items)
            if candidates
            else (None, [])
        )
    spine = _spine_read(manifest, times, query, columns, items) if times else None
    if select is None:
        assert spine is not None
        select = exp.select(copy=False).from_(spine, copy=False)
    elif spine is not None:
        # metric_time against every row of the models, as MetricFlow crosses them; the
        # spine goes right after the base table, before the FULL OUTER JOINs.
        select.set("joins", [exp.Join(this=spine, kind="CROSS"), *select.args.get("joins", [])])
    keys = [columns[index][0] for index in range(len(items))]
    select.set("expressions", [columns[i][1].as_(columns[i][0]) for i in range(len(items))])
    if spine is not None and candidates and (query.start_time or query.end_time):
        # A row the FULL OUTER JOIN kept without a spine row has no time: outside the range.
        name = columns[items.index(times[0])][0]
        conditions.append(
            exp.Not(this=exp.Is(this=exp.column(name, table=SPINE), expression=exp.Null()))
        )
    for condition in conditions:
        select = select.where(condition, copy=False)
    if query.apply_group_by:
        select = select.group_by(
            *(exp.Literal.number(n + 1) for n in range(len(items))), copy=False
        )
    if query.dialect == "mysql" and any(j.side == "FULL" for j in select.args.get("joins", [])):
        select = _without_full_joins(select, others, query)
    if query.min_max_only:
        select, keys = _min_max(select, keys)
    filter_ctes.prepend_to(select)
    select = order_limit(select, query, keys, grains)
    secured = secure_select(
        select, manifest, principal, dialect=query.dialect, mask_default=mask_default
    )
    header = f"-- tally release {manifest.release or 'unreleased'}: group-by items " + ", ".join(
        keys
    )
    sql = header + "\n" + render(secured.tree, query.dialect)
    return CompiledQuery(
        sql=sql,
        dialect=query.dialect,
        columns=tuple(keys),
        release=manifest.release,
        versions={},
        timings={"dimension_query": time.perf_counter() - started},
        parameters=secured.parameters,
    )


def _without_full_joins(
    select: exp.Select, others: list[GroupByItem], query: MetricQuery
) -> exp.Select:
    """MariaDB and MySQL have no FULL OUTER JOIN: one item's distinct values over a chain of
    them are read as a UNION of LEFT JOIN chains (``full_join_union``); other shapes (several
    items, a filter on another model than the item's, metric_time, every joined row) are
    refused."""
    unioned = full_join_chain_union(select) if query.apply_group_by else None
    if unioned is None:
        raise error(
            MSG_NO_FULL_JOIN.format(dialect="MariaDB/MySQL", items=_shown(others, query.where)),
            code="unsupported_join",
            location="group_by",
            hint="ask for one item (filtered on its own model), items of one model, or add a metric",
        )
    return unioned


def _min_max(select: exp.Select, keys: list[str]) -> tuple[exp.Select, list[str]]:
    """The least and greatest value of the one item (MetricFlow's ``min_max_only``): its
    rows as a derived table, read by MIN and MAX named ``<item>__min``/``<item>__max``."""
    (key,) = keys
    names = [f"{key}__min", f"{key}__max"]
    outer = exp.select(
        exp.Min(this=exp.column(key, table="item_values")).as_(names[0], copy=False),
        exp.Max(this=exp.column(key, table="item_values")).as_(names[1], copy=False),
    ).from_(select.subquery("item_values", copy=False), copy=False)
    return outer, names


@dataclasses.dataclass(frozen=True)
class _BaseRead:
    """One candidate base that reaches every item: its scan, item columns and filters."""

    candidate: Candidate
    source: Source
    found: dict[int, tuple[str, exp.Expr]]
    conditions: list[exp.Expr]
    joins: int


def _model_read(
    manifest: Manifest,
    candidates: list[Candidate],
    others: list[GroupByItem],
    query: MetricQuery,
    columns: dict[int, tuple[str, exp.Expr]],
    items: list[GroupByItem],
) -> tuple[exp.Select, list[exp.Expr]]:
    """FROM the base model (``dimension_base``: MetricFlow's fewest joins) with FULL OUTER
    JOINs to the models the items and filters reach; fills ``columns`` (item index → (name,
    value)); returns the select and the filters."""
    failures: list[QueryError] = []
    # Bases reaching every item by its path as written first (a fact table that reaches
    # user__home_state only as listing__user__home_state would list its own rows), then the
    # suffix rule (entity_graph) for items no base reaches as written.
    for suffix_paths in (False, True):
        best: _BaseRead | None = None
        for candidate in candidates:
            if best is not None and (best.joins == 0 or best.candidate.holds > candidate.holds):
                # Nothing later can win: no join at all, or only Tally's fallbacks are left.
                break
            try:
                read = _base_read(manifest, candidate, others, query, items, suffix_paths)
            except QueryError as exc:
                failures.append(exc)
                continue
            if best is None or read.joins < best.joins:
                best = read
        if best is not None:
            return _joined(best, columns, others, query)
    first = failures[0]
    if first.code != "unreachable_dimension":
        raise first
    for item in others:
        # An item whose path starts at no model's primary entity (a typo, most often): its
        # own error, with did-you-mean, says more than that no base reaches everything.
        try:
            item_owner(manifest, item)
        except QueryError as exc:
            location = f"group_by[{items.index(item)}]"
            raise error(exc.message, code=exc.code, location=location, hint=exc.hint) from None
    raise error(
        MSG_NO_BASE.format(items=_shown(others, query.where)),
        code="unreachable_dimension",
        location="group_by",
        hint="ask for items that share an entity path, or add a metric",
    )


def _base_read(
    manifest: Manifest,
    candidate: Candidate,
    others: list[GroupByItem],
    query: MetricQuery,
    items: list[GroupByItem],
    suffix_paths: bool,
) -> _BaseRead:
    """The items and filters read from one candidate base (raises when it cannot reach them).
    Only Metric() filters leave a trace (their CTEs, named by metric and entity alone, as
    every base builds them); joins note key uses only under a metric compile."""
    base = candidate.model
    source = Source(
        base, manifest, "group-by items", suffix_paths=suffix_paths, refuse_fan_out=False
    )
    anchor = Measure(
        name="group-by items", agg="", expr="", semantic_model=base.name, agg_time_dimension=""
    )
    found = {items.index(item): _item_value(source, base, item, anchor) for item in others}
    conditions = filter_conditions(tuple(query.where), source, anchor, "where")
    return _BaseRead(candidate, source, found, conditions, source.join_count())


def _joined(
    best: _BaseRead,
    columns: dict[int, tuple[str, exp.Expr]],
    others: list[GroupByItem],
    query: MetricQuery,
) -> tuple[exp.Select, list[exp.Expr]]:
    """The chosen base's FROM, its entity joins made FULL OUTER."""
    source = best.source
    columns.update(best.found)
    select = source.from_clause(exp.select(copy=False))
    entity_joins = set(source.joins) | set(source.metric_joins)
    for join in select.args.get("joins", []):
        if join.alias_or_name in entity_joins:
            join.set("side", "FULL")
    return select, best.conditions


def _shown(others: list[GroupByItem], where: tuple[str, ...]) -> str:
    """The items models are read for, as messages name them."""
    shown = ", ".join(i.text for i in others)
    if not where:
        return shown
    return f"{shown} and the filters' items" if shown else "the filters' items"


def _item_value(
    source: Source, base: SemanticModel, item: GroupByItem, anchor: Measure
) -> tuple[str, exp.Expr]:
    """(column name, value) of one item read from ``base``; a bare time dimension at its own
    grain, named after it."""
    path = item.entity_path
    if len(path) > 1 and path[0] == base.primary_entity:
        # The first hop is the base's own primary entity: walk on from the base.
        item = dataclasses.replace(item, entity_path=path[1:])
    if item.kind != "entity" and not (item.grain or item.date_part):
        model, _alias = source.walk(item.entity_path, item.text, item.element)
        dim = model.dimensions.get(item.element)
        if dim is not None and dim.type == "time":
            item = dataclasses.replace(item, grain=dim.grain or "day")
    return _column_name(path, item), source.item_expr(item, anchor)


def _column_name(path: tuple[str, ...], item: GroupByItem) -> str:
    """The output name: the item as asked for (its whole path), with a bare time
    dimension's grain appended."""
    asked = "__".join((*path, item.element))
    if item.kind == "entity" and not path:
        return item.element
    if item.date_part:
        return f"{asked}__extract_{item.date_part}"
    if item.grain:
        return f"{asked}__{item.grain}"
    return asked


def _spine_read(
    manifest: Manifest,
    times: list[GroupByItem],
    query: MetricQuery,
    columns: dict[int, tuple[str, exp.Expr]],
    items: list[GroupByItem],
) -> exp.Expr:
    """The time spine (fine enough for every metric_time item) as a derived table with one
    column per item, bounded by the query's time range."""
    wanted = [i.grain for i in times if i.grain in SUB_DAILY]
    finest = min(wanted, key=SUB_DAILY.index) if wanted else "day"
    relation, column = spine_at(manifest, finest)
    raw = exp.column(column, table="spine")
    inner = exp.select(copy=False).from_(relation_table(relation, "spine"), copy=False)
    outputs = []
    for item in times:
        grain = item.grain or (finest if wanted else "day")
        name = item.text if (item.grain or item.date_part) else f"{METRIC_TIME}__{grain}"
        if item.date_part:
            value = date_part_expr(raw.copy(), item.date_part)
        elif grain in ALL_GRAINS and grain in SUB_DAILY:
            value = trunc(raw.copy(), grain)
        else:
            value = spine_period(manifest, raw.copy(), grain, "spine")
        outputs.append(value.as_(name))
        columns[items.index(item)] = (name, exp.column(name, table=SPINE))
    inner.set("expressions", outputs)
    bounds = (
        _instant_range(trunc(raw.copy(), finest), query)
        if finest in SUB_DAILY
        else spine_day_range(trunc(raw.copy(), "day"), query, finest)
    )
    for bound in bounds:
        inner = inner.where(bound, copy=False)
    return inner.subquery(SPINE, copy=False)


def _instant_range(value: exp.Expr, query: MetricQuery) -> list[exp.Expr]:
    """``start_time <= value <= end_time`` on a sub-daily spine, to the instant."""
    bounds: list[exp.Expr] = []
    for text, location, node in (
        (query.start_time, "start_time", exp.GTE),
        (query.end_time, "end_time", exp.LTE),
    ):
        if text:
            query_date(text, location)  # a clear error for what is not an ISO timestamp
            instant = dt.datetime.fromisoformat(text).replace(tzinfo=None)
            literal = exp.cast(exp.Literal.string(instant.isoformat(" ")), TIMESTAMP.copy())
            bounds.append(node(this=value.copy(), expression=literal))
    return bounds


@contextlib.contextmanager
def compiling(
    manifest: Manifest, principal: Principal | None, dialect: str, mask_default: str
) -> Iterator[FilterCtes]:
    """The context a compile stage expects: Metric() filter CTEs, and the principal's access
    (filters on masked columns are refused, as in a metric query)."""
    filter_ctes = FilterCtes(query_select)
    token = FILTER_CTES.set(filter_ctes)
    access = Access(manifest, principal, dialect, mask_default) if principal else None
    access_token = ACCESS.set(access)
    try:
        yield filter_ctes
    finally:
        FILTER_CTES.reset(token)
        ACCESS.reset(access_token)
