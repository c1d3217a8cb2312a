"""The schema book: the columns of every known table as a project's statements create them,
and the sqlglot schema built from it (the one object qualify reads)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError

from lineage.sql_lineage.edges import DEFAULT_SCHEMA, Relation

# One thing a statement told the book: (relation, columns, only if the table is not known yet).
BookChange = tuple[Relation, list[str], bool]


@dataclass
class SchemaBook:
    """Columns of every known table, growing as statements create tables."""

    tables: dict[Relation, list[str]] = field(default_factory=dict)
    default_schema: str = DEFAULT_SCHEMA
    default_database: str | None = None  # where a bare SELECT model is written (dbt's database)

    _schemas: dict[str, Any] = field(default_factory=dict, repr=False)
    # When a list, every add is noted in it (a worker process sends them to the others).
    journal: list[BookChange] | None = field(default=None, repr=False)

    def add_missing(self, relation: Relation, columns: list[str]) -> None:
        """The columns of ``relation`` unless it is known (an INSERT into a table)."""
        if self.journal is not None:
            self.journal.append((relation, columns, True))
        self.tables.setdefault(relation, columns)

    def replay(self, changes: Iterable[BookChange]) -> None:
        """Applies changes another book noted, in their order."""
        for relation, columns, only_missing in changes:
            if only_missing:
                self.add_missing(relation, columns)
            else:
                self.add(relation, columns)

    def copy(self) -> SchemaBook:
        """A book of the same tables that later adds leave this one out of."""
        return SchemaBook(dict(self.tables), self.default_schema, self.default_database)

    def add(self, relation: Relation, columns: Iterable[str]) -> None:
        if self.journal is not None:
            columns = list(columns)
            self.journal.append((relation, columns, False))
        names = [c.lower() for c in columns]
        if "*" in names:
            # Built from a `*` that could not be expanded: its columns are unknown, and a
            # later statement must not be told it has only those named.
            if self.tables.pop(relation, None) is not None:
                self._schemas.clear()
            return
        self.tables[relation] = names
        # Extend the built schemas in place: rebuilding them after every CREATE of a long
        # script or project is quadratic. A table of another nesting depth forces a rebuild.
        database, schema, table = relation
        for dialect, built in list(self._schemas.items()):
            if built is None:
                self._schemas.pop(dialect)
                continue
            try:
                built.add_table(
                    exp.table_(table, db=schema, catalog=database),
                    {c: "UNKNOWN" for c in self.tables[relation]},
                    dialect=dialect_of(dialect),
                )
            except SqlglotError:
                self._schemas.pop(dialect)

    def schema_for(self, dialect: str) -> Any:
        """A sqlglot MappingSchema of the known tables, built once until a table is added
        (normalising it costs about as much as qualifying a statement)."""
        from sqlglot.schema import MappingSchema

        if dialect not in self._schemas:
            nested = self.for_sqlglot()
            self._schemas[dialect] = (
                MappingSchema(nested, dialect=dialect_of(dialect)) if nested else None
            )
        return self._schemas[dialect]

    def for_sqlglot(self) -> dict[str, Any]:
        nested: dict[str, Any] = {}
        for (database, schema, table), columns in self.tables.items():
            level = nested.setdefault(database, {}) if database else nested
            level.setdefault(schema, {})[table] = {c: "UNKNOWN" for c in columns}
        if any(db for db, _, _ in self.tables):
            # sqlglot wants one depth everywhere: tables without a database go under "".
            for (database, schema, table), columns in self.tables.items():
                if not database:
                    nested.pop(schema, None)
                    nested.setdefault("", {}).setdefault(schema, {})[table] = {
                        c: "UNKNOWN" for c in columns
                    }
        return nested


_DIALECTS: dict[str, Any] = {}


def dialect_of(name: str) -> Any:
    """The one sqlglot Dialect instance of ``name``: given a name, sqlglot builds a new
    instance at each of the dozen look-ups one qualify makes (a tenth of its time)."""
    found = _DIALECTS.get(name)
    if found is None:
        from sqlglot.dialects.dialect import Dialect

        found = _DIALECTS[name] = Dialect.get_or_raise(name)
    return found


def schema_book(schema: Mapping[str, Iterable[str]], default_schema: str) -> SchemaBook:
    book = SchemaBook(default_schema=default_schema)
    for name, columns in schema.items():
        parts = name.lower().split(".")
        relation: Relation = (
            (parts[0], parts[1], parts[2]) if len(parts) == 3
            else (None, parts[0], parts[1]) if len(parts) == 2
            else (None, default_schema, parts[0])
        )  # fmt: skip
        book.add(relation, columns)
    return book
