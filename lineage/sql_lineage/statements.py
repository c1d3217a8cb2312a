"""Statements to edges: qualify against the known schemas, walk, and name the target table
(CREATE … AS, bare SELECT, INSERT, SELECT … INTO, MERGE, UPDATE)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope

from lineage.sql_lineage.book import BookChange, SchemaBook, dialect_of, schema_book
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
from lineage.sql_lineage.script import ParsedStatement, StatementIssue, parse_script
from lineage.sql_lineage.walk import ScopeWalker

__all__ = ["BookChange", "SchemaBook", "SqlLineage", "schema_book", "sql_edges", "sql_lineage"]
MSG_UNWALKED = "statement's lineage could not be followed ({detail})"


def _qualified(query: exp.Expr, book: SchemaBook, dialect: str) -> exp.Expr:
    try:
        return qualify(
            query,
            schema=book.schema_for(dialect),
            dialect=dialect_of(dialect),
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
        generator = _GENERATORS[dialect] = dialect_of(dialect).generator()
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
    walker = ScopeWalker(book.default_schema, book.tables).index(root)
    outputs = walker.outputs(root)
    names = [n.lower() for n, _ in outputs]
    if target_columns:
        names = [*target_columns[: len(outputs)], *names[len(target_columns) :]]
    projections = qualified.selects if isinstance(qualified, exp.Query) else []
    edges: list[ColumnEdge] = []
    for index, ((_, lineage), name) in enumerate(zip(outputs, names, strict=False)):
        text = _sql(projections[index], dialect) if index < len(projections) else name
        if extra_indirect is not None:
            lineage.add_indirect(extra_indirect.indirect)
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
    with_: exp.Expr | None = None,
) -> ColumnSources:
    """Lineage of a bare expression (MERGE/UPDATE SET values) over named sources, by wrapping
    it in a SELECT so the same qualify + walk applies. ``with_`` is the statement's WITH
    (``WITH c AS (…) UPDATE t … FROM c``): its CTEs are queries, not tables."""
    select = exp.select(expression.copy().as_("__v"))
    froms = list(sources.values())
    if froms:
        select = select.from_(froms[0].copy())
        for other in froms[1:]:
            select = select.join(other.copy(), join_type="CROSS")
    if with_ is not None:
        select.set("with_", with_.copy())
    qualified = _qualified(select, book, dialect)
    root = build_scope(qualified)
    if root is None:
        return ColumnSources()
    walker = ScopeWalker(book.default_schema, book.tables).index(root)
    outputs = walker.outputs(root)
    return outputs[0][1] if outputs else ColumnSources()


def _merge_edges(
    stmt: exp.Merge, *, model: str, book: SchemaBook, dialect: str
) -> list[ColumnEdge]:
    target_table = stmt.this
    target = relation_of(target_table, book.default_schema)
    with_ = stmt.args.get("with_")
    using = stmt.args["using"]
    sources = {target_table.alias_or_name: target_table, using.alias_or_name: using}
    on = _expression_lineage(stmt.args["on"], sources, book, dialect, with_)
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
                _expression_lineage(condition, sources, book, dialect, with_), as_indirect="filter"
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
            lineage = _expression_lineage(value, sources, book, dialect, with_)
            lineage.add_indirect(guard.indirect)
            edges.extend(
                _edges(lineage, target, column, f"{column} = {_sql(value, dialect)}", model)
            )
    return edges


def _update_edges(
    stmt: exp.Update, *, model: str, book: SchemaBook, dialect: str
) -> list[ColumnEdge]:
    target_table = stmt.this
    with_ = stmt.args.get("with_")
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
            _expression_lineage(stmt.args["where"].this, sources, book, dialect, with_),
            as_indirect="filter",
        )
    for join in joins:
        if join.args.get("on") is not None:
            guard.merge(
                _expression_lineage(join.args["on"], sources, book, dialect, with_),
                as_indirect="join",
            )
    edges: list[ColumnEdge] = []
    for assignment in stmt.expressions:
        if not isinstance(assignment, exp.EQ):
            continue
        column = assignment.this.name.lower()
        lineage = _expression_lineage(assignment.expression, sources, book, dialect, with_)
        lineage.add_indirect(guard.indirect)
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
    if isinstance(stmt, exp.Block) or (
        isinstance(stmt, exp.Create) and isinstance(stmt.expression, exp.Block)
    ):
        # A procedure or script block (T-SQL, BigQuery scripting): its statements in order.
        block = stmt if isinstance(stmt, exp.Block) else stmt.expression
        edges = []
        for inner in block.expressions:
            edges.extend(
                statement_edges(inner, model=model, book=book, dialect=dialect, table=table)
            )
        return edges
    if isinstance(stmt, (exp.Create, exp.Insert)):
        stmt = _unwrapped(stmt)
    if isinstance(stmt, exp.Create) and stmt.kind in ("TABLE", "VIEW"):
        this = stmt.this
        table_ = this.this if isinstance(this, exp.Schema) else this
        listed = (
            [c.name.lower() for c in this.expressions] if isinstance(this, exp.Schema) else None
        )
        target = relation_of(table_, book.default_schema)
        if not isinstance(stmt.expression, exp.Query):
            # CREATE TABLE t (a INT, …): no lineage, but later statements read its columns.
            if listed:
                book.add(target, listed)
            return []
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
        table_ = this.this if isinstance(this, exp.Schema) else this
        target = relation_of(table_, book.default_schema)
        listed = (
            [c.name.lower() for c in this.expressions] if isinstance(this, exp.Schema) else None
        )
        # INSERT without a column list fills the target's columns by position.
        listed = listed or book.tables.get(target)
        edges, names = _query_edges(
            stmt.expression, target, listed, model=model, book=book, dialect=dialect
        )
        book.add_missing(target, names)
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


def _unwrapped(stmt: exp.Expr) -> exp.Expr:
    """``CREATE VIEW v AS (SELECT …)`` and ``INSERT INTO t (WITH … SELECT …)``: the body in
    parentheses is the query itself, not a derived table (copied only when unwrapped)."""
    body = stmt.args.get("expression")
    if not isinstance(body, exp.Subquery) or not isinstance(body.this, exp.Query):
        return stmt
    if body.args.get("alias") is not None:
        return stmt
    stmt = stmt.copy()
    inner = stmt.expression.this
    while isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Query):
        inner = inner.this  # ((SELECT …))
    stmt.set("expression", inner)
    return stmt


@dataclass(frozen=True)
class SqlLineage:
    """Edges of a script or project and the statements whose lineage is missing."""

    edges: list[ColumnEdge]
    issues: list[StatementIssue]


def sql_lineage(
    sql: str,
    *,
    dialect: str = "duckdb",
    model: str = "query",
    schema: Mapping[str, Iterable[str]] | SchemaBook | None = None,
    default_schema: str = DEFAULT_SCHEMA,
    file: str = "",
) -> SqlLineage:
    """Column edges of one SQL model or script, statement by statement: a statement that does
    not parse, or that cannot be read, is an issue (file, line, reason) and the others still
    give their edges.

    Args:
        sql: one or more statements (a procedure's body statements count one by one).
        dialect: sqlglot dialect name.
        model: the model's name; a bare SELECT writes the table of this name.
        schema: known tables as ``{"schema.table": [columns]}`` (or a SchemaBook that later
            calls share); tables created by earlier statements are added to it.
        default_schema: schema of unqualified table names.
        file: named in issues (the model's name when empty).

    Returns:
        The edges in statement order and the issues.

    Raises:
        SqlLineageError: code ``unknown_dialect``.

    Example:
        >>> found = sql_lineage("CREATE TABLE b AS SELECT x FROM a;\\nSELECT (1 FROM;", file="s.sql")
        >>> [e.key for e in found.edges], [i.line for i in found.issues]
        ([('main.a.x', 'main.b.x', 'direct')], [2])
    """
    dialect_check(dialect)
    book = schema if isinstance(schema, SchemaBook) else schema_book(schema or {}, default_schema)
    statements, issues = parse_script(sql, dialect, file=file or model)
    edges = list(statements_edges(statements, issues, model=model, book=book, dialect=dialect,
                                   file=file or model))  # fmt: skip
    return SqlLineage(edges, issues)


def statements_edges(
    statements: Iterable[ParsedStatement],
    issues: list[StatementIssue],
    *,
    model: str,
    book: SchemaBook,
    dialect: str,
    file: str,
    table: str | None = None,
) -> Iterator[ColumnEdge]:
    for parsed in statements:
        try:
            yield from statement_edges(
                parsed.statement, model=model, book=book, dialect=dialect, table=table
            )
        except SqlglotError as exc:
            # A shape the walk cannot follow: this statement's lineage only is lost.
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            issues.append(StatementIssue(file, parsed.line, MSG_UNWALKED.format(detail=detail)))


def sql_edges(
    sql: str,
    *,
    dialect: str = "duckdb",
    model: str = "query",
    schema: Mapping[str, Iterable[str]] | SchemaBook | None = None,
    default_schema: str = DEFAULT_SCHEMA,
) -> list[ColumnEdge]:
    """Column edges of one SQL model or script (:func:`sql_lineage` without its issues).

    Raises:
        SqlLineageError: code ``bad_sql`` when no statement could be read at all (the
            first issue's reason), ``unknown_dialect``.

    Example:
        >>> [e.key for e in sql_edges("CREATE TABLE b AS SELECT x + 1 AS y FROM a WHERE z > 0")]
        [('main.a.x', 'main.b.y', 'direct'), ('main.a.z', 'main.b.y', 'indirect')]
    """
    found = sql_lineage(sql, dialect=dialect, model=model, schema=schema,
                        default_schema=default_schema)  # fmt: skip
    if found.issues and not found.edges:
        raise SqlLineageError(
            MSG_PARSE.format(model=model, detail=found.issues[0].reason),
            code="bad_sql",
            location=model,
            hint=f"check that the file is {dialect} SQL (--dialect)",
        )
    return found.edges


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
