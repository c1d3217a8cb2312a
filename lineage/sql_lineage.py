"""Column-level lineage of SQL transformation code (a folder of models or a dbt manifest).

Django-free. Each statement is parsed with sqlglot in its dialect, qualified against the
schemas known so far (contracts, earlier statements and models), and walked scope by scope:
an output column's *direct* sources are the columns its expression reads (through CTEs,
derived tables, set operations, scalar subqueries, UNNEST/LATERAL/FLATTEN/LATERAL VIEW),
its *indirect* ones the columns that decide which rows reach it (WHERE, JOIN … ON, GROUP BY,
HAVING, QUALIFY, window PARTITION/ORDER BY, CASE conditions), as OpenLineage's column-lineage
facet marks them.

Why our own walk rather than ``sqlglot.lineage``: that function follows one output column at a
time (quadratic on wide models), reports no indirect sources, and does not descend into
UNNEST/LATERAL sources or MERGE/UPDATE; the walk below does all columns of a statement in one
pass over its scopes.

Statements understood: ``CREATE TABLE/VIEW … AS``, bare ``SELECT`` (named by its file or dbt
model), ``INSERT [INTO] t [(cols)] SELECT``, ``SELECT … INTO t`` (T-SQL), ``MERGE`` and
``UPDATE … [FROM]``. Later statements of a script, and models that depend on other models,
see the columns of tables created earlier (models are ordered by their dependencies).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

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


@dataclass(frozen=True)
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

    @property
    def key(self) -> tuple[str, str, str]:
        """``(schema.table.column, schema.table.column, subtype)`` for comparing edge sets."""
        return (
            ".".join(p for p in (*self.source_table, self.source_column) if p),
            ".".join(p for p in (*self.target_table, self.target_column) if p),
            self.subtype,
        )


@dataclass
class _Lineage:
    """Sources of one output column: (relation, column) → transformation."""

    direct: dict[tuple[Relation, str], str] = field(default_factory=dict)
    indirect: dict[tuple[Relation, str], str] = field(default_factory=dict)

    def add_direct(self, key: tuple[Relation, str], transformation: str) -> None:
        old = self.direct.get(key)
        if old is None or _RANK.get(transformation, 1) > _RANK.get(old, 1):
            self.direct[key] = transformation

    def merge(
        self, other: _Lineage, *, as_indirect: str | None = None, hop: str = "identity"
    ) -> None:
        if as_indirect is not None:
            for key in (*other.direct, *other.indirect):
                self.indirect.setdefault(key, as_indirect)
            return
        for key, transformation in other.direct.items():
            self.add_direct(key, _compose(transformation, hop))
        for key, transformation in other.indirect.items():
            self.indirect.setdefault(key, transformation)


def _compose(inner: str, outer: str) -> str:
    return inner if _RANK.get(inner, 1) >= _RANK.get(outer, 1) else outer


def _relation(table: exp.Table, default_schema: str) -> Relation:
    return (
        table.catalog.lower() or None,
        (table.db or default_schema).lower(),
        table.name.lower(),
    )


# --------------------------------------------------------------------------- scope walk


class _Walker:
    """Lineage of every output column of one qualified query, memoised per scope."""

    def __init__(self, default_schema: str) -> None:
        self.default_schema = default_schema
        self.outputs_memo: dict[int, list[tuple[str, _Lineage]]] = {}
        self.rows_memo: dict[int, _Lineage] = {}
        self.in_progress: set[int] = set()
        self.rows_in_progress: set[int] = set()
        self.canonical: dict[int, Scope] = {}

    def index(self, root: Scope) -> _Walker:
        """Remembers every scope of the tree by its expression (see column_sources)."""
        for scope in root.traverse():
            self.canonical.setdefault(id(scope.expression), scope)
        return self

    def outputs(self, scope: Scope) -> list[tuple[str, _Lineage]]:
        key = id(scope)
        if key in self.outputs_memo:
            return self.outputs_memo[key]
        if key in self.in_progress:
            # A recursive CTE reading itself: its rows start from the anchor branch, whose
            # lineage (plus what the recursive branch adds directly) is the CTE's.
            anchor = scope.set_operation_scopes[0] if scope.set_operation_scopes else None
            return (
                self.outputs(anchor)
                if anchor is not None and id(anchor) not in self.in_progress
                else []
            )
        self.in_progress.add(key)
        try:
            result = self._outputs(scope)
        finally:
            self.in_progress.discard(key)
        # Inside a recursive CTE, the rows of one of its own branches may still be half
        # computed; such a result is used once but not remembered.
        if not self.rows_in_progress or not (
            self.rows_in_progress & {id(s) for s in scope.traverse()}
        ):
            self.outputs_memo[key] = result
        return result

    def _outputs(self, scope: Scope) -> list[tuple[str, _Lineage]]:
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            # UNION/INTERSECT/EXCEPT: column i is fed by column i of every branch.
            branches = [self.outputs(s) for s in scope.set_operation_scopes]
            names = [name for name, _ in branches[0]] if branches else []
            merged = []
            for index, name in enumerate(names):
                lineage = _Lineage()
                for branch in branches:
                    if index < len(branch):
                        lineage.merge(branch[index][1])
                merged.append((name, lineage))
            return merged
        if not isinstance(node, exp.Select):
            return []
        rows = self.row_sources(scope)
        result = []
        for projection in node.expressions:
            lineage = self.expr_sources(scope, projection)
            for key, transformation in rows.indirect.items():
                lineage.indirect.setdefault(key, transformation)
            result.append((projection.alias_or_name, lineage))
        return result

    def row_sources(self, scope: Scope) -> _Lineage:
        """Columns that decide which rows a scope yields (all of them indirect)."""
        key = id(scope)
        if key in self.rows_memo:
            return self.rows_memo[key]
        rows = _Lineage()
        self.rows_memo[key] = rows  # guards recursive CTEs
        self.rows_in_progress.add(key)
        try:
            self._row_sources(scope, rows)
        finally:
            self.rows_in_progress.discard(key)
        return rows

    def _row_sources(self, scope: Scope, rows: _Lineage) -> None:
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            for branch in scope.set_operation_scopes:
                rows.merge(self.row_sources(branch))
            return
        if not isinstance(node, exp.Select):
            return
        # In the order SQL states them: a column that is both a join key and a filter is
        # reported once, with its first role.
        clauses: list[tuple[exp.Expr | None, str]] = []
        for join in node.args.get("joins") or []:
            clauses.append((join.args.get("on"), "join"))
            for using in join.args.get("using") or []:
                clauses.append((using, "join"))
        clauses += [
            (node.args.get("where"), "filter"),
            (node.args.get("group"), "group_by"),
            (node.args.get("having"), "filter"),
            (node.args.get("qualify"), "filter"),
            (node.args.get("order"), "sort"),
        ]
        for clause, transformation in clauses:
            if clause is None:
                continue
            if transformation == "join" and isinstance(clause, exp.Identifier):
                # JOIN … USING (k): k of every joined source decides which rows meet.
                for selectable, _ in scope.selected_sources.values():
                    for key in self.column_sources(
                        scope, exp.column(clause.name, selectable.alias_or_name)
                    ).direct:
                        rows.indirect.setdefault(key, "join")
                continue
            rows.merge(self.expr_sources(scope, clause), as_indirect=transformation)
        # Rows of a derived table, CTE or lateral source are already filtered by its own
        # clauses, whether or not this scope reads any of its columns.
        for _, source in scope.selected_sources.values():
            query = _query_scope(source) if isinstance(source, Scope) else None
            if query is not None:
                rows.merge(self.row_sources(query), as_indirect="filter")

    def column_sources(self, scope: Scope, column: exp.Column) -> _Lineage:
        lineage = _Lineage()
        name = column.name.lower()
        source = scope.sources.get(column.table) if column.table else None
        outer = scope.parent
        while source is None and column.table and outer is not None:
            # A correlated subquery reads a column of an enclosing query.
            source, scope = outer.sources.get(column.table), outer
            outer = outer.parent
        if source is None and not column.table:
            # Unqualified after qualify: a projection alias (ORDER BY a), or a name sqlglot
            # could not place. An alias reads what its projection reads.
            select = scope.expression
            if isinstance(select, exp.Select) and not _in_projection(column, select):
                for projection in select.expressions:
                    if isinstance(projection, exp.Alias) and projection.alias.lower() == name:
                        return self.expr_sources(scope, projection)
            # Otherwise take the one source that can hold it, if there is exactly one.
            candidates = list(scope.sources.values())
            source = candidates[0] if len(candidates) == 1 else None
        if isinstance(source, exp.Table):
            lineage.add_direct((_relation(source, self.default_schema), name), "identity")
        elif isinstance(source, Scope):
            # sqlglot gives a recursive CTE's self-reference a scope of its own (with no
            # sources); the traversed scope of the same expression has them.
            source = self.canonical.get(id(source.expression), source)
            query = _query_scope(source)
            if query is not None:
                outputs = self.outputs(query)
                match = [lin for out, lin in outputs if out.lower() == name]
                if match:
                    lineage.merge(match[0])
                elif name == "*":
                    for _, lin in outputs:
                        lineage.merge(lin)
                else:
                    lineage.merge(self.through_star(query, name))
            else:
                # UNNEST / LATERAL FLATTEN / LATERAL VIEW EXPLODE: the produced columns come
                # from the arrays it reads, which refer to sources of the enclosing scope.
                outer = source.parent or scope
                for inner in source.expression.find_all(exp.Column):
                    lineage.merge(self.column_sources(outer, inner), hop="transformation")
        return lineage

    def through_star(self, scope: Scope, name: str) -> _Lineage:
        """A column an outer query reads from a ``SELECT *`` that could not be expanded (its
        source's columns are unknown): it passes through the star from the star's source.
        sqlglot's own lineage stops here; we follow it."""
        lineage = _Lineage()
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            for branch in scope.set_operation_scopes:
                lineage.merge(self.through_star(branch, name))
            return lineage
        if not isinstance(node, exp.Select):
            return lineage
        for projection in node.expressions:
            star = projection if isinstance(projection, exp.Star) else projection.this
            if isinstance(projection, exp.Column) and isinstance(star, exp.Star):
                tables = [projection.table]
            elif isinstance(projection, exp.Star):
                tables = list(scope.selected_sources)
            else:
                continue
            if len(tables) != 1:
                continue  # a bare * over several unknown sources: the column's origin is ambiguous
            lineage.merge(self.column_sources(scope, exp.column(name, table=tables[0])))
            rows = self.row_sources(scope)
            for key, transformation in rows.indirect.items():
                lineage.indirect.setdefault(key, transformation)
        return lineage

    def expr_sources(self, scope: Scope, expression: exp.Expr) -> _Lineage:
        """Sources of one expression: direct for values, indirect for conditions inside it."""
        lineage = _Lineage()
        target = expression.this if isinstance(expression, exp.Alias) else expression
        select = scope.expression
        subqueries = {id(s.expression): s for s in scope.subquery_scopes}
        for node in target.walk():
            if isinstance(node, (exp.Select, exp.SetOperation)) and id(node) in subqueries:
                # Scalar or IN/EXISTS subquery: its value flows (direct) unless it sits in a
                # condition; its own filters decide the value (indirect).
                sub = subqueries[id(node)]
                context = _context(node, target)
                for _, inner in self.outputs(sub)[:1]:
                    if context in (None, "aggregation"):
                        lineage.merge(
                            inner, hop="transformation" if context is None else "aggregation"
                        )
                    else:
                        lineage.merge(inner, as_indirect=context)
                continue
            if not isinstance(node, exp.Column) or _inside_other_select(node, select, target):
                continue
            context = _context(node, target)
            sources = self.column_sources(scope, node)
            if context in (None, "aggregation"):
                hop = (
                    "aggregation"
                    if context
                    else ("identity" if node is target else "transformation")
                )
                lineage.merge(sources, hop=hop)
            else:
                lineage.merge(sources, as_indirect=context)
        return lineage


def _in_projection(node: exp.Expr, select: exp.Select) -> bool:
    projections = {id(p) for p in select.expressions}
    current: exp.Expr | None = node
    while current is not None and current is not select:
        if id(current) in projections:
            return True
        current = current.parent
    return False


def _query_scope(scope: Scope) -> Scope | None:
    """The scope of the query a source stands for: itself for a derived table or CTE, the
    inner SELECT's for ``LATERAL (SELECT …)``; None for UNNEST/FLATTEN-like functions."""
    if isinstance(scope.expression, (exp.Select, exp.SetOperation)):
        return scope
    inner = scope.expression.this if isinstance(scope.expression, exp.Lateral) else None
    if isinstance(inner, exp.Subquery):
        inner = inner.this
    if isinstance(inner, (exp.Select, exp.SetOperation)):
        for child in scope.traverse():
            if child.expression is inner:
                return child
    return None


def _context(node: exp.Expr, top: exp.Expr) -> str | None:
    """How ``node`` takes part in ``top``: None (its value flows), aggregation, or an indirect
    role (window partition/order, CASE/IF condition)."""
    aggregated = False
    child = node
    parent = node.parent
    while parent is not None and child is not top:
        if isinstance(parent, exp.Window) and child.arg_key in ("partition_by", "order"):
            return "window"
        if isinstance(parent, exp.If) and child.arg_key == "this":
            return "conditional"
        if isinstance(parent, exp.Case) and child.arg_key == "this":
            return "conditional"  # CASE x WHEN …: x picks the branch
        if isinstance(parent, exp.Filter) and child.arg_key == "expression":
            return "filter"  # COUNT(*) FILTER (WHERE …)
        if isinstance(parent, exp.AggFunc):
            aggregated = True
        child, parent = parent, parent.parent
    return "aggregation" if aggregated else None


def _inside_other_select(node: exp.Expr, select: exp.Expr, top: exp.Expr) -> bool:
    # Only the nodes between the column and the expression being walked matter: a SELECT
    # among them means the column belongs to a nested query (handled as its own scope).
    if node is top:
        return False
    parent = node.parent
    while parent is not None and parent is not top and parent is not select:
        if isinstance(parent, (exp.Select, exp.SetOperation)):
            return True
        parent = parent.parent
    return False


# --------------------------------------------------------------------------- statements


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


def _target_columns(query: exp.Expr, dialect: str) -> list[str]:
    if isinstance(query, exp.Query):
        return [s.lower() for s in query.named_selects]
    return []


def _query_edges(
    query: exp.Expr,
    target: Relation,
    target_columns: list[str] | None,
    *,
    model: str,
    book: SchemaBook,
    dialect: str,
    extra_indirect: _Lineage | None = None,
) -> tuple[list[ColumnEdge], list[str]]:
    """Edges from a query's sources into ``target``; returns them and the output columns."""
    qualified = _qualified(query, book, dialect)
    root = build_scope(qualified)
    if root is None:
        return [], []
    walker = _Walker(book.default_schema).index(root)
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
    lineage: _Lineage, target: Relation, column: str, text: str, model: str
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
) -> _Lineage:
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
        return _Lineage()
    walker = _Walker(book.default_schema).index(root)
    outputs = walker.outputs(root)
    return outputs[0][1] if outputs else _Lineage()


