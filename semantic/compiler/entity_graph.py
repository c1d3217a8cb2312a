"""Entity graph: which model supplies a group-by item, and which joins may be made to reach it.

MetricFlow's rules (``SemanticModelJoinEvaluator``), applied at every hop up to ``MAX_HOPS``:

- a join goes *to* a model where the entity is ``primary`` or ``unique`` (one row per entity),
  or ``natural`` in an SCD type II model (one row per entity at any time, picked by the
  validity window against the measure's time); never to a ``foreign`` entity (many rows per
  entity: the measure would be multiplied) nor to a ``natural`` entity without a window;
- two SCD models are never joined to each other (two windows in play hide a fan-out);
- an item resolves through the model that holds it: several models may share an entity, and
  an item is ambiguous only when two different join paths of the same length supply it. The
  measure's own model answers first (``account__plan`` on accounts needs no join);
- a partial path names the end of a longer one (MetricFlow's entity-link suffix match):
  ``user__last_login_ts`` from bookings, which has no ``user`` entity, resolves through
  ``listing__user`` when that is the shortest reachable path ending in ``user`` that holds the
  item; two such paths of that length are ``ambiguous_join``. Asked only when the path as
  written cannot start from the model, so a path that can is never re-read as a suffix.

Resolution is pure and cached per manifest (``Manifest.path_cache``): every compile asks.
"""

from __future__ import annotations

from dataclasses import dataclass

from semantic.compiler.manifest import Manifest, SemanticModel

# Tally follows entity paths one hop further than MetricFlow's two.
MAX_HOPS = 3

# (left entity type, right entity type) pairs that cannot multiply the left's rows. A natural
# right side is checked for its validity window separately.
JOINABLE_TO = frozenset({"primary", "unique", "natural"})

MSG_FAN_OUT = (
    "joining {target!r} to {model!r} on entity {entity!r} would fan out the measure: "
    "{entity!r} is {type} in {target!r} (many rows per {entity})"
)
MSG_NATURAL_NO_WINDOW = (
    "joining {target!r} to {model!r} on entity {entity!r} could fan out the measure: "
    "{entity!r} is natural in {target!r}, which has no validity window (validity_params)"
)
MSG_SCD_TO_SCD = (
    "joining {target!r} to {model!r} on entity {entity!r} is refused: both are SCD type II "
    "models, and two validity windows in one join can fan out or drop rows (as in MetricFlow)"
)
MSG_NO_TARGET = "no semantic model can be joined on entity {entity!r} from {model!r}"
MSG_AMBIGUOUS = "ambiguous join path for {item!r}: it can be reached through {paths}"
HINT_AMBIGUOUS = (
    "two models supply the same item; rename one of the dimensions, or group by a longer "
    "path that names the model's entity"
)
MSG_AMBIGUOUS_SUFFIX = (
    "ambiguous join path for {item!r}: {model!r} has no entity {entity!r}, and {count} join "
    "paths end with it: {paths}"
)
HINT_AMBIGUOUS_SUFFIX = "name the whole path, e.g. {example!r}"


@dataclass(frozen=True)
class Hop:
    """One LEFT JOIN of a path: ``model`` joined on ``entity`` to the model before it."""

    entity: str
    model: SemanticModel


@dataclass(frozen=True)
class PathError:
    """Why an item cannot be reached: a QueryError's code, message and hint."""

    code: str
    message: str
    hint: str | None = None
    # unknown_dimension: the element names the path does reach (for did-you-mean).
    known: tuple[str, ...] = ()


def join_refusal(left: SemanticModel, right: SemanticModel, entity: str) -> str | None:
    """Why joining ``right`` to ``left`` on ``entity`` could change the measure's number;
    None when the join keeps one ``right`` row per ``left`` row.

    Example:
        >>> from semantic.compiler.manifest import Entity
        >>> def model(name, kind):
        ...     return SemanticModel(name, (None, "main", name), {"u": Entity("u", kind, "u_id")},
        ...         {}, {}, None)
        >>> join_refusal(model("events", "foreign"), model("users", "primary"), "u") is None
        True
        >>> join_refusal(model("users", "primary"), model("events", "foreign"), "u")[:30]
        "joining 'events' to 'users' on"
    """
    left_entity, right_entity = left.entities.get(entity), right.entities.get(entity)
    if left_entity is None or right_entity is None:
        return MSG_NO_TARGET.format(entity=entity, model=left.name)
    if left.validity and right.validity:
        return MSG_SCD_TO_SCD.format(target=right.name, model=left.name, entity=entity)
    if right_entity.type not in JOINABLE_TO:
        return MSG_FAN_OUT.format(
            target=right.name, model=left.name, entity=entity, type=right_entity.type
        )
    if right_entity.type == "natural" and right.validity is None:
        return MSG_NATURAL_NO_WINDOW.format(target=right.name, model=left.name, entity=entity)
    return None


def is_join_target(model: SemanticModel, entity: str) -> bool:
    """Whether a join on ``entity`` may go *to* ``model``: one row per entity (at a time)."""
    found = model.entities.get(entity)
    if found is None or found.type not in JOINABLE_TO:
        return False
    return found.type != "natural" or model.validity is not None


