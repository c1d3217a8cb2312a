"""Definition expressions (measure ``expr``, dimension and entity columns) → sqlglot trees.

Definitions are reviewed SQL in DuckDB syntax (``DEFINITION_DIALECT``); every stage reads them
through ``definition_expr``, so this is the one door they come in by (and the place a check of
their functions and columns belongs). Parsing is the costliest step of a compile, and
definitions are immutable per release, so each (expression, alias) is parsed once per process.
"""

from __future__ import annotations

import functools

from sqlglot import exp

from semantic.compiler.definition_guard import DEFINITION_DIALECT
from semantic.compiler.definition_guard import parse_definition as checked_definition
from semantic.compiler.division import real_division

__all__ = ["DEFINITION_DIALECT", "definition_expr", "parse_definition"]


@functools.lru_cache(maxsize=8192)
def parse_definition(sql: str, alias: str) -> exp.Expr:
    # Definitions are data (issue 18): the guard refuses anything but columns, literals,
    # operators and allowed functions, fail closed whatever validation said.
    tree = checked_definition(sql, location=f"{alias}.expr", own=alias)
    # One meaning of `/` on every engine (DuckDB's real division, NULL for a zero divisor):
    # the stock dialects would truncate, round or fail where DuckDB does not (issue 20).
    tree = real_division(tree)
    for node in tree.walk():
        # The parser's token positions are of no use here, and copying them (a deepcopy of
        # a dict per identifier) was the largest single cost of compiling.
        node._meta = None
        if isinstance(node, exp.Column) and not node.table:
            node.set("table", exp.to_identifier(alias))
    return tree


def definition_expr(sql: str, alias: str) -> exp.Expr:
    """A trusted expression from a reviewed definition, columns qualified with ``alias``.

    Parsing is the costliest step of compiling, and definitions are immutable per release,
    so each (expression, alias) is parsed once per process; callers get a private copy.
    """
    # Expression.__deepcopy__ copies the tree itself; going through copy.deepcopy() only adds
    # its memo bookkeeping, a tenth of the compile time.
    return parse_definition(sql, alias).__deepcopy__(None)
