"""Three-way merge of definition specs, field by field (Django-free; used by rebase).

Lists of named items (measures, dimensions, entities, columns…) are merged by name, like the
diff in ``changes.py``, so two people editing different measures of one model do not conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.definitions.changes import key_for

_MISSING: Any = object()


@dataclass(frozen=True)
class FieldConflict:
    """Both sides changed ``path`` differently since the base."""

    path: str
    base: Any
    theirs: Any
    ours: Any

    def as_dict(self) -> dict[str, Any]:
        def shown(value: Any) -> Any:
            return None if value is _MISSING else value

        return {
            "path": self.path,
            "base": shown(self.base),
            "theirs": shown(self.theirs),
            "ours": shown(self.ours),
        }


def _named(items: Any) -> dict[Any, Any] | None:
    """A list of named dicts as name → item, or None when the list is not keyed."""
    if not isinstance(items, list):
        return None
    keyed = {}
    for item in items:
        key = key_for(item)
        if key is None or key in keyed:
            return None
        keyed[key] = item
    return keyed


def _join(path: str, step: Any, keyed: bool) -> str:
    if keyed:
        return f"{path}[{step}]"
    return f"{path}.{step}" if path else str(step)


def merge3(base: Any, theirs: Any, ours: Any, path: str = "") -> tuple[Any, list[FieldConflict]]:
    """Merges our change and theirs, both made from ``base``.

    Args:
        base: the spec both sides started from (``_MISSING``-free plain JSON).
        theirs: the spec as released since.
        ours: the spec as proposed.
        path: the field path of this node (for conflicts).

    Returns:
        The merged spec and the fields both sides changed differently (empty = clean).

    Example:
        >>> merge3({"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 3})
        ({'a': 2, 'b': 3}, [])
        >>> merge3({"a": 1}, {"a": 2}, {"a": 3})[1][0].path
        'a'
    """
    if ours == theirs:
        return ours, []
    if ours == base:
        return theirs, []
    if theirs == base:
        return ours, []
    if all(isinstance(v, dict) for v in (base, theirs, ours)):
        merged: dict[str, Any] = {}
        conflicts: list[FieldConflict] = []
        for key in dict.fromkeys([*theirs, *ours]):
            value, found = merge3(
                base.get(key, _MISSING),
                theirs.get(key, _MISSING),
                ours.get(key, _MISSING),
                _join(path, key, False),
            )
            conflicts.extend(found)
            if value is not _MISSING:
                merged[key] = value
        return merged, conflicts
    named = [_named(v) for v in (base, theirs, ours)]
    if all(n is not None for n in named):
        b, t, o = named
        assert b is not None and t is not None and o is not None
        items: list[Any] = []
        conflicts = []
        for key in dict.fromkeys([*t, *o]):
            value, found = merge3(
                b.get(key, _MISSING), t.get(key, _MISSING), o.get(key, _MISSING),
                _join(path, key, True),
            )  # fmt: skip
            conflicts.extend(found)
            if value is not _MISSING:
                items.append(value)
        return items, conflicts
    return ours, [FieldConflict(path or "(whole definition)", base, theirs, ours)]
