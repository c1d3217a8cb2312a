"""Statements to edges: qualify against the known schemas, walk, and name the target table
(CREATE … AS, bare SELECT, INSERT, SELECT … INTO, MERGE, UPDATE)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

from lineage.sql_lineage.edges import (
    DEFAULT_SCHEMA,
    DIALECTS,
    DIRECT,
    INDIRECT,
    MSG_PARSE,
    MSG_UNKNOWN_DIALECT,
    ColumnEdge,
    ColumnSources,
    Relation,
    SqlLineageError,
    relation_of,
)
from lineage.sql_lineage.walk import ScopeWalker


@dataclass
class SchemaBook:
    """Columns of every known table, growing as statements create tables."""

    tables: dict[Relation, list[str]] = field(default_factory=dict)
    default_schema: str = DEFAULT_SCHEMA
    default_database: str | None = None  # where a bare SELECT model is written (dbt's database)

    _schemas: dict[str, Any] = field(default_factory=dict, repr=False)

    def add(self, relation: Relation, columns: Iterable[str]) -> None:
        self.tables[relation] = [c.lower() for c in columns]
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
                    dialect=dialect,
                )
            except SqlglotError:
                self._schemas.pop(dialect)

    def schema_for(self, dialect: str) -> Any:
        """A sqlglot MappingSchema of the known tables, built once until a table is added
        (normalising it costs about as much as qualifying a statement)."""
        from sqlglot.schema import MappingSchema

        if dialect not in self._schemas:
            nested = self.for_sqlglot()
            self._schemas[dialect] = MappingSchema(nested, dialect=dialect) if nested else None
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


def _qualified(query: exp.Expr, book: SchemaBook, dialect: str) -> exp.Expr:
    try:
        return qualify(
            query,
            schema=book.schema_for(dialect),
            dialect=dialect,
            db=book.default_schema,
            validate_qualify_columns=False,
            identify=False,
            quote_identifiers=False,
        )
    except SqlglotError:
        # An unknown function or shape sqlglot cannot qualify fully: walk it as written.
        return query


_GENERATORS: dict[str, Any] = {}


def _sql(node: exp.Expr, dialect: str) -> str:
    """``node.sql(dialect)`` without its two hidden costs, a new Generator and a deep copy of
    the node per call (a third of the time of a wide model); the tree is not modified."""
    generator = _GENERATORS.get(dialect)
    if generator is None:
        from sqlglot.dialects.dialect import Dialect

        generator = _GENERATORS[dialect] = Dialect.get_or_raise(dialect).generator()
    return generator.generate(node, copy=False)


def _query_edges(
    query: exp.Expr,
    target: Relation,
    target_columns: list[str] | None,
    *,
    model: str,
    book: SchemaBook,
    dialect: str,
    extra_indirect: ColumnSources | None = None,
) -> tuple[list[ColumnEdge], list[str]]:
    """Edges from a query's sources into ``target``; returns them and the output columns."""
    qualified = _qualified(query, book, dialect)
    root = build_scope(qualified)
    if root is None:
        return [], []
    walker = ScopeWalker(book.default_schema).index(root)
    outputs = walker.outputs(root)
    names = [n.lower() for n, _ in outputs]
    if target_columns:
        names = [*target_columns[: len(outputs)], *names[len(target_columns) :]]
    projections = qualified.selects if isinstance(qualified, exp.Query) else []
    edges: list[ColumnEdge] = []
    for index, ((_, lineage), name) in enumerate(zip(outputs, names, strict=False)):
        text = _sql(projections[index], dialect) if index < len(projections) else name
        if extra_indirect is not None:
            for key, transformation in extra_indirect.indirect.items():
                lineage.indirect.setdefault(key, transformation)
        edges.extend(_edges(lineage, target, name, text, model))
    return edges, names


def _edges(
    lineage: ColumnSources, target: Relation, column: str, text: str, model: str
) -> Iterator[ColumnEdge]:
    for (relation, source), transformation in lineage.direct.items():
        yield ColumnEdge(relation, source, target, column, DIRECT, transformation, text, model)
    for (relation, source), transformation in lineage.indirect.items():
        if (relation, source) not in lineage.direct:
            yield ColumnEdge(
                relation, source, target, column, INDIRECT, transformation, text, model
            )


