"""The distinct values of one item over a chain of FULL OUTER JOINs, without a FULL JOIN.

MariaDB and MySQL have no FULL OUTER JOIN. A query without metrics reads its items from a
base model FULL OUTER JOINed along the item's entity path (semantic.compiler.dimension_query),
so that a value of a joined model no base row reaches is listed too. For one item read from
the last model of a chain ``M0 FULL JOIN M1 … FULL JOIN Mn`` (each join on the previous
model's key, no filter), the distinct values are those of the LEFT JOIN chains that start at
each model::

    SELECT v FROM M0 LEFT JOIN M1 … LEFT JOIN Mn
    UNION SELECT v FROM M1 LEFT JOIN … Mn
    …
    UNION SELECT v FROM Mn

A row of the FULL chain starts at the first model it has a row of, then follows the keys
left to right: it is a row of the LEFT chain from that model, and every row of a LEFT chain
from ``Mi`` holds a value the FULL chain holds (from ``Mi``'s own start, or from an earlier
model whose row reached it with the same continuation). NULL is listed when some row of some
model reaches no ``Mn`` row, as the FULL chain lists it. A filter is applied in every branch
when it reads only ``Mn``'s columns: a branch row then passes it as the FULL chain's row with
the same ``Mn`` part does. A filter on another model's columns, or a join condition naming
an earlier model than its previous one, leaves the query refused. Django-free.
"""

from __future__ import annotations

from sqlglot import exp

# The derived table the union is read from.
UNION_ALIAS = "item_values_union"


def full_join_chain_union(select: exp.Select) -> exp.Select | None:
    """``select`` (one item, GROUP BY it, FULL JOINs only) with its FULL JOIN chain
    read as a UNION of LEFT JOIN chains; None when it is not of that shape (the caller
    refuses the query then).

    Example:
        >>> import sqlglot
        >>> q = sqlglot.parse_one("SELECT c.v AS v FROM a FULL JOIN b ON a.k = b.k "
        ...     "FULL JOIN c ON b.j = c.j GROUP BY 1")
        >>> print(full_join_chain_union(q).sql())
        SELECT item_values_union.v AS v FROM (SELECT c.v AS v FROM a LEFT JOIN b ON a.k = b.k LEFT JOIN c ON b.j = c.j UNION SELECT c.v AS v FROM b LEFT JOIN c ON b.j = c.j UNION SELECT c.v AS v FROM c) AS item_values_union
        >>> full_join_chain_union(sqlglot.parse_one("SELECT a.v FROM a FULL JOIN b ON a.k = b.k"))
    """
    joins: list[exp.Join] = list(select.args.get("joins") or [])
    source = select.args.get("from_")
    if (
        len(select.expressions) != 1
        or not select.args.get("group")
        or any(select.args.get(arg) for arg in ("having", "with", "distinct"))
        or source is None
        or not joins
        or any(join.side != "FULL" or join.kind or not join.args.get("on") for join in joins)
    ):
        return None
    name = select.expressions[0].alias_or_name
    where = select.args.get("where")
    reads = [source.this, *(join.this for join in joins)]
    branches: list[exp.Select] = []
    for start in range(len(reads)):
        branch = exp.select(select.expressions[0].copy()).from_(reads[start].copy())
        for join in joins[start:]:
            left = join.copy()
            left.set("side", "LEFT")
            branch.append("joins", left)
        if where is not None:
            branch.set("where", where.copy())
        if not _reads_only_its_own(branch, {r.alias_or_name for r in reads[start:]}):
            return None
        branches.append(branch)
    union: exp.Query = branches[0]
    for branch in branches[1:]:
        union = exp.union(union, branch, distinct=True, copy=False)
    return exp.select(exp.column(name, table=UNION_ALIAS).as_(name)).from_(
        union.subquery(UNION_ALIAS, copy=False), copy=False
    )


def _reads_only_its_own(branch: exp.Select, aliases: set[str]) -> bool:
    """Whether the item, the filters and every join condition name only tables the branch
    reads (a join on an earlier model's column, as an SCD window on the base's time or a
    Metric() filter's join, cannot start later; a filter passes only on the last model's
    columns, which every branch reads as the FULL chain's row holds them)."""
    parts = [branch.expressions[0], *(join.args["on"] for join in branch.args.get("joins", []))]
    if branch.args.get("where") is not None:
        parts.append(branch.args["where"])
    for part in parts:
        for column in part.find_all(exp.Column):
            # Row policies and masks are applied after this rewrite (secure_select wraps
            # each table read of every branch), so these are the items', filters' and keys'
            # columns, each qualified by its read (an unqualified one: no telling, refused).
            if column.table not in aliases:
                return False
    return True
