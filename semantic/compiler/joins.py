"""Joins: the entity graph of one scan, and what a metric can be grouped by.

``Source`` is FROM one semantic model plus the LEFT JOINs its group-by and filter items need,
walked along entity paths to models where the entity is unique (a join that would fan out a
measure is refused). ``queryable_items`` lists the items a metric can be grouped by, walking
the same graph up to ``MAX_HOPS`` entities away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from registry.definitions.issues import did_you_mean
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.entity_graph import (
    PathError,
    local_entities,
    reachable,
    resolve_path,
)
from semantic.compiler.grains import GRAINS
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
MSG_BAD_GRAIN = "grain {grain!r} is finer than {name!r} allows ({allowed})"


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

    @property
    def alias(self) -> str:
        return self.model.name

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
        if path[0] not in self.model.entities and path[0] not in local_entities(self.model):
            raise query_error(
                MSG_UNREACHABLE.format(name=item, metric=self.metric_name),
                code="unreachable_dimension",
                location="group_by",
                hint=f"{self.model.name!r} has no entity {path[0]!r}; it links "
                + ", ".join(sorted(self.model.entities)),
            )
        chain = resolve_path(self.manifest, self.model, path, element)
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
        key: tuple[str, ...] = path[: len(path) - len(chain)]
        chain_key: tuple[tuple[str, str], ...] = ()
        current, alias = self.model, self.alias
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
                for mine, theirs in partition_pairs(current, target):
                    condition = exp.and_(
                        condition,
                        exp.EQ(
                            this=partition_expr(mine, alias),
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
            current, alias = target, target_alias
        return current, alias

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
        if dim is None and item.element in model.entities and not item.grain:
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
        if item.grain:
            raise query_error(
                f"{item.text!r} is not a time dimension", code="bad_grain", location="group_by"
            )
        return definition_expr(dim.expr, alias)

    def _time(self, dim: Any, alias: str, item: GroupByItem) -> exp.Expr:
        grain = item.grain or dim.grain or "day"
        allowed = GRAINS[GRAINS.index(dim.grain or "day") :]
        if grain not in allowed:
            raise query_error(
                MSG_BAD_GRAIN.format(grain=grain, name=item.text, allowed=", ".join(allowed)),
                code="bad_grain",
                location="group_by",
            )
        return trunc(definition_expr(dim.expr, alias), grain)

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
        return select


def partition_pairs(left: SemanticModel, right: SemanticModel) -> list[tuple[Any, Any]]:
    """Partition dimensions both models declare under one name: a join matches on each."""
    return [
        (dim, right.dimensions[name])
        for name, dim in left.dimensions.items()
        if dim.is_partition and name in right.dimensions and right.dimensions[name].is_partition
    ]


def partition_expr(dim: Any, alias: str) -> exp.Expr:
    value = definition_expr(dim.expr, alias)
    return trunc(value, dim.grain or "day") if dim.type == "time" else value


def queryable_items(manifest: Manifest, metric_name: str) -> list[str]:
    """Every group-by item a metric accepts: metric_time at each grain, entities, and the
    dimensions reachable through unique entities (up to MAX_HOPS joins), as names.

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
        found: set[str] = {f"{METRIC_TIME}__{g}" for g in GRAINS} | {METRIC_TIME}
        found.update(model.entities)
        for path, target in reachable(manifest, model):
            for name, is_time, grain in _elements(target):
                # Only what resolves to one model: the same check a query makes.
                if isinstance(resolve_path(manifest, model, path, name), PathError):
                    continue
                base = "__".join([*path, name])
                found.add(base)
                if is_time:
                    # A sub-daily grain (hour, minute…) still rolls up to every grain here.
                    start = GRAINS.index(grain) if grain in GRAINS else 0
                    found.update(f"{base}__{g}" for g in GRAINS[start:])
        per_model.append(found)
    # A metric over several models accepts only what every one of them can reach.
    common = set.intersection(*per_model) if per_model else set()
    return sorted(common)


def _elements(model: SemanticModel) -> list[tuple[str, bool, str | None]]:
    """(name, is time, grain) of a model's dimensions and entities, as group-by elements."""
    out = [(d.name, d.type == "time", d.grain) for d in model.dimensions.values()]
    out += [(name, False, None) for name in model.entities if name not in model.dimensions]
    return out