def local_entities(model: SemanticModel) -> set[str]:
    """The entity names under which a model's own dimensions are read without a join: its
    primary entity and its one-row-per-entity entities (MetricFlow's local model node)."""
    names = {e.name for e in model.entities.values() if e.type in JOINABLE_TO}
    if model.primary_entity:
        names.add(model.primary_entity)
    return names


def holds(model: SemanticModel, element: str | None) -> bool:
    return element is None or element in model.dimensions or element in model.entities


def resolve_path(
    manifest: Manifest, model: SemanticModel, path: tuple[str, ...], element: str
) -> tuple[Hop, ...] | PathError:
    """The joins that reach ``element`` along ``path`` from ``model``: () when the model
    holds it itself, or a PathError saying why no single path does. Cached per manifest.

    Example:
        >>> from semantic.compiler.manifest import Entity, Dimension
        >>> events = SemanticModel("events", (None, "main", "events"), {"user": Entity("user",
        ...     "foreign", "user_id")}, {}, {}, None)
        >>> users = SemanticModel("users", (None, "main", "users"), {"user": Entity("user",
        ...     "primary", "id")}, {"role": Dimension("role", "categorical", "role")}, {}, "user")
        >>> m = Manifest("", {"events": events, "users": users}, {}, {}, {}, None)
        >>> [hop.model.name for hop in resolve_path(m, events, ("user",), "role")]
        ['users']
    """
    key = (model.name, path, element)
    found = manifest.path_cache.get(key)
    if found is None:
        found = _resolve(manifest, model, path, element)
        manifest.path_cache[key] = found
    return found


def _resolve(
    manifest: Manifest, model: SemanticModel, path: tuple[str, ...], element: str
) -> tuple[Hop, ...] | PathError:
    refusals: list[str] = []
    chains = _chains(manifest, model, path, element, local=True, refusals=refusals)
    if chains:
        shortest = min(len(chain) for chain in chains)
        # By description: a Hop holds its model, whose mappings are not hashable.
        found = {_describe(c): c for c in chains if len(c) == shortest}
        best = [found[name] for name in sorted(found)]
        if len(best) == 1:
            return best[0]
        return PathError(
            "ambiguous_join",
            MSG_AMBIGUOUS.format(
                item="__".join((*path, element)), paths=" and ".join(map(_describe, best))
            ),
            HINT_AMBIGUOUS,
        )
    if len(path) > MAX_HOPS:
        return PathError(
            "unreachable_dimension",
            f"{'__'.join((*path, element))!r} is more than {MAX_HOPS} joins away",
        )
    if refusals:
        # The first refusal on the path is the one that stopped it (the nearest hop).
        return PathError("fan_out", refusals[0], _target_hint(manifest, path[0]))
    ends = _chains(manifest, model, path, None, local=True, refusals=[])
    if ends:
        # The path reaches models, none of which has the element: a misspelt name.
        known = sorted(
            {n for c in ends for n in (*_last(model, c).dimensions, *_last(model, c).entities)}
        )
        return PathError("unknown_dimension", "", None, tuple(known))
    if path and path[0] not in model.entities:
        suffixed = _resolve_suffix(manifest, model, path, element)
        if suffixed is not None:
            return suffixed
    if path and path[0] in model.entities and not _chains_exist_through(manifest, model, path[0]):
        return PathError(
            "unreachable_dimension",
            MSG_NO_TARGET.format(entity=path[0], model=model.name),
            _target_hint(manifest, path[0]),
        )
    return PathError("unreachable_dimension", "", None)


def _resolve_suffix(
    manifest: Manifest, model: SemanticModel, path: tuple[str, ...], element: str
) -> tuple[Hop, ...] | PathError | None:
    """The chain of the shortest join path from ``model`` whose entities end with ``path``
    and whose last model holds ``element`` (MetricFlow keeps the shortest of the entity-link
    paths a partial path matches); an ``ambiguous_join`` naming them when several paths of
    that length do; None when no path ends so."""
    found = [c for c in _all_chains(manifest, model, (), MAX_HOPS) if _ends_with(c, path)]
    found = [c for c in found if holds(c[-1].model, element)]
    if not found:
        return None
    shortest = min(len(chain) for chain in found)
    best = sorted((c for c in found if len(c) == shortest), key=full_name)
    if len(best) == 1:
        return best[0]
    item = "__".join((*path, element))
    return PathError(
        "ambiguous_join",
        MSG_AMBIGUOUS_SUFFIX.format(
            item=item,
            model=model.name,
            entity=path[0],
            count=len(best),
            paths=" and ".join(f"{full_name(c)}__{element} ({_describe(c)})" for c in best),
        ),
        HINT_AMBIGUOUS_SUFFIX.format(example=f"{full_name(best[0])}__{element}"),
    )


