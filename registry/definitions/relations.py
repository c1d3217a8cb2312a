"""Where a semantic model's rows live: its contract's table, its node_relation, or the table
of its name in the default schema (Django-free; used by the rules and the loader)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from registry.definitions.contracts import contract_schema_name, contract_tables
from registry.definitions.objects import DEFAULT_SCHEMA, REF_RE, DefinitionObject


@dataclass(frozen=True)
class Relation:
    """Where a semantic model's rows live, and what said so."""

    database: str | None
    schema: str
    table: str
    via: str  # "contract" | "node_relation" | "default_schema"

    @property
    def qualified(self) -> str:
        return ".".join(p for p in (self.database, self.schema, self.table) if p)


def resolve_relation(
    obj: DefinitionObject,
    contracts: Iterable[DefinitionObject],
    *,
    default_schema: str = DEFAULT_SCHEMA,
) -> Relation:
    """The table a semantic model reads: through its contract (the ``ref()`` name is a table
    a contract declares; the contract's server gives the schema), its ``node_relation``
    (written, or resolved at sync from a dbt project root's profile), or the table of its
    ``ref()`` name in the warehouse's default schema.

    Example:
        >>> sm = DefinitionObject("semantic_model", "e", {"model": "ref('events')"}, "f", 1)
        >>> resolve_relation(sm, []).qualified
        'main.events'
    """
    model = obj.spec.get("model")
    if model:
        table = REF_RE.match(str(model))
        name = (table.group(2) or table.group(1)) if table else str(model)
        wanted = (obj.spec.get("config") or {}).get("meta", {}).get("contract")
        for contract in contracts:
            if wanted and contract.name != wanted:
                continue
            if name in contract_tables(contract.spec):
                schema = contract_schema_name(contract.spec) or default_schema
                return Relation(None, schema, name, "contract")
        if not obj.spec.get("node_relation"):
            return Relation(None, default_schema, name, "default_schema")
    # Written in MetricFlow layout, or beside model: where a dbt project's profile puts it.
    relation = obj.spec.get("node_relation") or {}
    return Relation(
        relation.get("database"),
        str(relation.get("schema_name") or default_schema),
        str(relation.get("alias") or obj.name),
        "node_relation",
    )
