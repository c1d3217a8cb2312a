"""Small sqlglot node builders the stages share: CTE references, JOIN nodes, tables.

They build nodes directly instead of going through sqlglot's string-taking helpers, which run
the parser on every call (most of a compile's cost when done per node).
"""

from __future__ import annotations

from sqlglot import exp

# Built once: DataType.build and string arguments to sqlglot's builders run the parser, which
# is most of the cost of a compile when done per node.
DOUBLE = exp.DataType.build("DOUBLE")
TIMESTAMP = exp.DataType.build("TIMESTAMP")
DATE = exp.DataType.build("DATE")
INT = exp.DataType.build("INT")


def cte_ref(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name))


def append_join(
    select: exp.Select,
    source: exp.Expr,
    *,
    on: exp.Expr | None = None,
    side: str | None = None,
    kind: str | None = None,
) -> exp.Select:
    """Appends a JOIN node (Select.join would parse its join_type string on every call)."""
    join = exp.Join(this=source, on=on)
    if side:
        join.set("side", side)
    if kind:
        join.set("kind", kind)
    select.append("joins", join)
    return select


def relation_table(relation: tuple[str | None, str, str], alias: str) -> exp.Expr:
    database, schema, name = relation
    table = exp.table_(name, db=schema, catalog=database)
    return table.as_(alias, copy=False) if alias else table
