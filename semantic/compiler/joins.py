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
MSG_FAN_OUT = (
    "joining {model!r} on entity {entity!r} would fan out the measure: {entity!r} is not "
    "unique in {model!r}"
)
MSG_BAD_GRAIN = "grain {grain!r} is finer than {name!r} allows ({allowed})"


@dataclass
class Source:
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
                raise query_error(
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
                raise query_error(
                    MSG_FAN_OUT.format(model=current.name, entity=entity),
                    code="fan_out",
                    location="group_by",
                    hint=f"no semantic model has {entity!r} as a primary or unique entity",
                )
            if len(targets) > 1:
                names = ", ".join(sorted(t.name for t in targets))
                raise query_error(
                    f"ambiguous join path for {item!r}: {entity!r} is unique in {names}",
                    code="ambiguous_join",
                    location="group_by",
                )
            target = targets[0]
            key = path[: depth + 1]
            target_alias = "__".join(key) + "__" + target.name
            if key not in self.joins:
                left = definition_expr(current.entities[entity].expr, alias)
                right = definition_expr(target.entities[entity].expr, target_alias)
                self.joins[key] = (target, exp.EQ(this=left, expression=right))
            current, alias = target, target_alias
        return current, alias

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
            model, alias = self.walk((item.element,), item.text)
            return definition_expr(model.entities[item.element].expr, alias)
        model, alias = self.walk(item.entity_path, item.text)
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
        for key, (target, condition) in self.joins.items():
            target_alias = "__".join(key) + "__" + target.name
            select = append_join(
                select, relation_table(target.relation, target_alias), on=condition, side="LEFT"
            )
        for name, condition in self.metric_joins.items():
            select = append_join(select, cte_ref(name), on=condition.copy(), side="LEFT")
        return select


MAX_HOPS = 3


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
                    # A sub-daily grain (hour, minute…) still rolls up to every grain here.
                    start = GRAINS.index(dim.grain) if dim.grain in GRAINS else 0
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
