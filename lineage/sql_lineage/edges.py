"""Column edges, the sources of one output column, and the vocabulary of SQL lineage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp

from tally.errors import UserError

Relation = tuple[str | None, str, str]  # (database, schema, table), lower-cased
DIRECT, INDIRECT = "direct", "indirect"
DEFAULT_SCHEMA = "main"
DIALECTS = ("duckdb", "postgres", "snowflake", "bigquery", "spark", "databricks", "tsql",
            "mysql", "redshift", "trino", "clickhouse")  # fmt: skip
# A stronger transformation wins when two hops compose (a SUM of an identity is an aggregation).
_RANK = {"identity": 0, "transformation": 1, "aggregation": 2}

MSG_UNKNOWN_DIALECT = "unknown SQL dialect {dialect!r}"
MSG_PARSE = "cannot parse {model}: {detail}"


class SqlLineageError(UserError):
    default_code = "bad_sql"


@dataclass(frozen=True, init=False)
class ColumnEdge:
    """One column feeding another: ``source`` → ``target`` in SQL model ``model``."""

    source_table: Relation
    source_column: str
    target_table: Relation
    target_column: str
    subtype: str  # direct | indirect
    transformation: (
        str  # identity transformation aggregation | filter join group_by window sort conditional
    )
    expr: str
    model: str

    def __init__(
        self,
        source_table: Relation,
        source_column: str,
        target_table: Relation,
        target_column: str,
        subtype: str,
        transformation: str,
        expr: str,
        model: str,
    ) -> None:
        # A statement yields tens of edges, and the generated __init__ of a frozen dataclass
        # (an object.__setattr__ call per field) costs twice this; assigning an attribute
        # still raises FrozenInstanceError.
        fields = self.__dict__
        fields["source_table"] = source_table
        fields["source_column"] = source_column
        fields["target_table"] = target_table
        fields["target_column"] = target_column
        fields["subtype"] = subtype
        fields["transformation"] = transformation
        fields["expr"] = expr
        fields["model"] = model

    @property
    def key(self) -> tuple[str, str, str]:
        """``(schema.table.column, schema.table.column, subtype)`` for comparing edge sets."""
        return (
            ".".join(p for p in (*self.source_table, self.source_column) if p),
            ".".join(p for p in (*self.target_table, self.target_column) if p),
            self.subtype,
        )


@dataclass
class ColumnSources:
    """Sources of one output column: (relation, column) → transformation."""

    direct: dict[tuple[Relation, str], str] = field(default_factory=dict)
    indirect: dict[tuple[Relation, str], str] = field(default_factory=dict)

    def add_direct(self, key: tuple[Relation, str], transformation: str) -> None:
        old = self.direct.get(key)
        if old is None or _RANK.get(transformation, 1) > _RANK.get(old, 1):
            self.direct[key] = transformation

    def add_indirect(self, indirect: Mapping[tuple[Relation, str], str]) -> None:
        """Adds the indirect sources not already here (a source keeps its first role)."""
        mine = self.indirect
        if not mine:
            mine.update(indirect)
        else:
            mine.update({key: role for key, role in indirect.items() if key not in mine})

    def merge(
        self, other: ColumnSources, *, as_indirect: str | None = None, hop: str = "identity"
    ) -> None:
        # Every output column carries the row-deciding sources of all the scopes below it,
        # so merges are the walk's inner loop: dict comprehensions and update() rather than
        # a method call per key, with the same result and order as setdefault one by one.
        mine = self.indirect
        if as_indirect is not None:
            mine.update({key: as_indirect for key in other.direct if key not in mine})
            mine.update({key: as_indirect for key in other.indirect if key not in mine})
            return
        if not self.direct and hop == "identity":
            self.direct.update(other.direct)  # an identity hop keeps each transformation
        else:
            for key, transformation in other.direct.items():
                self.add_direct(key, _compose(transformation, hop))
        self.add_indirect(other.indirect)


def _compose(inner: str, outer: str) -> str:
    return inner if _RANK.get(inner, 1) >= _RANK.get(outer, 1) else outer


def relation_of(table: exp.Table, default_schema: str) -> Relation:
    return (
        table.catalog.lower() or None,
        (table.db or default_schema).lower(),
        table.name.lower(),
    )