def _expression_lineage(
    expression: exp.Expr,
    sources: Mapping[str, exp.Expr],
    book: SchemaBook,
    dialect: str,
) -> ColumnSources:
    """Lineage of a bare expression (MERGE/UPDATE SET values) over named sources, by wrapping
    it in a SELECT so the same qualify + walk applies."""
    select = exp.select(expression.copy().as_("__v"))
    froms = list(sources.values())
    if froms:
        select = select.from_(froms[0].copy())
        for other in froms[1:]:
            select = select.join(other.copy(), join_type="CROSS")
    qualified = _qualified(select, book, dialect)
    root = build_scope(qualified)
    if root is None:
        return ColumnSources()
    walker = ScopeWalker(book.default_schema).index(root)
    outputs = walker.outputs(root)
    return outputs[0][1] if outputs else ColumnSources()


def _merge_edges(
    stmt: exp.Merge, *, model: str, book: SchemaBook, dialect: str
) -> list[ColumnEdge]:
    target_table = stmt.this
    target = relation_of(target_table, book.default_schema)
    using = stmt.args["using"]
    sources = {target_table.alias_or_name: target_table, using.alias_or_name: using}
    on = _expression_lineage(stmt.args["on"], sources, book, dialect)
    matched = ColumnSources()
    matched.merge(on, as_indirect="join")
    edges: list[ColumnEdge] = []
    whens = stmt.args.get("whens")
    for when in whens.expressions if whens is not None else []:
        then = when.args.get("then")
        condition = when.args.get("condition")
        guard = ColumnSources()
        guard.merge(matched)
        if condition is not None:
            guard.merge(
                _expression_lineage(condition, sources, book, dialect), as_indirect="filter"
            )
        pairs: list[tuple[str, exp.Expr]] = []
        if isinstance(then, exp.Update):
            pairs = [
                (e.this.name.lower(), e.expression)
                for e in then.expressions
                if isinstance(e, exp.EQ)
            ]
        elif isinstance(then, exp.Insert):
            columns = then.this.expressions if isinstance(then.this, exp.Tuple) else []
            values = then.expression.expressions if isinstance(then.expression, exp.Tuple) else []
            pairs = [(c.name.lower(), v) for c, v in zip(columns, values, strict=False)]
        for column, value in pairs:
            lineage = _expression_lineage(value, sources, book, dialect)
            for key, transformation in guard.indirect.items():
                lineage.indirect.setdefault(key, transformation)
            edges.extend(
                _edges(lineage, target, column, f"{column} = {_sql(value, dialect)}", model)
            )
    return edges


def _update_edges(
    stmt: exp.Update, *, model: str, book: SchemaBook, dialect: str
) -> list[ColumnEdge]:
    target_table = stmt.this
    sources: dict[str, exp.Expr] = {target_table.alias_or_name: target_table}
    from_ = stmt.args.get("from_")
    joins = list(stmt.args.get("joins") or [])
    if from_ is not None:
        first = from_.this.copy()
        # T-SQL hangs the joins of UPDATE … FROM a JOIN b on the first table.
        joins += first.args.get("joins") or []
        first.set("joins", None)
        sources[first.alias_or_name] = first
        if not target_table.db and target_table.name == first.alias_or_name:
            # T-SQL `UPDATE t … FROM mart.users t`: t is an alias of the real target.
            target_table = first
            sources = {first.alias_or_name: first}
    for join in joins:
        sources[join.this.alias_or_name] = join.this
    target = relation_of(target_table, book.default_schema)
    guard = ColumnSources()
    if stmt.args.get("where") is not None:
        guard.merge(
            _expression_lineage(stmt.args["where"].this, sources, book, dialect),
            as_indirect="filter",
        )
    for join in joins:
        if join.args.get("on") is not None:
            guard.merge(
                _expression_lineage(join.args["on"], sources, book, dialect), as_indirect="join"
            )
    edges: list[ColumnEdge] = []
    for assignment in stmt.expressions:
        if not isinstance(assignment, exp.EQ):
            continue
        column = assignment.this.name.lower()
        lineage = _expression_lineage(assignment.expression, sources, book, dialect)
        for key, transformation in guard.indirect.items():
            lineage.indirect.setdefault(key, transformation)
        edges.extend(_edges(lineage, target, column, _sql(assignment, dialect), model))
    return edges


