"""Joins: the entity graph of one scan, and what a metric can be grouped by.

``Source`` is FROM one semantic model plus the LEFT JOINs its group-by and filter items need,
walked along entity paths to models where the entity is unique (a join that would fan out a
measure is refused). ``queryable_items`` lists the items a metric can be grouped by, walking
the same graph up to ``MAX_HOPS`` entities away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from registry.definitions.issues import did_you_mean
from semantic.compiler.date_parts import (
    DATE_PART_GRAIN,
    DATE_PARTS,
    EXTRACT_PREFIX,
    date_part_expr,
)
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.entity_graph import (
    Hop,
    PathError,
    local_entities,
    reachable,
    resolve_path,
)
from semantic.compiler.grains import ALL_GRAINS, GRAINS
from semantic.compiler.key_uses import key_use_note
from semantic.compiler.manifest import Manifest, Measure, SemanticModel
from semantic.compiler.nodes import append_join, cte_ref, relation_table
from semantic.compiler.plan import leaves_of
from semantic.compiler.resolve import METRIC_TIME, MSG_UNKNOWN_METRIC, GroupByItem, query_error
from semantic.compiler.time import trunc

MSG_UNKNOWN_ITEM = "unknown group-by item {name!r} for metric {metric!r}"
MSG_UNREACHABLE = "{name!r} cannot be reached from metric {metric!r}"
MSG_NOT_AN_ENTITY = (
    "{name!r} is not an entity: {model!r} has no entity of that name (use Dimension() for "
    "a dimension)"
)
MSG_SCD_NO_TIME = (
    "{name!r} is read from {model!r}, an SCD type II model, which is joined at the measure's "
    "time; {source} has none"
)
HINT_SCD_NO_TIME = (
    "an SCD dimension needs the measure's agg_time_dimension to pick the row valid at that time"
)
MSG_PARTITION_FAN_OUT = (
    "{name!r} is read from {target!r}, which holds one row per {entity} and {parts}; "
    "{source!r} has no {parts} to match, so each of its rows would be counted once per "
    "partition (a fan-out)"
)
HINT_PARTITION_FAN_OUT = (
    "group by the item through a model that is not partitioned (e.g. a *_latest model), or "
    "declare the partition dimension on {source!r} too"
)
MSG_BAD_GRAIN = "grain {grain!r} is finer than {name!r} allows: its data is at {data} grain"


@dataclass
class Source:
    """FROM one semantic model with the joins its group-by and filter items need."""

    model: SemanticModel
    manifest: Manifest
    metric_name: str
    # The measure's agg_time_dimension (a dimension of ``model``): SCD joins pick the row
    # valid at that time. Empty where no measure is read (row policies): SCD joins refused.
    time_dimension: str = ""
    # Table alias → (model joined, ON condition), in join order.
    joins: dict[str, tuple[SemanticModel, exp.Expr]] = field(default_factory=dict)
    _aliases: dict[tuple[tuple[str, str], ...], str] = field(default_factory=dict, repr=False)
    # Metric() filter subqueries (CTE name → join condition), LEFT JOINed after the entities.
    metric_joins: dict[str, exp.Expr] = field(default_factory=dict)
    # Day spines joined for custom grains (alias → join condition), LEFT JOINed last.
    spine_joins: dict[str, exp.Expr] = field(default_factory=dict)
    # Whether a path this model has no first entity for may name the end of a longer one
    # (entity_graph's suffix rule). Queries without metrics first look for a base model
    # that reaches every item as written (dimension_query).
    suffix_paths: bool = True
    # Whether a join to a partitioned model that matches none of its partitions is refused.
    # Queries without metrics list the joined rows as they are (MetricFlow joins such a model
    # on its entity alone): with no measure, nothing is counted twice.
    refuse_fan_out: bool = True

    @property
    def alias(self) -> str:
        return self.model.name

    def join_count(self) -> int:
        """The joins, counted as MetricFlow's plan builder counts its join recipes: one per
        entity path from this model (a path that a longer one extends is counted with it,
        as MetricFlow joins a multi-hop path as one node) and one per Metric() filter."""
        paths = list(self._aliases)
        longest = [p for p in paths if not any(len(q) > len(p) and q[: len(p)] == p for q in paths)]
        return len(longest) + len(self.metric_joins)

    def walk(
        self, path: tuple[str, ...], item: str, element: str | None = None
    ) -> tuple[SemanticModel, str]:
        """Follows an entity path from this model to the one model that supplies ``element``
        (``entity_graph``; by default the name after the path in ``item``, the text errors
        quote); returns (model, table alias) at its end, adding its joins."""
        if element is None:
            parts = item.split("__")
            element = parts[len(path)] if len(parts) > len(path) else parts[-1]
        if not path:
            return self.model, self.alias
        foreign_start = path[0] not in self.model.entities and path[0] not in local_entities(
            self.model
        )
        chain: tuple[Hop, ...] | PathError = PathError("unreachable_dimension", "")
        if self.suffix_paths or not foreign_start:
            chain = resolve_path(self.manifest, self.model, path, element)
        if foreign_start and isinstance(chain, PathError) and chain.code != "ambiguous_join":
            # No join path ends with the path either (entity_graph's suffix rule).
            raise query_error(
                MSG_UNREACHABLE.format(name=item, metric=self.metric_name),
                code="unreachable_dimension",
                location="group_by",
                hint=f"{self.model.name!r} has no entity {path[0]!r}; it links "
                + ", ".join(sorted(self.model.entities)),
            )
        if isinstance(chain, PathError) and chain.code == "unknown_dimension":
            raise query_error(
                MSG_UNKNOWN_ITEM.format(name=item, metric=self.metric_name),
                code="unknown_dimension",
                location="group_by",
                hint=did_you_mean(element, chain.known),
            )
        if isinstance(chain, PathError):
            raise query_error(
                chain.message or MSG_UNREACHABLE.format(name=item, metric=self.metric_name),
                code=chain.code,
                location="group_by",
                hint=chain.hint,
            )
        # Aliases name the path (a leading local entity included) and the model joined; one
        # join per chain of (entity, model), however many items read it.
        # A chain longer than the path is a partial path's whole one (the suffix rule).
        key: tuple[str, ...] = path[: max(0, len(path) - len(chain))]
        chain_key: tuple[tuple[str, str], ...] = ()
        current, alias = self.model, self.alias
        # Models joined so far along this chain, nearest last: partition matches look back.
        behind: list[tuple[SemanticModel, str]] = [(current, alias)]
        for hop in chain:
            key = (*key, hop.entity)
            chain_key = (*chain_key, (hop.entity, hop.model.name))
            target = hop.model
            target_alias = self._aliases.get(chain_key, "")
            if not target_alias:
                target_alias = "__".join(key) + "__" + target.name
                while target_alias in self.joins:
                    # The same path and model reached through another intermediate model.
                    target_alias += "_"
                left = definition_expr(current.entities[hop.entity].expr, alias)
                right = definition_expr(target.entities[hop.entity].expr, target_alias)
                condition: exp.Expr = exp.EQ(this=left, expression=right)
                matches = partition_matches(behind, target)
                if self.refuse_fan_out:
                    self._refuse_partition_fan_out(target, matches, behind, hop.entity, item)
                for mine, mine_alias, theirs in matches:
                    condition = exp.and_(
                        condition,
                        exp.EQ(
                            this=partition_expr(mine, mine_alias),
                            expression=partition_expr(theirs, target_alias),
                        ),
                        copy=False,
                    )
                if target.validity is not None:
                    condition = exp.and_(
                        condition, self._within_validity(target, target_alias, item), copy=False
                    )
                self._aliases[chain_key] = target_alias
                self.joins[target_alias] = (target, condition)
                # One row per measure row only while the data holds the declared key: the
                # executor checks it (semantic.key_guard) before the query runs.
                key_use_note(target, hop.entity, item)
            current, alias = target, target_alias
            behind.append((current, alias))
        return current, alias

    def _refuse_partition_fan_out(
        self,
        target: SemanticModel,
        matches: list[tuple[Any, str, Any]],
        behind: list[tuple[SemanticModel, str]],
        entity: str,
        item: str,
    ) -> None:
        """A partitioned model (a snapshot: one row per key and partition) joined from models
        that match none of its partitions repeats every row once per partition: refused,
        never a silently multiplied measure."""
        missing = partitions_unmatched(target, matches)
        if not missing:
            return
        raise query_error(
            MSG_PARTITION_FAN_OUT.format(
                name=item,
                target=target.name,
                entity=entity,
                parts=", ".join(missing),
                source=behind[0][0].name,
            ),
            code="fan_out",
            location="group_by",
            hint=HINT_PARTITION_FAN_OUT.format(source=behind[0][0].name),
        )

    def _within_validity(self, target: SemanticModel, alias: str, item: str) -> exp.Expr:
        """SCD type II: the row of ``target`` valid at the measure's time,
        ``start <= t AND (t < end OR end IS NULL)``, each side at its dimension's grain as
        MetricFlow compares them."""
        assert target.validity is not None
        time_dim = self.model.dimensions.get(self.time_dimension)
        if time_dim is None or time_dim.type != "time":
            raise query_error(
                MSG_SCD_NO_TIME.format(name=item, model=target.name, source=self.metric_name),
                code="scd_needs_time",
                location="group_by",
                hint=HINT_SCD_NO_TIME,
            )
        start, end = (target.dimensions[name] for name in target.validity)
        at = trunc(definition_expr(time_dim.expr, self.alias), time_dim.grain or "day")
        start_at = trunc(definition_expr(start.expr, alias), start.grain or "day")
        end_at = trunc(definition_expr(end.expr, alias), end.grain or "day")
        return exp.and_(
            exp.LTE(this=start_at, expression=at),
            exp.paren(
                exp.or_(
                    exp.LT(this=at.copy(), expression=end_at),
                    exp.Is(this=end_at.copy(), expression=exp.Null()),
                    copy=False,
                ),
                copy=False,
            ),
            copy=False,
        )

    def item_expr(self, item: GroupByItem, measure: Measure) -> exp.Expr:
        if item.kind == "time" and item.element == METRIC_TIME:
            dim = self.model.dimensions.get(measure.agg_time_dimension)
            if dim is None:
                raise query_error(
                    f"measure {measure.name!r} has no agg_time_dimension for metric_time",
                    code="unreachable_dimension",
                    location="group_by",
                )
            return self._time(dim, self.alias, item)
        if item.kind == "entity":
            if item.element in self.model.entities:
                return definition_expr(self.model.entities[item.element].expr, self.alias)
            model, alias = self.walk((item.element,), item.text, item.element)
            return definition_expr(model.entities[item.element].expr, alias)
        model, alias = self.walk(item.entity_path, item.text, item.element)
        dim = model.dimensions.get(item.element)
        if dim is None and item.element in model.entities and not (item.grain or item.date_part):
            # An entity reached along a path (account__parent_account): its key column.
            return definition_expr(model.entities[item.element].expr, alias)
        if dim is None:
            raise query_error(
                MSG_UNKNOWN_ITEM.format(name=item.text, metric=self.metric_name),
                code="unknown_dimension",
                location="group_by",
                hint=did_you_mean(item.element, model.dimensions),
            )
        if dim.type == "time":
            return self._time(dim, alias, item)
        if item.grain or item.date_part:
            raise query_error(
                f"{item.text!r} is not a time dimension", code="bad_grain", location="group_by"
            )
        return definition_expr(dim.expr, alias)

    def _time(self, dim: Any, alias: str, item: GroupByItem) -> exp.Expr:
        data_grain = dim.grain or "day"
        allowed = ALL_GRAINS[ALL_GRAINS.index(data_grain) :] if data_grain in ALL_GRAINS else GRAINS
        if item.date_part:
            # A date part reads the dimension's own value (MetricFlow extracts from the
            # column, not from a truncation); it must not be finer than the data.
            if DATE_PART_GRAIN[item.date_part] not in allowed:
                raise query_error(
                    f"date part {item.date_part!r} is finer than {item.text!r} allows: its "
                    f"data is at {data_grain} grain",
                    code="grain_too_fine",
                    location="group_by",
                    hint="date parts of it: "
                    + ", ".join(p for p in DATE_PARTS if DATE_PART_GRAIN[p] in allowed),
                )
            return date_part_expr(definition_expr(dim.expr, alias), item.date_part)
        grain = item.grain or data_grain
        spine = self.manifest.time_spine
        custom = spine.custom_column(grain) if grain not in ALL_GRAINS else None
        if grain not in ALL_GRAINS and custom is None:
            grains = (*ALL_GRAINS, *spine.custom_grain_names)
            raise query_error(
                f"unknown time grain {grain!r} in {item.text!r}",
                code="unknown_grain",
                location="group_by",
                hint=(did_you_mean(grain, grains) or "grains: " + ", ".join(grains))
                + "; a custom grain must be one of the time spine model's custom_granularities",
            )
        # A custom grain is a column of the day spine: its periods are made of whole days.
        if (grain if custom is None else "day") not in allowed:
            raise query_error(
                MSG_BAD_GRAIN.format(grain=grain, name=item.text, data=data_grain),
                code="grain_too_fine",
                location="group_by",
                hint="grains it allows: " + ", ".join(allowed),
            )
        value = definition_expr(dim.expr, alias)
        if custom is not None:
            return self.spine_column(value, alias, dim.name, custom)
        return trunc(value, grain)

    def spine_column(self, value: exp.Expr, alias: str, dim_name: str, column: str) -> exp.Expr:
        """``column`` of the day spine for the day of ``value``: a LEFT JOIN of the spine on
        that day, once per time dimension of the scan (MetricFlow joins it the same way)."""
        spine = self.manifest.time_spine
        spine_alias = f"{alias}__{dim_name}__spine"
        if spine_alias not in self.spine_joins:
            self.spine_joins[spine_alias] = exp.EQ(
                this=exp.column(spine.column, table=spine_alias), expression=trunc(value, "day")
            )
        return exp.column(column, table=spine_alias)

    def from_clause(self, select: exp.Select, base: exp.Expr | None = None) -> exp.Select:
        """FROM the model's table (or ``base``, a derived table under the model's alias) and
        LEFT JOINs to every model the items reached."""
        select = select.from_(
            base if base is not None else relation_table(self.model.relation, self.alias),
            copy=False,
        )
        for target_alias, (target, condition) in self.joins.items():
            select = append_join(
                select, relation_table(target.relation, target_alias), on=condition, side="LEFT"
            )
        for name, condition in self.metric_joins.items():
            select = append_join(select, cte_ref(name), on=condition.copy(), side="LEFT")
        for spine_alias, condition in self.spine_joins.items():
            spine = relation_table(self.manifest.time_spine.relation, spine_alias)
            select = append_join(select, spine, on=condition.copy(), side="LEFT")
        return select


def partition_matches(
    behind: list[tuple[SemanticModel, str]], target: SemanticModel
) -> list[tuple[Any, str, Any]]:
    """(partition dimension, its alias, ``target``'s partition dimension of that name) for
    each partition dimension of ``target`` that a model already joined declares too.

    MetricFlow joins a multi-hop dimension as one node (``listings`` joined to ``users``) and
    matches the measure's partitions against every partition of that node by name, the
    nearest model first. So ``bookings → listings → users`` matches ``users.ds_partitioned``
    with ``bookings.ds_partitioned`` although ``listings`` has no partition: without it, a
    partitioned snapshot table (one row per user and day) multiplies every booking.
    """
    found = []
    for name, theirs in target.dimensions.items():
        if not theirs.is_partition:
            continue
        for model, alias in reversed(behind):
            mine = model.dimensions.get(name)
            if mine is not None and mine.is_partition:
                found.append((mine, alias, theirs))
                break
    return found


def partitions_unmatched(target: SemanticModel, matches: list[tuple[Any, str, Any]]) -> list[str]:
    """The partition dimensions of ``target`` that no model joined before it matches: a join
    to ``target`` would repeat each row once per partition (refused as ``fan_out``)."""
    matched = {theirs.name for _mine, _alias, theirs in matches}
    return [d.name for d in target.dimensions.values() if d.is_partition and d.name not in matched]


def partition_fans_out(model: SemanticModel, chain: tuple[Any, ...]) -> bool:
    """Whether a chain of hops from ``model`` reaches a partitioned model whose partitions the
    models before it leave unmatched: the query would refuse it (``Source.walk``), so lists
    leave its items out."""
    behind: list[tuple[SemanticModel, str]] = [(model, "")]
    for hop in chain:
        if partitions_unmatched(hop.model, partition_matches(behind, hop.model)):
            return True
        behind.append((hop.model, ""))
    return False


def partition_expr(dim: Any, alias: str) -> exp.Expr:
    value = definition_expr(dim.expr, alias)
    return trunc(value, dim.grain or "day") if dim.type == "time" else value


def dim_grains(manifest: Manifest, grain: str | None) -> list[str]:
    """The grains a time dimension at ``grain`` can be grouped by: its own and coarser ones,
    and the spine's custom grains when its data is daily or finer."""
    data = grain if grain in ALL_GRAINS else "day"
    grains = list(ALL_GRAINS[ALL_GRAINS.index(data) :])
    if "day" in grains:
        grains += manifest.time_spine.custom_grain_names
    return grains


def time_grains(manifest: Manifest, model_name: str, leaves: list[Any]) -> list[str]:
    """metric_time's grains for the leaves of one model: those of the finest data among their
    agg_time_dimensions."""
    model = manifest.semantic_models[model_name]
    found: set[str] = set()
    for leaf in leaves:
        dim = model.dimensions.get(leaf.measure.agg_time_dimension)
        found.update(dim_grains(manifest, dim.grain if dim is not None else None))
    return sorted(found) if found else dim_grains(manifest, "day")


def queryable_items(manifest: Manifest, metric_name: str) -> list[str]:
    """Every group-by item a metric accepts: metric_time at each grain, entities, and the
    dimensions reachable through unique entities (up to MAX_HOPS joins, no entity twice on
    one path), as names. Items a query would refuse (a partition fan-out) are left out.

    Raises:
        QueryError: unknown metric.
    """
    if metric_name not in manifest.metrics:
        raise query_error(
            MSG_UNKNOWN_METRIC.format(name=metric_name),
            code="unknown_metric",
            location="metric",
            hint=did_you_mean(metric_name, manifest.metrics),
        )
    leaves = leaves_of(manifest.metrics[metric_name], manifest, (), ())
    per_model: list[set[str]] = []
    # Conversion events are grouped under their base event's items: their model need not
    # reach the group-by items itself.
    for model_name in {leaf.measure.semantic_model for leaf in leaves if not leaf.conversion}:
        model = manifest.semantic_models[model_name]
        model_leaves = [leaf for leaf in leaves if leaf.measure.semantic_model == model_name]
        found: set[str] = {METRIC_TIME}
        found.update(f"{METRIC_TIME}__{g}" for g in time_grains(manifest, model_name, model_leaves))
        found.update(f"{METRIC_TIME}__{EXTRACT_PREFIX}{p}" for p in DATE_PARTS)
        found.update(model.entities)
        for path, target in reachable(manifest, model):
            for name, is_time, grain in _elements(target):
                if name in path and name not in target.dimensions:
                    continue  # account__account: the entity the path already names
                # Only what resolves to one model and joins without a partition fan-out:
                # the same checks a query makes, so lists and queries agree.
                chain = resolve_path(manifest, model, path, name)
                if isinstance(chain, PathError) or partition_fans_out(model, chain):
                    continue
                base = "__".join([*path, name])
                found.add(base)
                if is_time:
                    grains = dim_grains(manifest, grain)
                    found.update(f"{base}__{g}" for g in grains)
                    found.update(
                        f"{base}__{EXTRACT_PREFIX}{p}"
                        for p in DATE_PARTS
                        if DATE_PART_GRAIN[p] in grains
                    )
        per_model.append(found)
    # A metric over several models accepts only what every one of them can reach.
    common = set.intersection(*per_model) if per_model else set()
    return sorted(common)


def common_queryable_items(manifest: Manifest, metric_names: Sequence[str]) -> list[str]:
    """The group-by items every one of ``metric_names`` accepts (a query naming them all can
    group by exactly these), in the first metric's order.

    Args:
        manifest: the release's manifest.
        metric_names: at least one metric name.

    Returns:
        The items of ``queryable_items`` common to all the metrics.

    Raises:
        QueryError: an unknown metric.
    """
    common = queryable_items(manifest, metric_names[0])
    for name in metric_names[1:]:
        accepted = set(queryable_items(manifest, name))
        common = [item for item in common if item in accepted]
    return common


def _elements(model: SemanticModel) -> list[tuple[str, bool, str | None]]:
    """(name, is time, grain) of a model's dimensions and entities, as group-by elements."""
    out = [(d.name, d.type == "time", d.grain) for d in model.dimensions.values()]
    out += [(name, False, None) for name in model.entities if name not in model.dimensions]
    return out
