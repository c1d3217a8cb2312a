"""Content hashes, structured diffs and semantic version bumps of definitions.

A change that can alter numbers bumps the major version; a change only to metadata
(description, label, governance meta) bumps the minor one. The rule is an allow-list of
metadata paths: anything not known to be metadata counts as meaning, so a new spec field
defaults to the safe side.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from registry.definitions.contracts import contract_changes, contract_declassifications

MAJOR = "major"
MINOR = "minor"

# Keys that describe rather than define, at any depth of a semantic-layer spec.
METADATA_KEYS = frozenset({"description", "label", "meta"})


def content_hash(spec: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a spec (sorted keys, no whitespace).

    Example:
        >>> content_hash({"b": 1, "a": 2}) == content_hash({"a": 2, "b": 1})
        True
    """
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FieldChange:
    """One changed leaf (or subtree added/removed) between two specs."""

    path: str
    old: Any
    new: Any
    op: str  # "added" | "removed" | "changed"

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new}


def key_for(item: Any) -> Any:
    """The key a list element is matched by across two versions: its name, else None."""
    # Lists of named objects (measures, dimensions, metrics inputs) diff by name, so a
    # reordering is not reported as every element changing.
    return item.get("name") if isinstance(item, dict) and "name" in item else None


def diff_specs(old: Any, new: Any, path: str = "") -> Iterator[FieldChange]:
    """Structured diff of two JSON values; lists of named objects are matched by name.

    Example:
        >>> [c.path for c in diff_specs({"a": 1, "m": [{"name": "x", "agg": "sum"}]},
        ...                             {"a": 1, "m": [{"name": "x", "agg": "max"}]})]
        ['m[x].agg']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                yield FieldChange(sub, old[key], None, "removed")
            elif key not in old:
                yield FieldChange(sub, None, new[key], "added")
            else:
                yield from diff_specs(old[key], new[key], sub)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_keys = [key_for(i) for i in old]
        new_keys = [key_for(i) for i in new]
        if None not in old_keys and None not in new_keys:
            old_by, new_by = (
                dict(zip(old_keys, old, strict=True)),
                dict(zip(new_keys, new, strict=True)),
            )
            for key in [*old_keys, *[k for k in new_keys if k not in old_by]]:
                sub = f"{path}[{key}]"
                if key not in new_by:
                    yield FieldChange(sub, old_by[key], None, "removed")
                elif key not in old_by:
                    yield FieldChange(sub, None, new_by[key], "added")
                else:
                    yield from diff_specs(old_by[key], new_by[key], sub)
            return
    if old != new:
        yield FieldChange(path, old, new, "changed")


def _is_metadata(path: str, keys: frozenset[str]) -> bool:
    parts = path.replace("[", ".").replace("]", "").split(".")
    return any(part in keys for part in parts)


@dataclass(frozen=True)
class VersionBump:
    level: str  # MAJOR | MINOR
    changes: tuple[FieldChange, ...]
    reasons: tuple[str, ...]
    # Contract columns whose PII protection the change removes or weakens: a change kind of
    # its own, reviewed by the data owner and data governance whatever its level.
    declassified: tuple[str, ...] = ()

    @property
    def summary(self) -> str:
        if not self.changes:
            return "no change"
        paths = ", ".join(c.path for c in self.changes[:6])
        more = f" (+{len(self.changes) - 6} more)" if len(self.changes) > 6 else ""
        return f"{self.level}: {paths}{more}"


def classify_change(kind: str, old: dict[str, Any], new: dict[str, Any]) -> VersionBump:
    """Major when any change can alter numbers (or, for contracts, breaks consumers); for a
    contract, also the PII columns it declassifies (``declassified``).

    Example:
        >>> classify_change("metric", {"name": "m", "label": "A"}, {"name": "m", "label": "B"}).level
        'minor'
    """
    changes = tuple(diff_specs(old, new))
    if kind == "contract":
        # Compatible contract changes (a column added, a type widened) are minor even though
        # they touch the schema: consumers keep working. Only breaking ones are major.
        breaking = tuple(c.describe() for c in contract_changes(old, new) if c.breaking)
        declassified = tuple(contract_declassifications(old, new))
        return VersionBump(MAJOR if breaking else MINOR, changes, breaking, declassified)
    meaning = tuple(c.path for c in changes if not _is_metadata(c.path, METADATA_KEYS))
    return VersionBump(MAJOR if meaning else MINOR, changes, meaning)
