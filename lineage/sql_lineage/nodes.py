"""Where a node stands, for the scope walk: the query scope a source stands for, the role a
column plays in the expression around it, lateral and projection aliases."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope


def table_function_columns(source: exp.Expr | Scope) -> frozenset[str] | None:
    """Columns a table function source (UNNEST, FLATTEN, LATERAL VIEW …) produces when known:
    the column aliases it is given (sqlglot names FLATTEN's fixed SEQ, KEY, … VALUE, THIS
    itself); None when unknown."""
    node = source.expression if isinstance(source, Scope) else source
    alias = node.args.get("alias") if isinstance(node, exp.Expr) else None
    columns = alias.args.get("columns") if isinstance(alias, exp.TableAlias) else None
    return frozenset(c.name.lower() for c in columns) if columns else None


def earlier_alias(column: exp.Column, select: exp.Select, name: str) -> exp.Alias | None:
    """The projection aliased ``name`` that comes before the one holding ``column``."""
    for projection in select.expressions:
        current: exp.Expr | None = column
        while current is not None and current is not projection and current is not select:
            current = current.parent
        if current is projection:
            return None  # reached the column's own projection: no earlier alias
        if isinstance(projection, exp.Alias) and projection.alias.lower() == name:
            return projection
    return None


def in_projection(node: exp.Expr, select: exp.Select) -> bool:
    projections = {id(p) for p in select.expressions}
    current: exp.Expr | None = node
    while current is not None and current is not select:
        if id(current) in projections:
            return True
        current = current.parent
    return False


def query_scope(scope: Scope) -> Scope | None:
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


def column_context(node: exp.Expr, top: exp.Expr) -> str | None:
    """How ``node`` takes part in ``top``: None (its value flows), aggregation, or an indirect
    role (window partition/order, CASE/IF condition)."""
    aggregated = False
    child = node
    parent = node.parent
    while parent is not None and child is not top:
        # Called for every column of every expression: the cheap arg_key test comes first.
        key = child.arg_key
        if key == "this":
            if isinstance(parent, (exp.If, exp.Case)):
                return "conditional"  # IF(x, …), CASE x WHEN …: x picks the branch
        elif key == "expression":
            if isinstance(parent, exp.Filter):
                return "filter"  # COUNT(*) FILTER (WHERE …)
        elif key in ("partition_by", "order") and isinstance(parent, exp.Window):
            return "window"
        if isinstance(parent, exp.AggFunc):
            aggregated = True
        child, parent = parent, parent.parent
    return "aggregation" if aggregated else None


def inside_other_select(node: exp.Expr, select: exp.Expr, top: exp.Expr) -> bool:
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
