"""PIVOT and UNPIVOT operators: which chain a column reads, and what each operator's
columns are made of (the scope walk follows a pivoted column through them)."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope


def pivot_of(scope: Scope, table: str) -> tuple[str, list[exp.Pivot]] | None:
    """The PIVOT/UNPIVOT chain a column qualified ``table`` reads: its source's alias and the
    operators up to the one named ``table`` (or all of them when none is named)."""
    for alias, (node, _) in scope.selected_sources.items():
        pivots = list(node.args.get("pivots") or []) if isinstance(node, exp.Expr) else []
        for index, pivot in enumerate(pivots):
            if pivot.alias == table:
                return alias, pivots[: index + 1]
        if pivots and alias == table:
            return alias, pivots
    return None


def pivot_parts(
    pivot: exp.Pivot,
) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, tuple[list[str], list[str]]]]:
    """An operator's columns: UNPIVOT value column → the columns folded into it, UNPIVOT name
    column → all folded columns; PIVOT cell → (its aggregate's columns, the FOR columns)."""
    aggregates = list(pivot.expressions)
    fields = [f for f in pivot.args.get("fields") or [] if isinstance(f, exp.In)]
    if pivot.args.get("unpivot"):
        value_names = [
            v.name.lower()
            for a in aggregates
            for v in (a.expressions if isinstance(a, exp.Tuple) else [a])
        ]
        values: dict[str, list[str]] = {v: [] for v in value_names}
        every: list[str] = []
        for field in fields:
            for item in field.expressions:
                item = item.this if isinstance(item, exp.PivotAlias) else item
                members = item.expressions if isinstance(item, exp.Tuple) else [item]
                for position, member in enumerate(members):
                    names = [c.name.lower() for c in member.find_all(exp.Column)]
                    every += names
                    if position < len(value_names):
                        values[value_names[position]] += names
        return values, {f.this.name.lower(): every for f in fields}, {}
    outputs = [c.name.lower() for c in pivot.args.get("columns") or []]
    fors = [c.name.lower() for f in fields for c in f.this.find_all(exp.Column)]
    cells = {
        out: (
            [c.name.lower() for c in aggregates[i % len(aggregates)].find_all(exp.Column)],
            fors,
        )
        for i, out in enumerate(outputs)
    } if aggregates else {}  # fmt: skip
    return {}, {}, cells


def pivot_outputs(pivot: exp.Pivot, columns: list[str] | None) -> list[str] | None:
    """The output columns of an operator over input ``columns`` (None when unknown): the
    untouched columns in order, then (UNPIVOT) the name and value columns or (PIVOT) cells."""
    if columns is None:
        return None
    values, folded, cells = pivot_parts(pivot)
    if pivot.args.get("unpivot"):
        used = {c for members in folded.values() for c in members}
        return [c for c in columns if c not in used] + list(folded) + list(values)
    used = {c for aggregate, fors in cells.values() for c in (*aggregate, *fors)}
    return [c for c in columns if c not in used] + list(cells)
