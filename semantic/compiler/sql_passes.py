"""Rewrites of the compiled SQL tree, run in order after the plan is turned into SQL.

Each pass is a pure function ``expression -> expression`` that keeps the query's result
exactly the same and only changes how the warehouse gets there. ``SQL_PASSES`` is ordered,
as sqlglot's optimizer ``RULES`` are; ``optimize(tree, level)`` runs a prefix of it, and
level 0 runs none, so tests can compare the rows of O0 and optimised SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlglot import exp

SqlPass = Callable[[exp.Expr], exp.Expr]


def _scope_columns(select: exp.Select) -> Iterator[exp.Column]:
    """Columns of ``select`` itself, not of the subqueries inside it (their own scopes)."""
    stack: list[exp.Expr] = list(select.iter_expressions())
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Column):
            yield node
            continue
        if isinstance(node, (exp.Query, exp.Subquery)):
            continue
        stack.extend(node.iter_expressions())


def _join_alias(join: exp.Join) -> str | None:
    """The alias of a plain ``LEFT JOIN table AS alias ON …``; None for any other join."""
    table = join.this
    if not isinstance(table, exp.Table) or not table.alias or join.args.get("using"):
        return None
    if join.side != "LEFT" or join.kind or not join.args.get("on"):
        return None
    return table.alias


def nest_dimension_joins(tree: exp.Expr) -> exp.Expr:
    """Joins a chain of dimension tables to each other first, then once to the facts.

    ``facts LEFT JOIN users ON … LEFT JOIN accounts ON users.account_id = accounts.id``
    becomes ``facts LEFT JOIN (users LEFT JOIN accounts ON …) AS users ON …``: the second hop
    joins the small users table instead of the fact-sized result of the first hop. LEFT joins
    to unique keys keep every fact row exactly once either way, so the rows are the same.

    >>> import sqlglot
    >>> sql = ("SELECT u.name, a.region FROM e LEFT JOIN users AS u ON e.uid = u.id "
    ...        "LEFT JOIN accounts AS a ON u.aid = a.id")
    >>> print(nest_dimension_joins(sqlglot.parse_one(sql)).sql())
    SELECT u.name, u.a__region FROM e LEFT JOIN (SELECT u.id, u.name, a.region AS a__region FROM users AS u LEFT JOIN accounts AS a ON u.aid = a.id) AS u ON e.uid = u.id
    """
    for select in list(_selects(tree)):
        _nest(select)
    return tree


def _selects(tree: exp.Expr) -> Iterator[exp.Select]:
    """The SELECTs of the query's FROM/JOIN/CTE/set-operation structure.

    Walking only that structure, not every expression node, keeps the pass at a few
    microseconds; a subquery inside an expression is simply left as it is.
    """
    stack: list[exp.Expr] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.Select):
            yield node
            with_ = node.args.get("with_")
            if with_ is not None:
                stack.extend(cte.this for cte in with_.expressions)
            from_ = node.args.get("from_")
            if from_ is not None:
                stack.append(from_.this)
            stack.extend(join.this for join in node.args.get("joins") or ())
        elif isinstance(node, exp.Subquery):
            stack.append(node.this)
        elif isinstance(node, exp.SetOperation):
            with_ = node.args.get("with_")
            if with_ is not None:
                stack.extend(cte.this for cte in with_.expressions)
            stack.extend((node.this, node.expression))


def _nest(select: exp.Select) -> None:
    joins: list[exp.Join] = list(select.args.get("joins") or [])
    if len(joins) < 2:
        return
    aliases = [_join_alias(join) for join in joins]
    if any(alias is None for alias in aliases):
        return
    position = {alias: index for index, alias in enumerate(aliases)}
    # parent[i]: the join whose alias join i's ON reads besides its own (None: the facts).
    parent: dict[int, int | None] = {}
    for index, join in enumerate(joins):
        read = {c.table for c in join.args["on"].find_all(exp.Column)} - {aliases[index]}
        inner = {position[t] for t in read if t in position}
        if len(inner) > 1 or (inner and len(read) > 1):
            return  # reads several joined tables, or a joined table and the facts: keep as is
        parent[index] = inner.pop() if inner else None

    def root_of(index: int) -> int:
        while parent[index] is not None:
            index = parent[index]  # type: ignore[assignment]
        return index

    chains: dict[int, list[int]] = {}
    for index in range(len(joins)):
        if parent[index] is not None:
            chains.setdefault(root_of(index), []).append(index)
    if not chains:
        return

    outer_columns = list(_scope_columns(select))
    for root, members in chains.items():
        root_alias = aliases[root]
        member_aliases = {aliases[m] for m in members}
        inner_joins = [joins[m] for m in members]
        # Columns of the nested joins' ON conditions move with them, unchanged.
        moving = {id(c) for join in inner_joins for c in join.find_all(exp.Column)}
        # Every column outside the nested joins that reads the chain's tables.
        needed: dict[tuple[str, str], str] = {}
        for column in outer_columns:
            if column.table != root_alias and column.table not in member_aliases:
                continue
            if id(column) in moving:
                continue
            name = column.name if column.table == root_alias else f"{column.table}__{column.name}"
            needed[(column.table, column.name)] = name
        projections = [
            exp.column(col, table=table).as_(name, copy=False)
            if name != col
            else exp.column(col, table=table)
            for (table, col), name in sorted(
                needed.items(), key=lambda kv: (kv[1] != kv[0][1], kv[1])
            )
        ]
        root_join = joins[root]
        inner_select = exp.select(*projections, copy=False).from_(root_join.this.copy(), copy=False)
        inner_select.set("joins", [join.copy() for join in inner_joins])
        for column in outer_columns:
            if column.table in member_aliases and id(column) not in moving:
                column.set("this", exp.to_identifier(needed[(column.table, column.name)]))
                column.set("table", exp.to_identifier(root_alias))
        root_join.set("this", inner_select.subquery(root_alias, copy=False))
    select.set("joins", [join for index, join in enumerate(joins) if parent[index] is None])


SQL_PASSES: tuple[SqlPass, ...] = (nest_dimension_joins,)
# Passes a dialect's planner is better off without. Spark (and Databricks) size a join of
# two tables as the product of their sizes when it has no statistics, so a nested dimension
# join is never broadcast: the fact table was shuffled to a sort-merge join instead (two-hop
# filter at 10M events, Spark local: 2.3x the hand SQL nested, the hand plan flat).
SKIPPED_PASSES: dict[str, frozenset[SqlPass]] = {
    "spark": frozenset({nest_dimension_joins}),
    "databricks": frozenset({nest_dimension_joins}),
}


def optimize(tree: exp.Expr, level: int | None = None, dialect: str = "") -> exp.Expr:
    """Runs the first ``level`` passes of ``SQL_PASSES`` (all of them when None), except
    those ``dialect`` skips."""
    skipped = SKIPPED_PASSES.get(dialect, frozenset())
    for sql_pass in SQL_PASSES[: len(SQL_PASSES) if level is None else level]:
        if sql_pass not in skipped:
            tree = sql_pass(tree)
    return tree