def _merge_edges(
    stmt: exp.Merge, *, model: str, book: SchemaBook, dialect: str
) -> list[ColumnEdge]:
    target_table = stmt.this
    target = _relation(target_table, book.default_schema)
    using = stmt.args["using"]
    sources = {target_table.alias_or_name: target_table, using.alias_or_name: using}
    on = _expression_lineage(stmt.args["on"], sources, book, dialect)
    matched = _Lineage()
    matched.merge(on, as_indirect="join")
    edges: list[ColumnEdge] = []
    whens = stmt.args.get("whens")
    for when in whens.expressions if whens is not None else []:
        then = when.args.get("then")
        condition = when.args.get("condition")
        guard = _Lineage()
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
    target = _relation(target_table, book.default_schema)
    guard = _Lineage()
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
    stmt: exp.Expr, *, model: str, book: SchemaBook, dialect: str
) -> list[ColumnEdge]:
    """Column edges of one parsed statement; records any table it creates in ``book``."""
    default_target = (
        book.default_database.lower() if book.default_database else None,
        book.default_schema,
        model.lower(),
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
        target = _relation(table, book.default_schema)
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
        target = _relation(table, book.default_schema)
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
            target = _relation(into.this, book.default_schema)
            stmt = stmt.copy()
            stmt.set("into", None)
        edges, names = _query_edges(stmt, target, None, model=model, book=book, dialect=dialect)
        book.add(target, names)
        return edges
    return []


def _parse(sql: str, dialect: str, model: str) -> list[exp.Expr]:
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
    _check_dialect(dialect)
    book = schema if isinstance(schema, SchemaBook) else _book(schema or {}, default_schema)
    edges: list[ColumnEdge] = []
    for stmt in _parse(sql, dialect, model):
        edges.extend(statement_edges(stmt, model=model, book=book, dialect=dialect))
    return edges


def _check_dialect(dialect: str) -> None:
    from sqlglot.dialects.dialect import Dialect

    try:
        Dialect.get_or_raise(dialect)
    except ValueError:
        raise SqlLineageError(
            MSG_UNKNOWN_DIALECT.format(dialect=dialect),
            code="unknown_dialect",
            hint="one of: " + ", ".join(DIALECTS),
        ) from None


def _book(schema: Mapping[str, Iterable[str]], default_schema: str) -> SchemaBook:
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


# --------------------------------------------------------------------------- projects


@dataclass(frozen=True)
class SqlModel:
    name: str
    sql: str
    schema: str | None = None  # where a bare SELECT model is materialised
    database: str | None = None
    file: str = ""


def _order(
    models: list[SqlModel],
    dialect: str,
    default_schema: str,
    parsed: dict[str, list[exp.Expr]],
) -> list[SqlModel]:
    """Models in dependency order: a model that reads another's table comes after it.
    Fills ``parsed`` (model → statements) so that each model is parsed once."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    creates: dict[str, str] = {}
    reads: dict[str, set[str]] = {}
    for model in models:
        graph.add_node(model.name)
        try:
            statements = [s for s in sqlglot.parse(model.sql, read=dialect) if s is not None]
        except SqlglotError:
            continue
        parsed[model.name] = statements
        made = {model.name.lower()}
        read: set[str] = set()
        for stmt in statements:
            target = (
                stmt.this
                if isinstance(stmt, (exp.Create, exp.Insert, exp.Merge, exp.Update))
                else None
            )
            if isinstance(target, exp.Schema):
                target = target.this
            if isinstance(target, exp.Table):
                made.add(target.name.lower())
            ctes = {c.alias_or_name.lower() for c in stmt.find_all(exp.CTE)}
            read |= {t.name.lower() for t in stmt.find_all(exp.Table) if t.name.lower() not in ctes}
        for name in made:
            creates.setdefault(name, model.name)
        reads[model.name] = read - made
    for reader, tables in reads.items():
        for table in tables:
            if table in creates and creates[table] != reader:
                graph.add_edge(creates[table], reader)
    by_name = {m.name: m for m in models}
    try:
        order = list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        order = sorted(by_name)
    return [by_name[n] for n in order]


def project_edges(
    models: Iterable[SqlModel],
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Iterable[str]] | None = None,
    default_schema: str = DEFAULT_SCHEMA,
) -> list[ColumnEdge]:
    """Edges of many models, each seeing the tables the models before it created."""
    _check_dialect(dialect)
    book = _book(schema or {}, default_schema)
    edges: list[ColumnEdge] = []
    parsed: dict[str, list[exp.Expr]] = {}
    for model in _order(list(models), dialect, default_schema, parsed):
        book.default_schema = (model.schema or default_schema).lower()
        book.default_database = model.database
        if model.name not in parsed:
            parsed[model.name] = _parse(model.sql, dialect, model.name)  # raises the parse error
        for stmt in parsed[model.name]:
            edges.extend(statement_edges(stmt, model=model.name, book=book, dialect=dialect))
    return edges


def models_from_dir(root: Path) -> list[SqlModel]:
    """Every ``*.sql`` file under ``root`` as a model named by its file stem."""
    if not root.is_dir():
        raise SqlLineageError(
            f"{root} is not a folder", code="not_found", hint="pass a folder of .sql files"
        )
    return [
        SqlModel(path.stem, path.read_text(encoding="utf-8"), file=str(path))
        for path in sorted(root.rglob("*.sql"))
    ]


def models_from_dbt_manifest(path: Path) -> list[SqlModel]:
    """dbt ``manifest.json`` models (compiled SQL; raw SQL when not compiled) as SqlModels
    materialised at ``schema.alias``."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SqlLineageError(
            f"cannot read dbt manifest {path}: {exc}",
            code="bad_manifest",
            hint="run `dbt compile` first",
        ) from exc
    models = []
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model":
            continue
        sql = node.get("compiled_code") or node.get("compiled_sql")
        if not sql:
            continue
        name = str(node.get("alias") or node["name"])
        models.append(
            SqlModel(
                name,
                sql,
                schema=node.get("schema"),
                database=node.get("database"),
                file=str(node.get("original_file_path", "")),
            )
        )
    return models


def dbt_sources_schema(path: Path) -> dict[str, list[str]]:
    """Columns dbt documents for sources and models (``schema.table`` → columns)."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    schema: dict[str, list[str]] = {}
    for group in ("sources", "nodes"):
        for node in (manifest.get(group) or {}).values():
            columns = list((node.get("columns") or {}).keys())
            if columns and node.get("schema"):
                name = node.get("identifier") or node.get("alias") or node.get("name")
                prefix = f"{node['database']}." if node.get("database") else ""
                schema[f"{prefix}{node['schema']}.{name}"] = columns
    return schema
