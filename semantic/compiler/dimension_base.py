"""The base model of a query without metrics, chosen as MetricFlow's plan builder chooses it.

A query without metrics reads its rows from one semantic model, the **base**, with the
models its other items live in FULL OUTER JOINed to it (``dimension_query``). MetricFlow's
dataflow plan builder picks that model in its source search for measure-less queries
(``_find_source_node_recipe``, with ``NodeEvaluatorForLinkableInstances`` counting joins):

1. **Candidates** are the models that hold at least one *required* item without a join. The
   required items are the group-by items and every item the filters name. A model holds
   ``<entity>__<element>`` when the entity is one of its primary, unique or natural
   entities and the element one of its dimensions or entities. ``metric_time`` is the
   spine's, CROSS JOINed to every base alike, so it weighs on no choice.
2. Candidates are tried in order of **suitability**: the model offering the fewest group-by
   items first (MetricFlow counts its read node's linkable specs, see ``offered_items``),
   then by name (MetricFlow's model lookup lists models sorted by name).
3. The candidate that reaches every required item with the **fewest joins** is the base
   (``Source.join_count``: one per entity path from the base, and one per Metric() filter);
   among equal counts, the first in that order. A candidate needing no join ends the search.

Two rules are Tally's own:

* a bare entity item (``listing``) is held only by its own model, the one whose primary
  entity it is (``item_owner``). MetricFlow counts it held by every model declaring the
  entity, so its fewest-specs
  order lists the keys of whichever small table references listings (a mapping table)
  instead of the listings themselves;
* when no candidate reaches every item, the other models are tried too, by name (MetricFlow
  refuses the query): one of them may reach the items through paths of its own.

Django-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from registry.definitions.issues import did_you_mean
from semantic.compiler.date_parts import DATE_PART_GRAIN, DATE_PARTS
from semantic.compiler.entity_graph import local_entities
from semantic.compiler.grains import ALL_GRAINS
from semantic.compiler.manifest import Dimension, Manifest, SemanticModel
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, query_error
from semantic.compiler.where import parse_where
from tally.errors import QueryError

# MetricFlow's date parts (dbt-semantic-interfaces' DatePart): Tally's ISO week is not one,
# and the suitability count follows MetricFlow's read node.
MF_DATE_PARTS = tuple(part for part in DATE_PARTS if part != "week")
MSG_NO_OWNER = "no semantic model owns {name!r}: its path must start at a model's primary entity"


@dataclass(frozen=True)
class Candidate:
    """A model that may be the base; ``holds`` says whether it holds a required item itself
    (MetricFlow's candidates) or is one of Tally's fallbacks."""

    model: SemanticModel
    holds: bool


def base_candidates(
    manifest: Manifest, items: Sequence[GroupByItem], where: Sequence[str]
) -> list[Candidate]:
    """The models to try as the base of a query without metrics, in MetricFlow's order.

    Args:
        manifest: the release.
        items: the query's group-by items other than metric_time.
        where: the query's filters (their items are required too).

    Returns:
        The models holding a required item, fewest offered items first (then by name),
        followed by every other model by name.

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> def model(name, entity, dims):
        ...     return ("semantic_model", name, {"name": name, "node_relation": {"alias": name,
        ...         "schema_name": "main"}, "entities": [{"name": entity, "type": "primary"}],
        ...         "dimensions": [{"name": d, "type": "categorical"} for d in dims]}, "1")
        >>> m = build_manifest([model("wide", "user", ["a", "b"]), model("narrow", "user", ["a"]),
        ...     model("other", "team", ["c"])])
        >>> item = GroupByItem("user__a", "dimension", "a", ("user",))
        >>> [(c.model.name, c.holds) for c in base_candidates(m, [item], [])]
        [('narrow', True), ('wide', True), ('other', False)]
    """
    required = [*items, *_filter_items(manifest, where)]
    owners = {id(item): _owner(manifest, item) for item in required if _bare_entity(item)}
    models = sorted(manifest.semantic_models.values(), key=lambda m: m.name)
    holding = [m for m in models if any(_holds(m, i, owners.get(id(i))) for i in required)]
    # sorted() is stable: models offering as many items stay in name order.
    holding.sort(key=offered_items)
    rest = [m for m in models if m not in holding]
    return [Candidate(m, True) for m in holding] + [Candidate(m, False) for m in rest]


def offered_items(model: SemanticModel) -> int:
    """How many group-by items ``model`` offers without a join, counted as MetricFlow counts
    its read node's linkable specs: each dimension (a time dimension once per grain from its
    own up and per date part it allows) and each entity, once bare and once under each of the
    model's primary, unique and natural entities, except an entity under its own name.

    Example:
        >>> from semantic.compiler.manifest import Entity
        >>> users = SemanticModel("users", (None, "main", "users"), {"user": Entity("user",
        ...     "primary", "id")}, {"role": Dimension("role", "categorical", "role")}, {}, "user")
        >>> offered_items(users)  # role, user__role, user
        3
    """
    links = local_entities(model)
    per_link = len(model.entities) + sum(_time_specs(d) for d in model.dimensions.values())
    return (1 + len(links)) * per_link - len(links & set(model.entities))


def _time_specs(dim: Dimension) -> int:
    """Items one dimension offers under one entity link: a categorical one 1, a time one its
    own grain, each coarser grain and each MetricFlow date part not finer than its data."""
    if dim.type != "time":
        return 1
    grain = dim.grain or "day"
    # A grain Tally does not list (finer than a millisecond) offers every listed one.
    own = ALL_GRAINS.index(grain) if grain in ALL_GRAINS else -1
    coarser = len(ALL_GRAINS) - own - 1
    parts = sum(1 for p in MF_DATE_PARTS if ALL_GRAINS.index(DATE_PART_GRAIN[p]) >= own)
    return 1 + coarser + parts


def _holds(model: SemanticModel, item: GroupByItem, owner: SemanticModel | None) -> bool:
    """Whether ``model`` reads ``item`` without a join (MetricFlow's local specs; a bare
    entity only from its own model, see the module docstring)."""
    if _bare_entity(item):
        return owner is model
    if len(item.entity_path) != 1 or item.entity_path[0] not in local_entities(model):
        return False
    return item.element in model.dimensions or item.element in model.entities


def _bare_entity(item: GroupByItem) -> bool:
    return not item.entity_path and item.element != METRIC_TIME


def _owner(manifest: Manifest, item: GroupByItem) -> SemanticModel | None:
    """The entity's own model; None when no model has it as primary entity (the item then
    fails on every base, with the error the base's read gives)."""
    try:
        return item_owner(manifest, item)
    except QueryError:
        return None


