"""The declared keys a compiled metric query's joins rely on (issue 16).

A LEFT JOIN to a model on its primary, unique or natural entity keeps one row per measure
row only while the data holds that key: one row per key value (per partition; for an SCD
type II model, at any one time). The compiler cannot see the data, so while a metric query
compiles, ``Source.walk`` notes every (model, entity) it joins on in ``KEY_USES``; the
compiled query carries them as ``KeyUse``s with the SQL that checks the key, and the
executor (semantic.key_guard) runs that check before the query's own SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from semantic.compiler.manifest import Manifest, SemanticModel
from semantic.compiler.warehouse_probes import key_repeats_sql


@dataclass(frozen=True)
class KeyUse:
    """One declared key a query joins on, and the SQL that counts the values it repeats."""

    model: str
    entity: str
    type: str  # primary | unique | natural
    table: str  # the model's table, dotted (for messages and the probe cache)
    item: str  # the first group-by or filter item whose join relies on it
    scd: bool  # natural key of an SCD type II model: unique at any one time
    # One row (repeated key values, most rows one value holds): (0, NULL) when the key holds.
    probe_sql: str


# (model, entity) → the first item noted, in join order; None outside a metric compile.
KEY_USES: ContextVar[dict[tuple[str, str], str] | None] = ContextVar("KEY_USES", default=None)


def key_use_note(model: SemanticModel, entity: str, item: str) -> None:
    """Records that a join of the current compile relies on ``model``'s key ``entity``."""
    noted = KEY_USES.get()
    if noted is not None:
        noted.setdefault((model.name, entity), item)


@contextmanager
def key_uses_collected() -> Iterator[dict[tuple[str, str], str]]:
    """Collects the keys joined on while the block compiles (nested compiles included:
    a Metric() filter's subquery joins are joins of the query too)."""
    noted: dict[tuple[str, str], str] = {}
    token = KEY_USES.set(noted)
    try:
        yield noted
    finally:
        KEY_USES.reset(token)


def key_uses(
    noted: dict[tuple[str, str], str], manifest: Manifest, dialect: str
) -> tuple[KeyUse, ...]:
    """The noted keys as ``KeyUse``s with their probe SQL for ``dialect``, in join order.

    Example:
        >>> from semantic.compiler.manifest import Entity
        >>> users = SemanticModel("users", (None, "main", "users"), {"user": Entity("user",
        ...     "primary", "id")}, {}, {}, "user")
        >>> m = Manifest("", {"users": users}, {}, {}, {}, None)
        >>> [(u.model, u.entity, u.table) for u in key_uses({("users", "user"): "user__x"}, m,
        ...     "duckdb")]
        [('users', 'user', 'main.users')]
    """
    out = []
    for (model_name, entity_name), item in noted.items():
        model = manifest.semantic_models[model_name]
        entity = model.entities[entity_name]
        probe = manifest.probe_cache.get((model_name, entity_name, dialect))
        if probe is None:
            probe = key_repeats_sql(model, entity_name, dialect)
            manifest.probe_cache[(model_name, entity_name, dialect)] = probe
        out.append(
            KeyUse(
                model=model_name,
                entity=entity_name,
                type=entity.type,
                table=".".join(p for p in model.relation if p),
                item=item,
                scd=entity.type == "natural" and model.validity is not None,
                probe_sql=probe,
            )
        )
    return tuple(out)
