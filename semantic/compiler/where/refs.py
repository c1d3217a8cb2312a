"""The values a parse produces and passes around: query item refs, the parsed filter, spans."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp


@dataclass(frozen=True)
class QueryItemRef:
    """One ``{{ … }}`` call of a filter, as DSI reads it.

    ``kind`` is ``dimension``, ``time_dimension`` (also ``Dimension(…)`` with a grain or a
    date part), ``entity`` or ``metric``; ``entity_path`` is the full join path, e.g.
    ``("user", "account")`` for ``Dimension('user__account__plan')``.
    """

    kind: str
    name: str
    entity_path: tuple[str, ...]
    grain: str | None
    date_part: str | None
    group_by: tuple[str, ...]
    text: str
    placeholder: str


@dataclass(frozen=True)
class ParsedWhere:
    """A checked filter: a boolean sqlglot tree whose only columns are placeholders."""

    template: str
    expression: exp.Expr
    refs: tuple[QueryItemRef, ...]


@dataclass(frozen=True)
class Block:
    """A ``{{ … }}`` block: template offsets (end-exclusive) and its text."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Segment:
    """A stretch of the SQL text and the template stretch it came from (end-exclusive)."""

    sql_start: int
    sql_end: int
    start: int
    end: int
    placeholder: str | None


def clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def suggest(name: str, choices: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.7)
    return match[0] if match else None


def ref_key(ref: QueryItemRef) -> tuple[object, ...]:
    return (ref.kind, ref.name, ref.entity_path, ref.grain, ref.date_part, ref.group_by)