def _filter_items(manifest: Manifest, where: Sequence[str]) -> list[GroupByItem]:
    """The dimension, time dimension and entity items the filters name (Metric() items are
    computed apart and joined on their entity: no model holds them)."""
    grains = manifest.time_spine.custom_grain_names
    found = []
    for index, template in enumerate(where):
        parsed = parse_where(template, location=f"where[{index}]", custom_granularity_names=grains)
        for ref in parsed.refs:
            if ref.kind == "metric" or ref.name == METRIC_TIME:
                continue
            kind = "entity" if ref.kind == "entity" and not ref.entity_path else "dimension"
            found.append(GroupByItem(ref.text, kind, ref.name, tuple(ref.entity_path)))
    return found


def item_owner(manifest: Manifest, item: GroupByItem) -> SemanticModel:
    """The model an item's path starts from: the one whose primary entity is its first hop
    (for ``account__plan``, the model with primary entity ``account`` holding ``plan``)."""
    first = item.entity_path[0] if item.entity_path else item.element
    homes = [m for m in manifest.semantic_models.values() if m.primary_entity == first]
    if len(item.entity_path) == 1:
        holding = [m for m in homes if item.element in m.dimensions or item.element in m.entities]
        homes = holding or homes
    if not homes:
        raise query_error(
            MSG_NO_OWNER.format(name=item.text),
            code="unknown_dimension",
            location="dimension",
            hint=did_you_mean(
                first,
                {m.primary_entity for m in manifest.semantic_models.values() if m.primary_entity},
            ),
        )
    return sorted(homes, key=lambda m: m.name)[0]