def statement_edges(
    stmt: exp.Expr, *, model: str, book: SchemaBook, dialect: str, table: str | None = None
) -> list[ColumnEdge]:
    """Column edges of one parsed statement; records any table it creates in ``book``.
    A bare SELECT writes ``table`` (the model's name by default)."""
    default_target = (
        book.default_database.lower() if book.default_database else None,
        book.default_schema,
        (table or model).lower(),
    )
    if (
        isinstance(stmt, exp.Create)
        and stmt.expression is not None
        and stmt.kind in ("TABLE", "VIEW")
    ):
        this = stmt.this
        table = this.this if isinstance(this, exp.Schema) else this
        listed = (
            [c.name.lower() for c in this.expressions] if isinstance(this, exp.Schema) else None
        )
        target = relation_of(table, book.default_schema)
        edges, names = _query_edges(
            stmt.expression, target, listed, model=model, book=book, dialect=dialect
        )
        book.add(target, names)
        return edges
    if isinstance(stmt, exp.Insert) and isinstance(stmt.expression, exp.Query):
        if stmt.args.get("with_") is not None and stmt.expression.args.get("with_") is None:
            # T-SQL writes `WITH p AS (…) INSERT INTO t SELECT … FROM p`: the CTEs belong
            # to the SELECT.
            query = stmt.expression.copy()
            query.set("with_", stmt.args["with_"].copy())
            stmt = stmt.copy()
            stmt.set("expression", query)
        this = stmt.this
        table = this.this if isinstance(this, exp.Schema) else this
        target = relation_of(table, book.default_schema)
        listed = (
            [c.name.lower() for c in this.expressions] if isinstance(this, exp.Schema) else None
        )
        # INSERT without a column list fills the target's columns by position.
        listed = listed or book.tables.get(target)
        edges, names = _query_edges(
            stmt.expression, target, listed, model=model, book=book, dialect=dialect
        )
        book.tables.setdefault(target, names)
        return edges
    if isinstance(stmt, exp.Merge):
        return _merge_edges(stmt, model=model, book=book, dialect=dialect)
    if isinstance(stmt, exp.Update):
        return _update_edges(stmt, model=model, book=book, dialect=dialect)
    if isinstance(stmt, exp.Query):
        into = stmt.args.get("into") if isinstance(stmt, exp.Select) else None
        target = default_target
        if into is not None:
            # T-SQL SELECT … INTO t creates t.
            target = relation_of(into.this, book.default_schema)
            stmt = stmt.copy()
            stmt.set("into", None)
        edges, names = _query_edges(stmt, target, None, model=model, book=book, dialect=dialect)
        book.add(target, names)
        return edges
    return []


def parse_statements(sql: str, dialect: str, model: str) -> list[exp.Expr]:
    try:
        return [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError as exc:
        raise SqlLineageError(
            MSG_PARSE.format(model=model, detail=str(exc).splitlines()[0]),
            code="bad_sql",
            location=model,
            hint=f"check that the file is {dialect} SQL (--dialect)",
        ) from exc


def sql_edges(
    sql: str,
    *,
    dialect: str = "duckdb",
    model: str = "query",
    schema: Mapping[str, Iterable[str]] | SchemaBook | None = None,
    default_schema: str = DEFAULT_SCHEMA,
) -> list[ColumnEdge]:
    """Column edges of one SQL model or script.

    Args:
        sql: one or more statements.
        dialect: sqlglot dialect name.
        model: the model's name; a bare SELECT writes the table of this name.
        schema: known tables as ``{"schema.table": [columns]}`` (or a SchemaBook that later
            calls share), used to expand ``*`` and resolve unqualified columns.
        default_schema: schema of unqualified table names.

    Returns:
        Edges in statement order, direct before indirect per output column.

    Raises:
        SqlLineageError: code ``bad_sql`` when the SQL does not parse.

    Example:
        >>> [e.key for e in sql_edges("CREATE TABLE b AS SELECT x + 1 AS y FROM a WHERE z > 0")]
        [('main.a.x', 'main.b.y', 'direct'), ('main.a.z', 'main.b.y', 'indirect')]
    """
    dialect_check(dialect)
    book = schema if isinstance(schema, SchemaBook) else schema_book(schema or {}, default_schema)
    edges: list[ColumnEdge] = []
    for stmt in parse_statements(sql, dialect, model):
        edges.extend(statement_edges(stmt, model=model, book=book, dialect=dialect))
    return edges


def dialect_check(dialect: str) -> None:
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(dialect)
    except ValueError:
        raise SqlLineageError(
            MSG_UNKNOWN_DIALECT.format(dialect=dialect),
            code="unknown_dialect",
            hint="one of: " + ", ".join(DIALECTS),
        ) from None


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