def _all_chains(
    manifest: Manifest, model: SemanticModel, visited: tuple[str, ...], hops_left: int
) -> list[tuple[Hop, ...]]:
    """Every chain of allowed joins from ``model`` of 1 to ``hops_left`` hops that visits no
    model twice (a cycle back to a model reads nothing a shorter chain does not)."""
    out: list[tuple[Hop, ...]] = []
    if hops_left == 0:
        return out
    seen = (*visited, model.name)
    for entity in sorted(model.entities):
        for target in manifest.models_with_entity(entity):
            if target.name in seen or join_refusal(model, target, entity) is not None:
                continue
            hop = Hop(entity, target)
            out.append((hop,))
            out.extend((hop, *rest) for rest in _all_chains(manifest, target, seen, hops_left - 1))
    return out


def _ends_with(chain: tuple[Hop, ...], path: tuple[str, ...]) -> bool:
    entities = tuple(hop.entity for hop in chain)
    return len(entities) > len(path) and entities[-len(path) :] == path


def full_name(chain: tuple[Hop, ...]) -> str:
    """The dundered entity path of a join chain (``listing__user``).

    Example:
        >>> from semantic.compiler.manifest import Entity
        >>> users = SemanticModel("users", (None, "main", "users"), {"user": Entity("user",
        ...     "primary", "id")}, {}, {}, "user")
        >>> full_name((Hop("listing", users), Hop("user", users)))
        'listing__user'
    """
    return "__".join(hop.entity for hop in chain)


def suffix_path(chain: tuple[Hop, ...], path: tuple[str, ...]) -> tuple[str, ...] | None:
    """The whole entity path a partial ``path`` was resolved to by the suffix rule (the
    chain's entities, longer than ``path`` and ending with it); None for a path resolved as
    written (whose chain is the path itself, or the path less a local first entity)."""
    entities = tuple(hop.entity for hop in chain)
    return entities if _ends_with(chain, path) else None


def _last(model: SemanticModel, chain: tuple[Hop, ...]) -> SemanticModel:
    return chain[-1].model if chain else model


def _chains_exist_through(manifest: Manifest, model: SemanticModel, entity: str) -> bool:
    return any(
        target.name != model.name and join_refusal(model, target, entity) is None
        for target in manifest.models_with_entity(entity)
    )


def _chains(
    manifest: Manifest,
    model: SemanticModel,
    path: tuple[str, ...],
    element: str | None,
    *,
    local: bool,
    refusals: list[str],
) -> list[tuple[Hop, ...]]:
    """Every join chain along ``path`` ending at a model that holds ``element``."""
    if not path:
        return [()] if holds(model, element) else []
    entity, rest = path[0], path[1:]
    out: list[tuple[Hop, ...]] = []
    if local and entity in local_entities(model):
        # The measure's own model, read under one of its own entities: no join for this hop.
        out.extend(_chains(manifest, model, rest, element, local=False, refusals=refusals))
        if out and not rest:
            return out
    if len(path) > MAX_HOPS or entity not in model.entities:
        return out
    for target in manifest.models_with_entity(entity):
        if target.name == model.name:
            continue
        reason = join_refusal(model, target, entity)
        if reason is not None:
            if (not rest and holds(target, element)) or (rest and rest[0] in target.entities):
                refusals.append(reason)
            continue
        hop = Hop(entity, target)
        for chain in _chains(manifest, target, rest, element, local=False, refusals=refusals):
            out.append((hop, *chain))
    return out


def _describe(chain: tuple[Hop, ...]) -> str:
    return " → ".join(f"{hop.model.name} (on {hop.entity})" for hop in chain) or "the model itself"


def _target_hint(manifest: Manifest, entity: str) -> str:
    homes = [
        f"{m.name} ({m.entities[entity].type})"
        for m in manifest.models_with_entity(entity)
        if m.entities[entity].type in JOINABLE_TO
    ]
    if not homes:
        return f"no semantic model has {entity!r} as a primary or unique entity"
    return f"{entity!r} is one row per entity in: " + ", ".join(homes)


def reachable(
    manifest: Manifest, model: SemanticModel
) -> list[tuple[tuple[str, ...], SemanticModel]]:
    """(entity path, model) for every model a path reaches from ``model`` by the join rules:
    the model itself under each local entity, then up to MAX_HOPS joins, never on an entity
    already on the path. Candidates only: a
    path that reaches two models supplies an item only when ``resolve_path`` says so.
    """
    states: list[tuple[SemanticModel, tuple[str, ...], int]] = [(model, (), 0)]
    states += [(model, (entity,), 0) for entity in sorted(local_entities(model))]
    found: list[tuple[tuple[str, ...], SemanticModel]] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while states:
        current, path, joins = states.pop()
        if path:
            found.append((path, current))
        if joins >= MAX_HOPS:
            continue
        for entity in current.entities:
            if entity in path:
                # A path that revisits an entity (account__account__…) reaches nothing the
                # shorter path does not: listing it would offer loops.
                continue
            for target in manifest.models_with_entity(entity):
                if target.name == current.name or join_refusal(current, target, entity):
                    continue
                next_path = (*path, entity)
                if (target.name, next_path) not in seen:
                    seen.add((target.name, next_path))
                    states.append((target, next_path, joins + 1))
    return found
