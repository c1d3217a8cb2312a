"""Every column that influenced one column: the transitive closure of SQL column edges."""

from __future__ import annotations

from collections.abc import Iterable

from lineage.sql_lineage.edges import DIRECT, ColumnEdge


def column_influences(
    edges: Iterable[ColumnEdge], column: str, *, direct_only: bool = False
) -> set[str]:
    """Every column whose value (direct) or row selection (indirect) reached ``column``,
    through any number of models, as one set of ``schema.table.column`` names.

    Args:
        edges: edges of a project (``project_edges``) or script (``sql_edges``).
        column: the column asked about, as in ``ColumnEdge.key`` (lower case).
        direct_only: follow only edges whose value flows (DIRECT): the columns the value
            is computed from, leaving out filters, joins, grouping and sorting.

    Returns:
        The upstream columns, without ``column`` itself.

    Example:
        >>> from lineage.sql_lineage.statements import sql_edges
        >>> sql = "CREATE TABLE b AS SELECT x AS y FROM a WHERE z > 0; CREATE TABLE c AS SELECT y FROM b"
        >>> sorted(column_influences(sql_edges(sql), "main.c.y"))
        ['main.a.x', 'main.a.z', 'main.b.y']
    """
    upstream: dict[str, set[str]] = {}
    for edge in edges:
        source, target, subtype = edge.key
        if direct_only and subtype != DIRECT:
            continue
        upstream.setdefault(target, set()).add(source)
    wanted = column.lower()
    seen: set[str] = set()
    todo = [wanted]
    while todo:
        current = todo.pop()
        sources = upstream.get(current)
        if sources is None and not current.endswith(".*"):
            # A column of a model whose columns were unknown (`SELECT * FROM raw` with no
            # schema) has no edges of its own: it comes through that model's `*`.
            sources = upstream.get(current.rsplit(".", 1)[0] + ".*")
        for source in sources or ():
            if source not in seen:
                seen.add(source)
                todo.append(source)
    seen.discard(wanted)
    return seen
