"""Node ids, edge types and the columns an expression reads: the vocabulary of the lineage graph."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlglot
from sqlglot import exp

from tally.errors import UserError

DefinitionRow = tuple[str, str, Mapping[str, Any], str]

# Edge types.
DERIVES_FROM = "derives_from"
FILTERS_BY = "filters_by"
JOINS_ON = "joins_on"
GROUPS_BY = "groups_by"
PINNED_IN = "pinned_in"
COMPUTED_BY = "computed_by"
CONTAINS = "contains"
DIRECT, INDIRECT = "direct", "indirect"

# Node kinds, in the order an upstream walk meets them from the source up.
NODE_KINDS = (
    "table",
    "column",
    "sql_model",
    "contract",
    "contract_column",
    "semantic_model",
    "entity",
    "dimension",
    "measure",
    "metric",
    "release",
    "compiled_query",
    "compute_run",
    "value",
)
# Nodes any definition may mention (a column is read by several models and declared by a
# contract): they carry no owning ``src`` and go when their last edge goes.
SHARED = "warehouse"

MSG_UNKNOWN_NODE = "no lineage node {node!r}"
MSG_NO_PATH = "no lineage path between {a!r} and {b!r}"
HINT_NODE_FORMS = (
    "name a node as kind:name, e.g. column:main.events.revenue, metric:arpa, "
    "measure:events.revenue, or a bare table.column"
)


class LineageError(UserError):
    default_code = "bad_lineage_request"


# --------------------------------------------------------------------------- ids


def table_id(relation: Sequence[str | None]) -> str:
    """``table:schema.table`` (database first when there is one), lower-cased.

    Example:
        >>> table_id((None, "main", "Events"))
        'table:main.events'
    """
    return "table:" + ".".join(p for p in relation if p).lower()


def column_id(relation: Sequence[str | None], column: str) -> str:
    """``column:schema.table.column``, lower-cased (warehouses fold unquoted names).

    Example:
        >>> column_id((None, "main", "events"), "Revenue")
        'column:main.events.revenue'
    """
    return f"column:{'.'.join(p for p in relation if p)}.{column}".lower()


def metric_id(name: str, version: str) -> str:
    return f"metric:{name}@{version}" if version else f"metric:{name}"


# --------------------------------------------------------------------------- expressions


def expression_columns(expr: str, *, dialect: str | None = None) -> list[str]:
    """Column names a SQL expression reads, in order of first appearance.

    Tries the given dialect, then DuckDB (the demo's own, whose ``->>`` other dialects lack).
    An expression that parses in none reads the column of its own text when that is a plain
    name, else nothing.

    Example:
        >>> expression_columns("CASE WHEN event_type = 'purchase' THEN revenue END")
        ['event_type', 'revenue']
        >>> expression_columns("properties ->> '$.feature'")
        ['properties']
    """
    return list(_expression_columns(expr, dialect))


@functools.lru_cache(maxsize=65_536)
def _expression_columns(expr: str, dialect: str | None) -> tuple[str, ...]:
    # Registries repeat the same few expressions ("1", a column name) across thousands of
    # measures; a plain identifier needs no parse at all.
    if expr.isidentifier():
        return (expr.lower(),)
    for read in dict.fromkeys((dialect, "duckdb")):
        try:
            tree = sqlglot.parse_one(expr, read=read)
        except sqlglot.errors.SqlglotError:
            continue
        return tuple(
            dict.fromkeys(c.name.lower() for c in tree.find_all(exp.Column, bfs=False) if c.name)
        )
    return ()


def is_identity(expr: str, column: str) -> bool:
    return expr.strip().strip('"').lower() == column
