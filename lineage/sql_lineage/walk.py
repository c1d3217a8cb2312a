"""The scope walk: every output column's direct and indirect sources, in one pass over a
statement's scopes (CTEs, derived tables, set operations, subqueries, UNNEST/LATERAL)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from lineage.sql_lineage.edges import ColumnSources, Relation, relation_of
from lineage.sql_lineage.nodes import (
    column_context,
    earlier_alias,
    in_projection,
    inside_other_select,
    query_scope,
    table_function_columns,
)
from lineage.sql_lineage.pivots import pivot_of, pivot_outputs, pivot_parts


class ScopeWalker:
    """Lineage of every output column of one qualified query, memoised per scope."""

    def __init__(
        self, default_schema: str, tables: Mapping[Relation, list[str]] | None = None
    ) -> None:
        self.default_schema = default_schema
        self.tables = tables or {}  # known columns, to place an unqualified column
        self.outputs_memo: dict[int, list[tuple[str, ColumnSources]]] = {}
        self.rows_memo: dict[int, ColumnSources] = {}
        self.in_progress: set[int] = set()
        self.rows_in_progress: set[int] = set()
        self.canonical: dict[int, Scope] = {}
        # Per scope, facts every column of it asks again: its subqueries by expression, and
        # whether any source it selects carries a PIVOT/UNPIVOT.
        self.subqueries_memo: dict[int, dict[int, Scope]] = {}
        self.pivots_memo: dict[int, bool] = {}
        self.names_memo: dict[int, dict[str, ColumnSources]] = {}  # see _output_named

    def index(self, root: Scope) -> ScopeWalker:
        """Remembers every scope of the tree by its expression (see column_sources)."""
        for scope in root.traverse():
            self.canonical.setdefault(id(scope.expression), scope)
        return self

    def outputs(self, scope: Scope) -> list[tuple[str, ColumnSources]]:
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

    def _outputs(self, scope: Scope) -> list[tuple[str, ColumnSources]]:
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            # UNION/INTERSECT/EXCEPT: column i is fed by column i of every branch.
            branches = [self.outputs(s) for s in scope.set_operation_scopes]
            names = [name for name, _ in branches[0]] if branches else []
            merged = []
            for index, name in enumerate(names):
                lineage = ColumnSources()
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
            star_of = (
                list(scope.selected_sources)
                if isinstance(projection, exp.Star)
                else [projection.table]
                if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
                else None
            )
            if star_of is not None:
                # A * or t.* that qualify did not expand: the named columns of sources whose
                # columns are known, and `t.*` of each source whose columns are not.
                for name, lineage in self._star_outputs(scope, star_of):
                    lineage.add_indirect(rows.indirect)
                    result.append((name, lineage))
                continue
            lineage = self.expr_sources(scope, projection)
            lineage.add_indirect(rows.indirect)
            result.append((projection.alias_or_name, lineage))
        return result

    def _star_outputs(self, scope: Scope, aliases: list[str]) -> list[tuple[str, ColumnSources]]:
        named: list[tuple[str, ColumnSources]] = []
        unknown = ColumnSources()
        opaque = False
        for alias in aliases:
            if alias not in scope.selected_sources:
                opaque = True
                unknown.merge(self.column_sources(scope, exp.column("*", table=alias)))
                continue
            _, source = scope.selected_sources[alias]
            query = query_scope(source) if isinstance(source, Scope) else None
            outputs = self.outputs(query) if query is not None else []
            known = (
                self.tables.get(relation_of(source, self.default_schema))
                if isinstance(source, exp.Table)
                else [n for n, _ in outputs]
                if outputs and all(n != "*" for n, _ in outputs)
                else None
            )
            if not known:
                opaque = True
                unknown.merge(self.column_sources(scope, exp.column("*", table=alias)))
                continue
            for name in known:
                sources = ColumnSources()
                sources.merge(self.column_sources(scope, exp.column(name, table=alias)))
                named.append((name, sources))
        if opaque:
            named.append(("*", unknown))
        return named

    def row_sources(self, scope: Scope) -> ColumnSources:
        """Columns that decide which rows a scope yields (all of them indirect)."""
        key = id(scope)
        if key in self.rows_memo:
            return self.rows_memo[key]
        rows = ColumnSources()
        self.rows_memo[key] = rows  # guards recursive CTEs
        self.rows_in_progress.add(key)
        try:
            self._row_sources(scope, rows)
        finally:
            self.rows_in_progress.discard(key)
        return rows

    def _row_sources(self, scope: Scope, rows: ColumnSources) -> None:
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
            query = query_scope(source) if isinstance(source, Scope) else None
            if query is not None:
                rows.merge(self.row_sources(query), as_indirect="filter")

    def column_sources(self, scope: Scope, column: exp.Column) -> ColumnSources:
        """Sources of one column as ``scope`` reads it. The result may be the lineage a
        source query gives that column (not a copy, the walk's hottest path): callers merge
        it into their own and never change it."""
        name = column.name.lower()
        table = column.table
        if table and self._has_pivots(scope):
            pivoted = pivot_of(scope, table)
            if pivoted is not None:
                return self._pivot_column(scope, *pivoted, name)
        source = scope.sources.get(table) if table else None
        outer = scope.parent
        while source is None and table and outer is not None:
            # A correlated subquery reads a column of an enclosing query.
            source, scope = outer.sources.get(table), outer
            outer = outer.parent
        if source is None and not table:
            # Unqualified after qualify: a projection alias (ORDER BY a), or a name sqlglot
            # could not place. An alias reads what its projection reads.
            select = scope.expression
            if isinstance(select, exp.Select) and not in_projection(column, select):
                for projection in select.expressions:
                    if isinstance(projection, exp.Alias) and projection.alias.lower() == name:
                        return self.expr_sources(scope, projection)
            elif isinstance(select, exp.Select):
                # A lateral alias (Snowflake, BigQuery, Databricks, DuckDB): a projection
                # reads an alias defined before it, unless a source is known to hold the name.
                earlier = earlier_alias(column, select, name)
                if earlier is not None and not any(
                    self._known_to_hold(s, name) for _, s in scope.selected_sources.values()
                ):
                    return self.expr_sources(scope, earlier)
            # Otherwise take the one source that can hold it: the FROM/JOIN sources only
            # (a later CTE's scope also lists the earlier CTEs), less those whose columns
            # are known and lack it.
            selected = [s for _, s in scope.selected_sources.values()]
            holders = [s for s in selected if self._known_to_hold(s, name)]
            candidates = holders or [s for s in selected if self._may_hold(s, name)]
            source = candidates[0] if len(candidates) == 1 else None
            if not scope.selected_sources and isinstance(scope.parent, Scope):
                # A scalar subquery without FROM (`(SELECT a + b AS r)`) reads the columns
                # of the query around it.
                return self.column_sources(scope.parent, column)
        lineage = ColumnSources()
        if isinstance(source, exp.Table):
            lineage.add_direct((relation_of(source, self.default_schema), name), "identity")
        elif isinstance(source, Scope):
            # sqlglot gives a recursive CTE's self-reference a scope of its own (with no
            # sources); the traversed scope of the same expression has them.
            source = self.canonical.get(id(source.expression), source)
            query = query_scope(source)
            if query is not None:
                named = self._output_named(query, name)
                if named is not None:
                    return named  # the query's own, not a copy: see the docstring
                outputs = self.outputs(query)
                if name == "*":
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

    def _pivot_column(
        self, scope: Scope, alias: str, pivots: list[exp.Pivot], name: str
    ) -> ColumnSources:
        """A column of a chain of PIVOT/UNPIVOT operators over source ``alias``, each reading
        the one before: a pivoted cell from its aggregate's columns (the FOR column deciding
        which rows, indirect); an UNPIVOT value or name column from the columns it folds; any
        other column passes through. An alias column list (``AS t(a, b, …)``) renames an
        operator's output by position, when its input columns are known."""
        source = scope.sources.get(alias)
        if isinstance(source, exp.Table) and not source.db:
            # sqlglot lists a CTE read under a PIVOT as a table: take the CTE's scope.
            source = scope.cte_sources.get(source.name, source)
        if source is None:
            return ColumnSources()

        def read(column_name: str) -> ColumnSources:
            found = ColumnSources()
            if isinstance(source, Scope):
                query = query_scope(source)
                outputs = self.outputs(query) if query is not None else []
                match = [lin for out, lin in outputs if out.lower() == column_name]
                if match:
                    found.merge(match[0])
                elif query is not None:
                    found.merge(self.through_star(query, column_name))
            elif isinstance(source, exp.Table):
                found.add_direct(
                    (relation_of(source, self.default_schema), column_name), "identity"
                )
            return found

        # Forward: each operator's output columns (None while unknown), for the renames.
        columns: list[str] | None
        if isinstance(source, exp.Table):
            columns = self.tables.get(relation_of(source, self.default_schema))
        else:
            query = query_scope(source)
            names = [n.lower() for n, _ in self.outputs(query)] if query is not None else []
            columns = names if names and "*" not in names else None
        renames: list[dict[str, str]] = []
        for pivot in pivots:
            columns = pivot_outputs(pivot, columns)
            given = pivot.args.get("alias")
            listed = [c.name.lower() for c in given.args.get("columns") or []] if given else []
            rename = dict(zip(listed, columns, strict=False)) if listed and columns else {}
            renames.append(rename)
            if rename and columns is not None:
                columns = [*listed, *columns[len(listed) :]]

        def resolve(stage: int, column_name: str) -> ColumnSources:
            if stage < 0:
                return read(column_name)
            pivot = pivots[stage]
            column_name = renames[stage].get(column_name, column_name)
            values, folded, cells = pivot_parts(pivot)
            found = ColumnSources()
            if pivot.args.get("unpivot"):
                if column_name not in values and column_name not in folded:
                    return resolve(stage - 1, column_name)
                for member in folded.get(column_name) or values.get(column_name) or []:
                    found.merge(resolve(stage - 1, member), hop="transformation")
                return found
            if column_name not in cells:
                return resolve(stage - 1, column_name)
            aggregate, fors = cells[column_name]
            for col in aggregate:
                found.merge(resolve(stage - 1, col), hop="aggregation")
            for col in fors:
                found.merge(resolve(stage - 1, col), as_indirect="filter")
            return found

        return resolve(len(pivots) - 1, name)

    def _known_to_hold(self, source: exp.Expr | Scope, name: str) -> bool:
        if isinstance(source, exp.Table):
            return name in (self.tables.get(relation_of(source, self.default_schema)) or ())
        query = query_scope(source) if isinstance(source, Scope) else None
        if query is None:
            return name in (table_function_columns(source) or ())
        return self._output_named(query, name) is not None

    def _output_named(self, query: Scope, name: str) -> ColumnSources | None:
        """The lineage of ``query``'s first output column called ``name`` (lower-case), found
        by name once its outputs are remembered: every column read scanned them all."""
        outputs = self.outputs(query)
        key = id(query)
        if self.outputs_memo.get(key) is not outputs:
            # Half-computed outputs inside a recursive CTE: not remembered, so not indexed.
            return next((lin for out, lin in outputs if out.lower() == name), None)
        index = self.names_memo.get(key)
        if index is None:
            index = self.names_memo[key] = {}
            for out, lin in outputs:
                index.setdefault(out.lower(), lin)
        return index.get(name)

    def _may_hold(self, source: exp.Expr | Scope, name: str) -> bool:
        """Whether ``source`` can have a column ``name``: unknown columns can hold anything."""
        if isinstance(source, exp.Table):
            known = self.tables.get(relation_of(source, self.default_schema))
            return known is None or name in known
        query = query_scope(source) if isinstance(source, Scope) else None
        if query is None:
            produced = table_function_columns(source)
            return produced is None or name in produced
        outputs = self.outputs(query)
        return any(out.lower() in (name, "*") for out, _ in outputs) or not outputs

    def through_star(self, scope: Scope, name: str) -> ColumnSources:
        """A column an outer query reads from a ``SELECT *`` that could not be expanded (its
        source's columns are unknown): it passes through the star from the star's source.
        sqlglot's own lineage stops here; we follow it."""
        lineage = ColumnSources()
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
            lineage.add_indirect(rows.indirect)
        return lineage

    def _subqueries(self, scope: Scope) -> dict[int, Scope]:
        found = self.subqueries_memo.get(id(scope))
        if found is None:
            found = self.subqueries_memo[id(scope)] = {
                id(s.expression): s for s in scope.subquery_scopes
            }
        return found

    def _has_pivots(self, scope: Scope) -> bool:
        found = self.pivots_memo.get(id(scope))
        if found is None:
            found = self.pivots_memo[id(scope)] = any(
                isinstance(node, exp.Expr) and bool(node.args.get("pivots"))
                for node, _ in scope.selected_sources.values()
            )
        return found

    def expr_sources(self, scope: Scope, expression: exp.Expr) -> ColumnSources:
        """Sources of one expression: direct for values, indirect for conditions inside it."""
        lineage = ColumnSources()
        target = expression.this if isinstance(expression, exp.Alias) else expression
        select = scope.expression
        subqueries = self._subqueries(scope)
        # find_all filters in sqlglot's compiled walk, in the same breadth-first order as
        # walk(): only columns and queries reach this loop.
        for node in target.find_all(exp.Column, exp.Select, exp.SetOperation):
            if not isinstance(node, exp.Column):
                if id(node) not in subqueries:
                    continue
                # Scalar or IN/EXISTS subquery: its value flows (direct) unless it sits in a
                # condition; its own filters decide the value (indirect).
                sub = subqueries[id(node)]
                context = column_context(node, target)
                for _, inner in self.outputs(sub)[:1]:
                    if context in (None, "aggregation"):
                        lineage.merge(
                            inner, hop="transformation" if context is None else "aggregation"
                        )
                    else:
                        lineage.merge(inner, as_indirect=context)
                continue
            if inside_other_select(node, select, target):
                continue
            context = column_context(node, target)
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
